/**
 * ROUGE-1, ROUGE-2 and ROUGE-L (Lin 2004) F-measures, per example and
 * averaged, with several references taking the best one. Tokenisation is
 * Unicode-aware by default (letters/digits with their combining marks, one
 * token per CJK character); "rouge-score" reproduces Google's rouge_score
 * package (ASCII a-z0-9 only, no stemming), which erases non-Latin scripts.
 */
import { AnalysisError } from "../util/errors.js";

/** Precision, recall and F1 of one comparison (0..1). */
export interface RougeValue {
  precision: number;
  recall: number;
  f: number;
}

/** How text becomes ROUGE tokens. */
export type RougeTokenizer = "unicode" | "rouge-score" | ((text: string) => string[]);

const UNICODE_TOKEN = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]|[\p{L}\p{M}\p{N}]+/gu;

/** ROUGE tokens of a text. */
export function rougeTokens(text: string, tokenizer: RougeTokenizer = "unicode"): string[] {
  if (typeof tokenizer === "function") return tokenizer(text);
  if (tokenizer === "rouge-score") {
    return text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, " ")
      .split(" ")
      .filter((t) => /^[a-z0-9]+$/.test(t));
  }
  return text.toLowerCase().match(UNICODE_TOKEN) ?? [];
}

function fromCounts(overlap: number, predTotal: number, refTotal: number): RougeValue {
  const precision = predTotal > 0 ? overlap / predTotal : 0;
  const recall = refTotal > 0 ? overlap / refTotal : 0;
  const f = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f };
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join("\u0000");
    out.set(g, (out.get(g) ?? 0) + 1);
  }
  return out;
}

/** ROUGE-N between token lists: clipped n-gram overlap. */
export function rougeN(prediction: string[], reference: string[], n: number): RougeValue {
  const p = ngramCounts(prediction, n);
  const r = ngramCounts(reference, n);
  let overlap = 0;
  for (const [g, c] of p) overlap += Math.min(c, r.get(g) ?? 0);
  return fromCounts(overlap, Math.max(0, prediction.length - n + 1), Math.max(0, reference.length - n + 1));
}

/** ROUGE-L between token lists: longest common subsequence. */
export function rougeL(prediction: string[], reference: string[]): RougeValue {
  const m = reference.length;
  let prev = new Int32Array(m + 1);
  let cur = new Int32Array(m + 1);
  for (const tok of prediction) {
    for (let j = 1; j <= m; j++) cur[j] = tok === reference[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    [prev, cur] = [cur, prev];
  }
  return fromCounts(prev[m]!, prediction.length, reference.length);
}

/** Mean ROUGE F-measures over a corpus, × 100. */
export interface RougeScores {
  rouge1: number;
  rouge2: number;
  rougeL: number;
  count: number;
}

/**
 * Mean ROUGE-1/2/L F over examples (× 100); with several references per
 * example each metric takes the best reference.
 *
 * @example
 * rougeScores(["the cat sat"], [["the cat sat down"]]).rouge1; // 85.71...
 */
export function rougeScores(
  predictions: readonly string[],
  references: readonly (string | readonly string[])[],
  options: { tokenizer?: RougeTokenizer } = {},
): RougeScores {
  if (predictions.length === 0) throw new AnalysisError("XA_EVAL_EMPTY", "no predictions to score with ROUGE", { field: "predictions" });
  if (predictions.length !== references.length) {
    throw new AnalysisError("XA_EVAL_LENGTH_MISMATCH", `${predictions.length} predictions but ${references.length} references`, {
      field: "references",
    });
  }
  const tok = options.tokenizer ?? "unicode";
  let r1 = 0;
  let r2 = 0;
  let rl = 0;
  predictions.forEach((pred, i) => {
    const p = rougeTokens(pred, tok);
    const refs = references[i]!;
    const list = typeof refs === "string" ? [refs] : refs;
    if (list.length === 0) throw new AnalysisError("XA_EVAL_NO_REFERENCE", `example ${i} has no reference`, { field: `references[${i}]` });
    let b1 = 0;
    let b2 = 0;
    let bl = 0;
    for (const ref of list) {
      const r = rougeTokens(ref, tok);
      b1 = Math.max(b1, rougeN(p, r, 1).f);
      b2 = Math.max(b2, rougeN(p, r, 2).f);
      bl = Math.max(bl, rougeL(p, r).f);
    }
    r1 += b1;
    r2 += b2;
    rl += bl;
  });
  const n = predictions.length;
  return { rouge1: (100 * r1) / n, rouge2: (100 * r2) / n, rougeL: (100 * rl) / n, count: n };
}
