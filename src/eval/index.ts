/**
 * Evaluation: sacreBLEU-exact BLEU/chrF/chrF++ with signatures, spBLEU,
 * bootstrap confidence intervals and paired tests, SQuAD/MLQA QA metrics and
 * the study's containment score, ROUGE, multiple-choice accuracy, and the
 * generation harness that writes predictions.jsonl and scores it by language.
 */
export { BLEU, type BLEUOptions, BLEUScore, computeBleu, SMOOTH_DEFAULTS, type SmoothMethod } from "./bleu.js";
export {
  type BootstrapOptions,
  confidenceFromSamples,
  type PairedBootstrapResult,
  type PairedSystemResult,
  pairedBootstrap,
  scoreWithConfidence,
} from "./bootstrap.js";
export { choiceAccuracy, extractChoice } from "./choice.js";
export { CHRF, type CHRFOptions, CHRFScore, splitPunctuation } from "./chrf.js";
export {
  type GenerationExample,
  type GenerationProgress,
  type GenerationResult,
  type GenerationSettings,
  type PredictionRecord,
  type PromptTemplate,
  type RunGenerationOptions,
  readPredictions,
  renderPrompt,
  runGeneration,
} from "./generation.js";
export { formatFixed } from "./pytext.js";
export {
  containsAnswer,
  exactMatch,
  MLQA_LANGUAGES,
  type NormalizeOptions,
  normalizeAnswer,
  type QaExample,
  type QaScores,
  qaScores,
  tokenF1,
} from "./qa.js";
export { type RougeScores, type RougeTokenizer, type RougeValue, rougeL, rougeN, rougeScores, rougeTokens } from "./rouge.js";
export type { Confidence, CorpusMetric, FormatOptions, ReferenceStreams, SegmentStatistics } from "./score.js";
export { MetricScore, sumStatistics } from "./score.js";
export {
  type MetricName,
  type ScoreRow,
  type ScoreTable,
  type ScoreTableOptions,
  scoreByLanguage,
  scoreTable,
  scoreTableToDataFrame,
} from "./scores.js";
export { SACREBLEU_VERSION, Signature } from "./signature.js";
export {
  type AsyncPieceEncoder,
  BLEU_TOKENIZERS,
  type BleuTokenizer,
  type BleuTokenizerName,
  getBleuTokenizer,
  isZhChar,
  type PieceEncoder,
  spmTokenizer,
  spmTokenizerFor,
  tokenize13a,
  tokenizeChar,
  tokenizeIntl,
  tokenizeZh,
} from "./tokenizers.js";
