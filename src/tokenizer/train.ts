/**
 * Training a small LLaMA-style BPE tokenizer (byte fallback, "▁" for spaces
 * with a dummy prefix, digits split) for small experiments.
 *
 * The merges are learned by Hugging Face `tokenizers`' BPE trainer. Its node
 * binding exposes no trainer options (vocabulary size, special tokens), so we
 * let it learn its full merge list and keep the first merges, which is what a
 * smaller vocabulary size gives (BPE merges are chosen greedily, in order).
 * The vocabulary is laid out as LLaMA's: <unk>, <s>, </s>, the 256 byte
 * tokens <0x00>..<0xFF>, the characters (most frequent first, up to
 * `characterCoverage`), then merged pieces; characters left out are encoded
 * as their UTF-8 bytes.
 *
 * @example
 * const tok = await trainBpeTokenizer({ files: ["corpus.en", "corpus.zh"] }, { vocabSize: 2000 });
 * await tok.save("runs/tiny/tokenizer");
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  digitsPreTokenizer,
  BPE as NativeBpe,
  Tokenizer as NativeTokenizer,
  prependNormalizer,
  punctuationPreTokenizer,
  replace,
  sequenceNormalizer,
  sequencePreTokenizer,
  splitPreTokenizer,
} from "tokenizers";
import { TokenizerError } from "../util/errors.js";
import { tempPathFor } from "../util/fs.js";
import { Tokenizer } from "./tokenizer.js";

export interface TrainBpeOptions {
  /** Final vocabulary size, special and byte tokens included. */
  vocabSize: number;
  /** Add the 256 <0xNN> byte tokens so any text encodes without <unk> (default true). */
  byteFallback?: boolean;
  /** Special tokens at ids 0.. (default ["<unk>", "<s>", "</s>"], LLaMA's unk, bos, eos). */
  specialTokens?: string[];
  /** Keep the most frequent characters covering this share of the corpus (default 0.9995, SentencePiece's). */
  characterCoverage?: number;
  /**
   * Keep punctuation out of word pieces ("▁live?" becomes "▁live" "?"), as SentencePiece's default
   * split_by_unicode_script does for LLaMA's tokenizer. Default false (the tokenizers trained before this option).
   * Without it a small vocabulary learns "▁Talot." beside "▁Talot", so one word has two unrelated ids depending on
   * the punctuation after it, and a model must learn each pair to copy a word from a passage (issue 16).
   */
  splitPunctuation?: boolean;
}

export interface TrainingCorpus {
  /** Texts, one or more lines each. */
  texts?: string[];
  /** UTF-8 text files. */
  files?: string[];
}

const BYTE_TOKENS = Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, "0")}>`);

/** The normalizer, pre-tokenizer and decoder of a trained tokenizer, as tokenizer.json sections. */
const pipeline = (splitPunctuation: boolean) => ({
  normalizer: {
    type: "Sequence",
    normalizers: [
      { type: "Prepend", prepend: "▁" },
      { type: "Replace", pattern: { String: " " }, content: "▁" },
    ],
  },
  pre_tokenizer: {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { String: "▁" }, behavior: "MergedWithNext", invert: false },
      { type: "Digits", individual_digits: true },
      ...(splitPunctuation ? [{ type: "Punctuation", behavior: "Isolated" }] : []),
    ],
  },
  decoder: {
    type: "Sequence",
    decoders: [
      { type: "Replace", pattern: { String: "▁" }, content: " " },
      { type: "ByteFallback" },
      { type: "Fuse" },
      { type: "Strip", content: " ", start: 1, stop: 0 },
    ],
  },
});

/** Trains a BPE tokenizer with byte fallback on `corpus`; see the module comment for how. */
export async function trainBpeTokenizer(corpus: TrainingCorpus, options: TrainBpeOptions): Promise<Tokenizer> {
  const specials = options.specialTokens ?? ["<unk>", "<s>", "</s>"];
  const byteFallback = options.byteFallback ?? true;
  const coverage = options.characterCoverage ?? 0.9995;
  const reserved = specials.length + (byteFallback ? 256 : 0);
  if (!Number.isInteger(options.vocabSize) || options.vocabSize <= reserved) {
    throw new TokenizerError(
      "XA_TOKENIZER_TRAIN",
      `vocabSize ${options.vocabSize} must be an integer above the ${reserved} special and byte tokens`,
      {
        field: "vocabSize",
        hint: "use a larger vocabulary",
      },
    );
  }
  const texts = [...(corpus.texts ?? [])];
  for (const file of corpus.files ?? []) {
    try {
      texts.push(await readFile(file, "utf8"));
    } catch (err) {
      throw new TokenizerError("XA_TOKENIZER_TRAIN", "cannot read training file", { file, hint: "check the path", cause: err });
    }
  }
  if (texts.every((t) => t.trim().length === 0)) {
    throw new TokenizerError("XA_TOKENIZER_TRAIN", "the training corpus is empty", { hint: "pass texts or non-empty files" });
  }
  const splitPunctuation = options.splitPunctuation ?? false;
  const merges = await learnMerges(texts, splitPunctuation);
  const vocab = new Map<string, number>();
  const add = (piece: string) => {
    if (!vocab.has(piece)) vocab.set(piece, vocab.size);
  };
  for (const s of specials) add(s);
  if (byteFallback) for (const b of BYTE_TOKENS) add(b);
  for (const ch of coveredCharacters(texts, coverage)) if (vocab.size < options.vocabSize) add(ch);
  const kept: [string, string][] = [];
  for (const [a, b] of merges) {
    if (vocab.size >= options.vocabSize) break;
    if (vocab.has(a) && vocab.has(b) && !vocab.has(a + b)) {
      kept.push([a, b]);
      add(a + b);
    }
  }
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    ...pipeline(splitPunctuation),
    post_processor: null,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: specials[0] ?? null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: byteFallback,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: kept,
    },
  };
  return Tokenizer.fromJson(json, {
    ...(specials[0] !== undefined ? { unk: specials[0] } : {}),
    ...(specials[1] !== undefined ? { bos: specials[1] } : {}),
    ...(specials[2] !== undefined ? { eos: specials[2] } : {}),
  });
}

/** Characters by frequency (after "▁" replaces spaces), most frequent first, until `coverage` of all characters. */
function coveredCharacters(texts: string[], coverage: number): string[] {
  const counts = new Map<string, number>([["▁", 0]]);
  let total = 0;
  for (const text of texts) {
    for (const line of text.split("\n")) {
      if (line.length === 0) continue;
      counts.set("▁", (counts.get("▁") ?? 0) + 1);
      for (const ch of line) {
        const c = ch === " " ? "▁" : ch;
        counts.set(c, (counts.get(c) ?? 0) + 1);
        total++;
      }
    }
  }
  const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const out: string[] = [];
  let covered = 0;
  for (const [ch, n] of sorted) {
    if (out.length > 0 && covered >= coverage * total) break;
    out.push(ch);
    covered += n;
  }
  return out;
}

/** The library trainer's merge list for `texts` with our normalizer and pre-tokenizer. */
async function learnMerges(texts: string[], splitPunctuation: boolean): Promise<[string, string][]> {
  const native = new NativeTokenizer(NativeBpe.empty());
  native.setNormalizer(sequenceNormalizer([prependNormalizer("▁"), replace(" ", "▁")]));
  native.setPreTokenizer(
    sequencePreTokenizer([
      splitPreTokenizer("▁", "mergedWithNext", false),
      digitsPreTokenizer(true),
      ...(splitPunctuation ? [punctuationPreTokenizer("isolated")] : []),
    ]),
  );
  const corpusFile = tempPathFor(join(process.env.TMPDIR ?? "/tmp", "xalign-bpe-corpus.txt"));
  const outFile = `${corpusFile}.json`;
  try {
    await writeFile(corpusFile, texts.join("\n"));
    native.train([corpusFile]);
    native.save(outFile, false);
    const trained = JSON.parse(await readFile(outFile, "utf8")) as { model: { merges: ([string, string] | string)[] } };
    return trained.model.merges.map((m) => (typeof m === "string" ? (m.split(" ") as [string, string]) : m));
  } finally {
    await rm(corpusFile, { force: true });
    await rm(outFile, { force: true });
  }
}
