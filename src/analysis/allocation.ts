/**
 * Splitting a parallel-data budget across languages to maximise the mean
 * predicted score (the study's m-LLaMA allocation): greedy on marginal
 * gains in fixed increments, which is optimal for concave laws (all our
 * forms are concave in N once ln N is past their inflection, if any).
 */
import { AnalysisError } from "../util/errors.js";
import type { ScalingLawFit } from "./scaling.js";

/** A language's law: a fit or any score-of-N function. */
export type ScoreLaw = ScalingLawFit | ((n: number) => number);

export interface AllocationOptions {
  /** Per-language laws (e.g. fitted on each x-LLaMA's data-scale runs). */
  laws: Record<string, ScoreLaw>;
  /** Total pairs to distribute. */
  budget: number;
  /** Increment size (default budget / 1000, rounded up). */
  step?: number;
  /** Pairs each language gets first (default one step), counted in the budget; laws in ln N need > 1. */
  minimum?: number | Record<string, number>;
}

export interface Allocation {
  /** Pairs per language (sums to the budget, up to one step left over). */
  pairs: Record<string, number>;
  /** Predicted score per language at its allocation. */
  predicted: Record<string, number>;
  meanScore: number;
  /** The budget left because it was smaller than one step. */
  unallocated: number;
}

function evaluate(law: ScoreLaw, n: number): number {
  return typeof law === "function" ? law(n) : law.predict(n);
}

/**
 * Greedy allocation: each step goes to the language whose predicted score
 * rises most from it.
 *
 * @example
 * allocateBudget({ laws: { ar: fitAr, zh: fitZh, tr: fitTr }, budget: 1_000_000, step: 10_000 }).pairs;
 */
export function allocateBudget(options: AllocationOptions): Allocation {
  const langs = Object.keys(options.laws);
  if (langs.length === 0) throw new AnalysisError("XA_ANALYSIS_NO_LAWS", "no languages to allocate to", { field: "laws" });
  const { budget } = options;
  if (!Number.isFinite(budget) || budget <= 0) {
    throw new AnalysisError("XA_ANALYSIS_BUDGET", `the budget must be a positive number of pairs, got ${budget}`, { field: "budget" });
  }
  const step = options.step ?? Math.ceil(budget / 1000);
  if (!Number.isFinite(step) || step <= 0)
    throw new AnalysisError("XA_ANALYSIS_BUDGET", `step must be positive, got ${step}`, { field: "step" });
  const minimumOf = (lang: string) => (typeof options.minimum === "number" ? options.minimum : (options.minimum?.[lang] ?? step));
  const pairs: Record<string, number> = {};
  let left = budget;
  for (const lang of langs) {
    pairs[lang] = minimumOf(lang);
    left -= pairs[lang]!;
  }
  if (left < 0) {
    throw new AnalysisError("XA_ANALYSIS_BUDGET", `the minimum allocations need ${budget - left} pairs but the budget is ${budget}`, {
      field: "budget",
      hint: "raise the budget or lower minimum/step",
    });
  }
  const current: Record<string, number> = {};
  for (const lang of langs) {
    current[lang] = evaluate(options.laws[lang]!, pairs[lang]!);
    if (!Number.isFinite(current[lang])) {
      throw new AnalysisError("XA_ANALYSIS_BAD_N", `the ${lang} law is undefined at its starting allocation of ${pairs[lang]} pairs`, {
        field: `minimum.${lang}`,
        hint: "start every language above the law's domain limit (ln N needs N > 1)",
      });
    }
  }
  while (left >= step) {
    let bestLang = langs[0]!;
    let bestGain = Number.NEGATIVE_INFINITY;
    let bestScore = 0;
    for (const lang of langs) {
      const next = evaluate(options.laws[lang]!, pairs[lang]! + step);
      const gain = next - current[lang]!;
      if (gain > bestGain) {
        bestGain = gain;
        bestLang = lang;
        bestScore = next;
      }
    }
    pairs[bestLang]! += step;
    current[bestLang] = bestScore;
    left -= step;
  }
  const meanScore = langs.reduce((s, l) => s + current[l]!, 0) / langs.length;
  return { pairs, predicted: current, meanScore, unallocated: left };
}
