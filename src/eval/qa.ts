/**
 * Extractive-QA metrics: SQuAD exact match and token F1 with MLQA's
 * language-specific answer normalisation (Lewis et al. 2020, the official
 * mlqa_evaluation_v1.py), and the score the x-LLaMA study reports on XQuAD
 * and MLQA: whether the gold answer occurs in the model's output, ignoring case.
 */
import { AnalysisError } from "../util/errors.js";
import { pySplit, pyStrip } from "./pytext.js";

/** Languages MLQA's script defines normalisation for. */
export const MLQA_LANGUAGES = ["en", "es", "hi", "vi", "de", "ar", "zh"] as const;

// Unicode punctuation (categories P*) plus Python's string.punctuation, whose
// ASCII symbols $ + < = > ^ ` | ~ are not in P*.
const PUNCT = /[\p{P}$+<=>^`|~]/gu;
// Python's `\b` on str patterns is Unicode-aware (word = letters, numbers, "_"; not marks).
const W = "[\\p{L}\\p{N}_]";
const wordBoundaryAlternation = (words: string[]) => new RegExp(`(?<!${W})(?:${words.join("|")})(?!${W})`, "gu");
const ARTICLES: Record<string, RegExp | undefined> = {
  en: wordBoundaryAlternation(["a", "an", "the"]),
  es: wordBoundaryAlternation(["un", "una", "unos", "unas", "el", "la", "los", "las"]),
  vi: wordBoundaryAlternation(["của", "là", "cái", "chiếc", "những"]),
  de: wordBoundaryAlternation(["ein", "eine", "einen", "einem", "eines", "einer", "der", "die", "das", "den", "dem", "des"]),
  // MLQA's pattern '\sال^|ال' can only ever match its second branch: every "ال" goes.
  ar: /ال/gu,
};
const CJK = /[\u4e00-\u9fa5]/u;

/** Normalisation settings. */
export interface NormalizeOptions {
  /**
   * For languages outside MLQA's seven (el, tr, ... in XQuAD): "generic"
   * (default) lowercases, drops punctuation and splits on whitespace with no
   * article list; "error" throws as MLQA's script does.
   */
  unknownLanguage?: "generic" | "error";
}

function isKnown(lang: string): boolean {
  return (MLQA_LANGUAGES as readonly string[]).includes(lang);
}

/** MLQA's mixed segmentation: every CJK ideograph (U+4E00–U+9FA5) and punctuation mark is a token. */
function mixedSegmentation(text: string): string[] {
  const out: string[] = [];
  let pending = "";
  for (const ch of text) {
    PUNCT.lastIndex = 0;
    if (CJK.test(ch) || PUNCT.test(ch)) {
      if (pending !== "") out.push(...pySplit(pending));
      pending = "";
      out.push(ch);
    } else {
      pending += ch;
    }
  }
  if (pending !== "") out.push(...pySplit(pending));
  return out;
}

/**
 * MLQA's answer normalisation for `lang`: lowercase, remove punctuation,
 * remove the language's articles, then whitespace tokens (mixed
 * segmentation for zh) joined by single spaces.
 *
 * @example
 * normalizeAnswer("The Eiffel Tower!", "en"); // "eiffel tower"
 * normalizeAnswer("北京大学", "zh"); // "北 京 大 学"
 */
export function normalizeAnswer(text: string, lang: string, options: NormalizeOptions = {}): string {
  if (!isKnown(lang) && options.unknownLanguage === "error") {
    throw new AnalysisError("XA_EVAL_QA_LANGUAGE", `MLQA defines no answer normalisation for language "${lang}"`, {
      field: "lang",
      hint: `use one of ${MLQA_LANGUAGES.join(", ")} or unknownLanguage: "generic"`,
    });
  }
  let s = text.toLowerCase().replace(PUNCT, "");
  const articles = ARTICLES[lang];
  if (articles) s = s.replace(articles, " ");
  const tokens = lang === "zh" ? mixedSegmentation(s) : pySplit(s);
  return tokens.filter((t) => pyStrip(t) !== "").join(" ");
}

function checkGolds(golds: readonly string[]): void {
  if (golds.length === 0) {
    throw new AnalysisError("XA_EVAL_QA_NO_GOLD", "a QA example has no gold answer", {
      field: "answers",
      hint: "give at least one gold answer",
    });
  }
}

/** SQuAD exact match (0 or 1) against the best of several gold answers. */
export function exactMatch(prediction: string, golds: readonly string[], lang: string, options: NormalizeOptions = {}): number {
  checkGolds(golds);
  const p = normalizeAnswer(prediction, lang, options);
  return golds.some((g) => normalizeAnswer(g, lang, options) === p) ? 1 : 0;
}

/** SQuAD token F1 (0..1) against the best of several gold answers. */
export function tokenF1(prediction: string, golds: readonly string[], lang: string, options: NormalizeOptions = {}): number {
  checkGolds(golds);
  const predTokens = pySplit(normalizeAnswer(prediction, lang, options));
  let best = 0;
  for (const gold of golds) {
    const goldTokens = pySplit(normalizeAnswer(gold, lang, options));
    const counts = new Map<string, number>();
    for (const t of goldTokens) counts.set(t, (counts.get(t) ?? 0) + 1);
    let same = 0;
    for (const t of predTokens) {
      const c = counts.get(t) ?? 0;
      if (c > 0) {
        same++;
        counts.set(t, c - 1);
      }
    }
    if (same === 0) continue;
    const precision = same / predTokens.length;
    const recall = same / goldTokens.length;
    best = Math.max(best, (2 * precision * recall) / (precision + recall));
  }
  return best;
}

/**
 * The study's QA score: 1 when a gold answer, lowercased, occurs in the
 * lowercased output (x-LLM's eval/xquad.match.py), else 0.
 *
 * @example
 * containsAnswer("The answer is Paris.", ["paris"]); // 1
 */
export function containsAnswer(output: string, golds: readonly string[]): number {
  checkGolds(golds);
  const out = output.toLowerCase();
  return golds.some((g) => out.includes(g.toLowerCase())) ? 1 : 0;
}

/** One QA prediction to score. */
export interface QaExample {
  prediction: string;
  answers: readonly string[];
  lang: string;
}

/** Corpus QA scores in percent, as the SQuAD/MLQA scripts and the study print them. */
export interface QaScores {
  exactMatch: number;
  f1: number;
  contains: number;
  count: number;
}

/**
 * Mean EM, F1 and containment over examples, × 100.
 *
 * @example
 * qaScores([{ prediction: "Paris", answers: ["Paris"], lang: "en" }]); // { exactMatch: 100, f1: 100, contains: 100, count: 1 }
 */
export function qaScores(examples: readonly QaExample[], options: NormalizeOptions = {}): QaScores {
  if (examples.length === 0) throw new AnalysisError("XA_EVAL_EMPTY", "no QA examples to score", { field: "examples" });
  let em = 0;
  let f1 = 0;
  let contains = 0;
  for (const ex of examples) {
    em += exactMatch(ex.prediction, ex.answers, ex.lang, options);
    f1 += tokenF1(ex.prediction, ex.answers, ex.lang, options);
    contains += containsAnswer(ex.prediction, ex.answers);
  }
  const n = examples.length;
  return { exactMatch: (100 * em) / n, f1: (100 * f1) / n, contains: (100 * contains) / n, count: n };
}
