/**
 * Summaries of comparison arms over seeds: mean and sample standard
 * deviation per arm and language, and relative changes against a baseline.
 */
import type { Row } from "./record.js";
import type { ArmResult } from "./study.js";

/** Arithmetic mean (NaN for no values). */
export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** Sample standard deviation (0 for fewer than two values). */
export function sd(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / (values.length - 1));
}

const round = (v: number, digits = 2) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : null);

/**
 * One row per arm and language: QA (contains, EM, F1, chance) and translation
 * (BLEU, chrF) as mean and standard deviation over the arm's seeds.
 */
export function armTable(results: readonly ArmResult[]): Row[] {
  const arms = [...new Set(results.map((r) => r.label))];
  const rows: Row[] = [];
  for (const arm of arms) {
    const runs = results.filter((r) => r.label === arm);
    const langs = [...new Set(runs.flatMap((r) => [...Object.keys(r.qa), ...Object.keys(r.translation)]))];
    for (const lang of langs) {
      const qa = runs.flatMap((r) => {
        const q = r.qa[lang];
        return q ? [q] : [];
      });
      const tr = runs.flatMap((r) => {
        const t = r.translation[lang];
        return t ? [t] : [];
      });
      rows.push({
        arm,
        lang,
        seeds: runs.length,
        qa_contains: round(mean(qa.map((q) => q.contains))),
        qa_contains_sd: round(sd(qa.map((q) => q.contains))),
        qa_em: round(mean(qa.map((q) => q.exactMatch))),
        qa_f1: round(mean(qa.map((q) => q.f1))),
        qa_chance: round(mean(qa.map((q) => q.chance))),
        bleu: round(mean(tr.map((t) => t.bleu))),
        bleu_sd: round(sd(tr.map((t) => t.bleu))),
        chrf: round(mean(tr.map((t) => t.chrf))),
        chrf_sd: round(sd(tr.map((t) => t.chrf))),
      });
    }
  }
  return rows;
}

/** The mean of one metric over an arm's seeds in one language. */
export function armMean(
  results: readonly ArmResult[],
  arm: string,
  lang: string,
  metric: "contains" | "exactMatch" | "f1" | "bleu" | "chrf",
): number {
  const runs = results.filter((r) => r.label === arm);
  const values = runs
    .map((r) => (metric === "bleu" || metric === "chrf" ? r.translation[lang]?.[metric] : r.qa[lang]?.[metric]))
    .filter((v): v is number => v !== undefined);
  return mean(values);
}

/** (system − baseline) / baseline × 100, or NaN when the baseline is 0. */
export function relativeChange(system: number, baseline: number): number {
  return baseline === 0 ? Number.NaN : ((system - baseline) / baseline) * 100;
}

/** What {@link formatRelativeChange} prints for a change that is not a number. */
export const UNDEFINED_CHANGE = "n/a (baseline 0)";

/**
 * A relative change in percent (as {@link relativeChange} returns it, or a
 * mean of such changes) as text, the one way xalign prints it: "+12.3%",
 * "-4.0%", "0.0%"; NaN (a baseline of 0, or no finite change to average)
 * prints as "n/a (baseline 0)", never "NaN%".
 *
 * @example
 * formatRelativeChange(relativeChange(15, 10)); // "+50.0%"
 * formatRelativeChange(relativeChange(3, 0)); // "n/a (baseline 0)"
 */
export function formatRelativeChange(pct: number, digits = 1): string {
  if (Number.isNaN(pct)) return UNDEFINED_CHANGE;
  if (!Number.isFinite(pct)) return pct > 0 ? "+∞%" : "-∞%";
  const text = pct.toFixed(digits);
  if (Number(text) === 0) return `${(0).toFixed(digits)}%`;
  return `${pct > 0 ? "+" : ""}${text}%`;
}

/** The mean of the finite relative changes (NaN when none is finite: every baseline was 0). */
export function meanRelativeChange(changes: readonly number[]): number {
  return mean(changes.filter(Number.isFinite));
}

export type ArmMetric = "contains" | "exactMatch" | "f1" | "bleu" | "chrf";

/** An arm: its label, or a function from a language to the label (e.g. `(l) => \`x-llama-${l}\``). */
export type ArmRef = string | ((lang: string) => string);

export function armLabel(arm: ArmRef, lang: string): string {
  return typeof arm === "string" ? arm : arm(lang);
}

/** Whether a run supports a directional claim "a beats b": see {@link compareOverSeeds}. */
export type Verdict = "reproduces" | "contradicts" | "inconclusive";

export interface SeedComparison {
  /** Means over seeds (each seed's value is its mean over the languages). */
  a: number;
  b: number;
  /** a − b, its standard error over the paired seeds, and the number of seeds paired. */
  difference: number;
  se: number;
  seeds: number;
  /** The chance level both arms were held against (QA), when given. */
  chance?: number;
  verdict: Verdict;
  /** Why, in words, with the numbers. */
  reason: string;
}

/**
 * Tests a directional claim "arm a beats arm b on `metric`" over the seeds
 * both arms ran with: each seed's value is the mean over `languages`, the
 * seeds are paired, and the difference counts when it exceeds two standard
 * errors of the paired differences. It is "inconclusive" when both arms are
 * below `chance` (a QA score at the floor measures guessing, not the claim),
 * with a single seed (no spread to judge by), or within two standard errors.
 *
 * @example
 * compareOverSeeds(results, { a: (l) => `x-llama-${l}`, b: "alpaca (en only)", languages: ["vi"], metric: "chrf" });
 * // { a: 19.9, b: 1.3, difference: 18.6, se: 1.4, seeds: 3, verdict: "reproduces", reason: "..." }
 */
export function compareOverSeeds(
  results: readonly ArmResult[],
  options: {
    a: ArmRef;
    b: ArmRef;
    languages: readonly string[];
    metric: ArmMetric;
    chance?: number;
  },
): SeedComparison {
  const value = (arm: ArmRef, seed: number) => {
    const vs = options.languages.flatMap((lang) => {
      const r = results.find((x) => x.label === armLabel(arm, lang) && x.seed === seed);
      const v =
        options.metric === "bleu" || options.metric === "chrf" ? r?.translation[lang]?.[options.metric] : r?.qa[lang]?.[options.metric];
      return v === undefined ? [] : [v];
    });
    return vs.length === options.languages.length ? mean(vs) : undefined;
  };
  const seeds = [...new Set(results.map((r) => r.seed))].sort((x, y) => x - y);
  const pairs = seeds.flatMap((s) => {
    const a = value(options.a, s);
    const b = value(options.b, s);
    return a !== undefined && b !== undefined ? [{ a, b }] : [];
  });
  const a = mean(pairs.map((p) => p.a));
  const b = mean(pairs.map((p) => p.b));
  const diffs = pairs.map((p) => p.a - p.b);
  const difference = mean(diffs);
  const se = pairs.length > 1 ? sd(diffs) / Math.sqrt(pairs.length) : Number.NaN;
  const n = pairs.length;
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : "n/a");
  const chance = options.chance;
  const base = { a, b, difference, se, seeds: n, ...(chance !== undefined ? { chance } : {}) };
  if (n === 0) return { ...base, verdict: "inconclusive", reason: "no seed ran both arms" };
  if (chance !== undefined && a < chance && b < chance) {
    return {
      ...base,
      verdict: "inconclusive",
      reason: `both arms are below chance (${f(a)} and ${f(b)} vs ${f(chance)}): at the floor, so the claim cannot be tested here`,
    };
  }
  if (n < 2) return { ...base, verdict: "inconclusive", reason: `${f(a)} vs ${f(b)} on one seed: no spread to judge the difference by` };
  const margin = 2 * se;
  const stated = `${f(a)} vs ${f(b)}, difference ${difference >= 0 ? "+" : ""}${f(difference)} ± ${f(se)} (s.e. over ${n} seeds)`;
  if (difference > margin) return { ...base, verdict: "reproduces", reason: stated };
  if (difference < -margin) return { ...base, verdict: "contradicts", reason: stated };
  return { ...base, verdict: "inconclusive", reason: `${stated}: within two standard errors` };
}

/** "reproduces: 19.9 vs 1.3, ..." — a comparison as the findings print it. */
export function verdictText(c: Pick<SeedComparison, "verdict" | "reason">): string {
  return `${c.verdict}: ${c.reason}`;
}
