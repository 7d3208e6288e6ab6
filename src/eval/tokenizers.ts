/**
 * sacreBLEU's BLEU tokenisers, one small function each, chosen by name:
 * `13a` (mteval-v13a, the default), `intl` (mteval-v14 international:
 * Unicode punctuation and symbols), `zh` (CJK characters split, rest 13a),
 * `char`, `none`, and `spm` (SentencePiece pieces, for spBLEU) built from a
 * user-supplied model with {@link spmTokenizer}.
 */
import { AnalysisError } from "../util/errors.js";
import { isPySpaceCode, pyRstrip, pySplit, pyStrip } from "./pytext.js";

/** A BLEU tokeniser: a name for the signature and a line -> space-separated tokens function. */
export interface BleuTokenizer {
  /** What the signature prints after `tok:` (e.g. "13a", "flores101"). */
  readonly signature: string;
  /** Returns the line's tokens joined by single spaces. */
  tokenize(line: string): string;
  /** Optional fast path: the tokens as an array, equal to Python's `tokenize(line).split()`. */
  tokens?(line: string): string[];
}

/** Names accepted by `new BLEU({ tokenize })`. */
export type BleuTokenizerName = "13a" | "intl" | "zh" | "char" | "none";

// The language-dependent part shared by 13a and zh (mteval's "Western" rules).
// No "u" flag: the patterns only name ASCII, and a UTF-16 unit matching
// [^0-9] inserts the same spaces as Python's code point would (but faster).
const SPLIT_PUNCT = /([{-~[-` -&(-+:-@/])/g;
const PERIOD_COMMA_AFTER_NON_DIGIT = /([^0-9])([.,])/g;
const PERIOD_COMMA_BEFORE_NON_DIGIT = /([.,])([^0-9])/g;
const DASH_AFTER_DIGIT = /([0-9])(-)/g;

/**
 * The four mteval rules as sacreBLEU applies them (regex passes, each over
 * the previous one's output), kept as the reference the fast scanner below
 * is tested against.
 */
export function regexpPostTokensReference(line: string): string[] {
  line = line.replace(SPLIT_PUNCT, " $1 ");
  line = line.replace(PERIOD_COMMA_AFTER_NON_DIGIT, "$1 $2 ");
  line = line.replace(PERIOD_COMMA_BEFORE_NON_DIGIT, " $1 $2");
  line = line.replace(DASH_AFTER_DIGIT, "$1 $2 ");
  return pySplit(line);
}

// Units of the scanner: an index into the line, or SPACE for an inserted space.
const SPACE = -1;
let unitsA = new Int32Array(256);
let unitsB = new Int32Array(256);

function isAsciiDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Characters rule 1 pads with spaces: ASCII punctuation and symbols except ' , - . */
function isSplitPunct(c: number): boolean {
  return (
    (c >= 0x7b && c <= 0x7e) ||
    (c >= 0x5b && c <= 0x60) ||
    (c >= 0x20 && c <= 0x26) ||
    (c >= 0x28 && c <= 0x2b) ||
    (c >= 0x3a && c <= 0x40) ||
    c === 0x2f
  );
}

/**
 * The same four rules in one scan per rule over index buffers instead of
 * strings: each rule only inserts spaces, so tokens are slices of the line.
 * Equal to {@link regexpPostTokensReference} on every input (fuzz-tested).
 */
function regexpPostTokens(line: string): string[] {
  const len = line.length;
  if (unitsA.length < 3 * len + 8) {
    unitsA = new Int32Array(6 * len + 16);
    unitsB = new Int32Array(6 * len + 16);
  }
  let a = unitsA;
  let b = unitsB;
  const code = (u: number) => (u === SPACE ? 32 : line.charCodeAt(u));
  // Rule 1: pad punctuation and symbols.
  let m = 0;
  let hasDotComma = false;
  let hasDash = false;
  for (let i = 0; i < len; i++) {
    const c = line.charCodeAt(i);
    if (isSplitPunct(c)) {
      a[m++] = SPACE;
      a[m++] = i;
      a[m++] = SPACE;
    } else {
      a[m++] = i;
      if (c === 46 || c === 44) hasDotComma = true;
      else if (c === 45) hasDash = true;
    }
  }
  if (hasDotComma) {
    // Rule 2: ([^0-9])([.,]) -> "$1 $2 ", left to right, matches not overlapping.
    let n = 0;
    for (let i = 0; i < m; ) {
      const u = a[i]!;
      if (i + 1 < m && !isAsciiDigit(code(u))) {
        const v = a[i + 1]!;
        const cv = code(v);
        if (cv === 46 || cv === 44) {
          b[n++] = u;
          b[n++] = SPACE;
          b[n++] = v;
          b[n++] = SPACE;
          i += 2;
          continue;
        }
      }
      b[n++] = u;
      i++;
    }
    [a, b] = [b, a];
    m = n;
    // Rule 3: ([.,])([^0-9]) -> " $1 $2".
    n = 0;
    for (let i = 0; i < m; ) {
      const u = a[i]!;
      const cu = code(u);
      if ((cu === 46 || cu === 44) && i + 1 < m && !isAsciiDigit(code(a[i + 1]!))) {
        b[n++] = SPACE;
        b[n++] = u;
        b[n++] = SPACE;
        b[n++] = a[i + 1]!;
        i += 2;
        continue;
      }
      b[n++] = u;
      i++;
    }
    [a, b] = [b, a];
    m = n;
  }
  if (hasDash) {
    // Rule 4: ([0-9])(-) -> "$1 $2 ".
    let n = 0;
    for (let i = 0; i < m; ) {
      const u = a[i]!;
      if (i + 1 < m && isAsciiDigit(code(u)) && code(a[i + 1]!) === 45) {
        b[n++] = u;
        b[n++] = SPACE;
        b[n++] = a[i + 1]!;
        b[n++] = SPACE;
        i += 2;
        continue;
      }
      b[n++] = u;
      i++;
    }
    [a, b] = [b, a];
    m = n;
  }
  // Tokens: maximal runs of line characters that are not Python whitespace.
  const tokens: string[] = [];
  let start = -1;
  let prev = -2;
  for (let i = 0; i < m; i++) {
    const u = a[i]!;
    if (u === SPACE || isPySpaceCode(line.charCodeAt(u))) {
      if (start >= 0) tokens.push(line.slice(start, prev + 1));
      start = -1;
      continue;
    }
    if (start < 0) start = u;
    prev = u;
  }
  if (start >= 0) tokens.push(line.slice(start, prev + 1));
  unitsA = a;
  unitsB = b;
  return tokens;
}

/**
 * mteval-v13a tokenisation as sacreBLEU does it.
 *
 * @example
 * tokenize13a("Hello, world!"); // "Hello , world !"
 */
export function tokenize13a(line: string): string {
  return tokens13a(line).join(" ");
}

/** {@link tokenize13a} as a token array. */
export function tokens13a(line: string): string[] {
  line = line.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
  if (line.includes("&")) {
    line = line.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
  }
  return regexpPostTokens(` ${line} `);
}

const INTL_PUNCT_AFTER_NON_NUMBER = /(\P{N})(\p{P})/gu;
const INTL_PUNCT_BEFORE_NON_NUMBER = /(\p{P})(\P{N})/gu;
const INTL_SYMBOL = /(\p{S})/gu;

/**
 * mteval-v14 international tokenisation: punctuation split unless between
 * digits, every symbol split. Like mteval-v14 (and sacreBLEU), a number
 * followed by a final period keeps the period.
 *
 * @example
 * tokenizeIntl("Ça coûte 1,5 €."); // "Ça coûte 1,5 € ."
 */
export function tokenizeIntl(line: string): string {
  return tokensIntl(line).join(" ");
}

/** {@link tokenizeIntl} as a token array. */
export function tokensIntl(line: string): string[] {
  line = line.replace(INTL_PUNCT_AFTER_NON_NUMBER, "$1 $2 ");
  line = line.replace(INTL_PUNCT_BEFORE_NON_NUMBER, " $1 $2");
  line = line.replace(INTL_SYMBOL, " $1 ");
  return pySplit(line);
}

/**
 * The code-point ranges sacreBLEU's `zh` tokeniser treats as Chinese. Its
 * table writes two ranges with 5-digit `\u` escapes, which Python reads as a
 * 4-digit escape plus a digit, so they really cover U+2001–U+2A6D (general
 * punctuation, letterlike symbols, arrows, ...) and U+2F81–U+2FA1, and no
 * astral character counts. We reproduce the ranges as they behave.
 */
const ZH_RANGES: ReadonlyArray<readonly [number, number]> = [
  [0x3400, 0x4db5],
  [0x4e00, 0x9fa5],
  [0x9fa6, 0x9fbb],
  [0xf900, 0xfa2d],
  [0xfa30, 0xfa6a],
  [0xfa70, 0xfad9],
  [0x2001, 0x2a6d],
  [0x2f81, 0x2fa1],
  [0xff00, 0xffef],
  [0x2e80, 0x2eff],
  [0x3000, 0x303f],
  [0x31c0, 0x31ef],
  [0x2f00, 0x2fdf],
  [0x2ff0, 0x2fff],
  [0x3100, 0x312f],
  [0x31a0, 0x31bf],
  [0xfe10, 0xfe1f],
  [0xfe30, 0xfe4f],
  [0x2600, 0x26ff],
  [0x2700, 0x27bf],
  [0x3200, 0x32ff],
  [0x3300, 0x33ff],
];

/** Whether sacreBLEU's `zh` tokeniser splits this code point off as a Chinese character. */
export function isZhChar(codePoint: number): boolean {
  for (const [start, end] of ZH_RANGES) if (codePoint >= start && codePoint <= end) return true;
  return false;
}

/**
 * sacreBLEU's `zh` tokenisation: each Chinese character becomes a token, the
 * rest is tokenised like 13a (without 13a's entity unescaping).
 *
 * @example
 * tokenizeZh("我爱NLP。"); // "我 爱 NLP 。"
 */
export function tokenizeZh(line: string): string {
  return tokensZh(line).join(" ");
}

/** {@link tokenizeZh} as a token array. */
export function tokensZh(line: string): string[] {
  line = pyStrip(line);
  let out = "";
  for (const ch of line) out += isZhChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
  return regexpPostTokens(out);
}

/** Every code point is a token (sacreBLEU `char`). */
export function tokenizeChar(line: string): string {
  return Array.from(line).join(" ");
}

const BUILTIN: Record<BleuTokenizerName, BleuTokenizer> = {
  "13a": { signature: "13a", tokenize: tokenize13a, tokens: tokens13a },
  intl: { signature: "intl", tokenize: tokenizeIntl, tokens: tokensIntl },
  zh: { signature: "zh", tokenize: tokenizeZh, tokens: tokensZh },
  char: { signature: "char", tokenize: tokenizeChar },
  none: { signature: "none", tokenize: (line) => line },
};

/** The built-in tokeniser names, in sacreBLEU's spelling. */
export const BLEU_TOKENIZERS: readonly BleuTokenizerName[] = Object.keys(BUILTIN) as BleuTokenizerName[];

/**
 * A SentencePiece model as we accept it: a function from text to pieces, or
 * an object with `encodeToPieces` / `encodeAsPieces` (the src/tokenizer
 * SentencePiece loader, or any wrapper around one).
 */
export type PieceEncoder =
  | ((text: string) => string[])
  | { encodeToPieces(text: string): string[] }
  | { encodeAsPieces(text: string): string[] };

/**
 * An spBLEU tokeniser from a SentencePiece model: the line's pieces joined by
 * spaces, as sacreBLEU's `spm`/`flores101` tokenisers do. Pass the
 * Flores-101 model (sacrebleu_tokenizer_spm.model) to reproduce the study's
 * spBLEU; `signature` is what the score's signature prints after `tok:`.
 *
 * @example
 * const bleu = new BLEU({ tokenize: spmTokenizer((t) => sp.encodeToPieces(t), "flores101") });
 */
export function spmTokenizer(model: PieceEncoder, signature = "flores101"): BleuTokenizer {
  let encode: (text: string) => string[];
  if (typeof model === "function") encode = model;
  else if ("encodeToPieces" in model && typeof model.encodeToPieces === "function") encode = (t) => model.encodeToPieces(t);
  else if ("encodeAsPieces" in model && typeof model.encodeAsPieces === "function") encode = (t) => model.encodeAsPieces(t);
  else {
    throw new AnalysisError("XA_EVAL_SPM_MODEL", "the spm tokeniser needs a SentencePiece model", {
      field: "tokenize",
      hint: "pass a function (text) => pieces or an object with encodeToPieces(text)",
    });
  }
  return { signature, tokenize: (line) => encode(line).join(" ") };
}

/** An asynchronous piece encoder, e.g. src/tokenizer's `Tokenizer` (its `tokenize(text)` returns pieces). */
export type AsyncPieceEncoder = ((text: string) => Promise<string[]>) | { tokenize(text: string): Promise<string[]> };

/**
 * An spBLEU tokeniser for an asynchronous SentencePiece encoder (such as
 * xalign's HF-tokenizers `Tokenizer` loaded from a tokenizer.model): every
 * line BLEU will see is encoded up front, because BLEU scores synchronously.
 * Pass all hypotheses and references, and the same `lowercase` as the BLEU.
 *
 * @example
 * const sp = await loadTokenizer("flores101/sentencepiece.bpe.model");
 * const tok = await spmTokenizerFor(sp, [...hyps, ...refs]);
 * new BLEU({ tokenize: tok, effectiveOrder: true }).corpusScore(hyps, [refs]);
 */
export async function spmTokenizerFor(
  model: AsyncPieceEncoder,
  texts: Iterable<string>,
  options: { signature?: string; lowercase?: boolean } = {},
): Promise<BleuTokenizer> {
  const encode = typeof model === "function" ? model : (t: string) => model.tokenize(t);
  const cache = new Map<string, string[]>();
  // The same preprocessing BLEU applies before its tokeniser: optional lowercasing, then rstrip.
  for (const text of texts) {
    const line = pyRstrip(options.lowercase ? text.toLowerCase() : text);
    if (!cache.has(line)) cache.set(line, await encode(line));
  }
  const pieces = (line: string): string[] => {
    const found = cache.get(line);
    if (found === undefined) {
      throw new AnalysisError("XA_EVAL_SPM_NOT_ENCODED", `spmTokenizerFor was not given the line "${line.slice(0, 60)}"`, {
        field: "texts",
        hint: "pass every hypothesis and reference (and the BLEU's lowercase setting) to spmTokenizerFor",
      });
    }
    return found;
  };
  return {
    signature: options.signature ?? "flores101",
    tokenize: (line) => pieces(line).join(" "),
    tokens: (line) => pySplit(pieces(line).join(" ")),
  };
}

/** Resolves a tokeniser name (or passes a tokeniser object through). */
export function getBleuTokenizer(tokenize: BleuTokenizerName | BleuTokenizer | string): BleuTokenizer {
  if (typeof tokenize !== "string") return tokenize;
  const found = (BUILTIN as Record<string, BleuTokenizer>)[tokenize];
  if (found) return found;
  if (tokenize === "spm" || tokenize === "flores101" || tokenize === "flores200") {
    throw new AnalysisError("XA_EVAL_SPM_MODEL", `tokenizer "${tokenize}" needs a SentencePiece model, which xalign never downloads`, {
      field: "tokenize",
      hint: `pass tokenize: spmTokenizer(model, "${tokenize === "spm" ? "flores101" : tokenize}") with the model loaded from disk`,
    });
  }
  throw new AnalysisError("XA_EVAL_TOKENIZER", `unknown BLEU tokenizer "${tokenize}"`, {
    field: "tokenize",
    hint: `use one of ${BLEU_TOKENIZERS.join(", ")} or spmTokenizer(model)`,
  });
}
