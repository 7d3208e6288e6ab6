/**
 * Tokenizers: Hugging Face tokenizer.json and SentencePiece tokenizer.model
 * (converted exactly), BPE training with byte fallback.
 *
 * @example
 * import { loadTokenizer } from "./tokenizer/index.js";
 * const tok = await loadTokenizer("test/fixtures/spm-bpe/tokenizer.model");
 * await tok.encode("Xin chào", { addBos: false });
 */
export {
  PieceType,
  parseSentencePieceModel,
  type SentencePiece,
  type SentencePieceModel,
  sentencePieceToTokenizerJson,
} from "./sentencepiece.js";
export { type DecodeOptions, type EncodeOptions, loadTokenizer, type SpecialTokens, Tokenizer } from "./tokenizer.js";
export { type TrainBpeOptions, type TrainingCorpus, trainBpeTokenizer } from "./train.js";
