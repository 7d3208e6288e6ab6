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
