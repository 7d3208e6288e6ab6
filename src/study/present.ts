/**
 * Short named helpers for the study notebooks' cells, so that a cell reads
 * like a line of the method section instead of a 200-character expression:
 * the CoIT mixture of a language, running arms over seeds, relative gains of
 * arms over a baseline, an arm's mean over languages, a cell of the arm
 * table, the competence note, a tuning summary, numbers formatted without
 * "NaN", a run's findings, and collecting an async iterable.
 *
 * @example
 * const gains = S.relativeGains(results, {
 *   languages,
 *   baseline: { name: "alpaca", arm: "alpaca (en only)" },
 *   systems: { x_llama: (l) => `x-llama-${l}`, m_llama: "m-llama" },
 * });
 * await record.table("gains", gains, "Non-English QA and relative change vs English-only tuning");
 */
import { join, relative, sep } from "node:path";
import type { InstructionExample } from "../data/example.js";
import { type ArmMetric, type ArmRef, armLabel, armMean, formatRelativeChange, mean, relativeChange } from "./compare.js";

export type { ArmMetric, ArmRef } from "./compare.js";

import type { Competence, ReadingProbe } from "./evaluate.js";
import type { Finding, Row, RunRecord } from "./record.js";
import type { ArmResult, ArmSpec, Study } from "./study.js";
import type { Tuned } from "./tune.js";

/** A metric of an arm result: QA (contains, exactMatch, f1) or translation (bleu, chrf). */

/**
 * One row per language: the baseline arm's mean, each system's mean and its
 * relative change over the baseline in percent (`<system>_gain_pct`; NaN,
 * shown as n/a, where the baseline is 0).
 *
 * @example
 * S.relativeGains(results, { languages: ["vi"], baseline: { name: "alpaca", arm: "alpaca (en only)" }, systems: { x_llama: (l) => `x-llama-${l}` } });
 * // [{ lang: "vi", alpaca: 10, x_llama: 15, x_llama_gain_pct: 50 }]
 */
export function relativeGains(
  results: readonly ArmResult[],
  spec: {
    languages: readonly string[];
    baseline: { name: string; arm: ArmRef };
    systems: Record<string, ArmRef>;
    /** Default "contains". */
    metric?: ArmMetric;
  },
): Row[] {
  const metric = spec.metric ?? "contains";
  return spec.languages.map((lang) => {
    const base = armMean(results, armLabel(spec.baseline.arm, lang), lang, metric);
    const row: Row = { lang, [spec.baseline.name]: base };
    for (const [name, arm] of Object.entries(spec.systems)) {
      const value = armMean(results, armLabel(arm, lang), lang, metric);
      row[name] = value;
      row[`${name}_gain_pct`] = relativeChange(value, base);
    }
    return row;
  });
}

/**
 * The mean over languages of an arm's per-language mean (NaN when no language
 * has a value).
 *
 * @example
 * S.meanOverLanguages(results, ["vi", "zh"], (l) => `${l}:target`, "contains");
 */
export function meanOverLanguages(results: readonly ArmResult[], languages: readonly string[], arm: ArmRef, metric: ArmMetric): number {
  return mean(languages.map((l) => armMean(results, armLabel(arm, l), l, metric)).filter((v) => !Number.isNaN(v)));
}

/**
 * One numeric cell of an arm table (armTable's rows): NaN when the row or
 * the value is missing.
 *
 * @example
 * S.armCell(table, "m-llama", "vi", "qa_contains_sd"); // 1.2
 */
export function armCell(table: readonly Row[], arm: string, lang: string, column: string): number {
  const v = table.find((r) => r.arm === arm && r.lang === lang)?.[column];
  return typeof v === "number" ? v : Number.NaN;
}

/**
 * The sentence under a competence table: which languages the base model did
 * not acquire in pretraining, and what that means for the tuning results.
 *
 * @example
 * S.competenceNote(competence.unlearned);
 */
export function competenceNote(unlearned: readonly string[], competence?: Pick<Competence, "reading">): string {
  const languages =
    unlearned.length > 0
      ? `Not acquired in pretraining (within 5 points of chance): ${unlearned.join(", ")}. ` +
        "Tuning results for these languages compare floors, not transfer."
      : "Every language is above chance before tuning, so transfer can show.";
  return competence ? `${readingNote(competence.reading)} ${languages}` : languages;
}

/**
 * Whether the base model reads, in one sentence with its numbers: held-out English QA at least 20 points
 * above chance (issue 16's bar), the counterfactual and memorised rates, and the copy probe.
 */
export function readingNote(r: ReadingProbe): string {
  const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
  const reads = r.heldOut.accuracy >= r.heldOut.chance + 0.2;
  const cf = r.counterfactual
    ? `, counterfactual passages ${pct(r.counterfactual.accuracy)} (${pct(r.counterfactual.memorised ?? 0)} answered from memory)`
    : "";
  const numbers = `held-out English QA ${pct(r.heldOut.accuracy)} vs chance ${pct(r.heldOut.chance)}${cf}, copy probe ${pct(r.copy)}`;
  return reads
    ? `The base model reads: ${numbers}.`
    : `The base model does not read yet (${numbers}): QA below compares floors; see notebooks/README.md.`;
}

/**
 * A tuning run in one line: "final loss 1.2345 after 120 steps". (The
 * training display already draws the loss curve; this is its summary.)
 */
export function tuneSummary(tuned: Pick<Tuned, "result">): string {
  return `final loss ${formatNumber(tuned.result.finalLoss, 4)} after ${tuned.result.steps} steps`;
}

/**
 * A number for a sentence: fixed digits, "n/a" for NaN or a missing value
 * (never "NaN").
 *
 * @example
 * S.formatNumber(12.345); // "12.3"
 * S.formatNumber(Number.NaN); // "n/a"
 */
export function formatNumber(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "n/a";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
  return value.toFixed(digits);
}

/**
 * "x ± h" with the same digits; "n/a" when x is not a number.
 *
 * @example
 * S.formatInterval(12.345, 0.5, 2); // "12.35 ± 0.50"
 */
export function formatInterval(value: number, halfWidth: number, digits = 1): string {
  if (Number.isNaN(value)) return "n/a";
  return Number.isFinite(halfWidth) ? `${formatNumber(value, digits)} ± ${formatNumber(halfWidth, digits)}` : formatNumber(value, digits);
}

/**
 * A finding's number as text: relative changes (keys ending in `_pct`)
 * through {@link formatRelativeChange}, other numbers with `digits`, strings
 * as they are.
 */
export function formatFindingNumber(key: string, value: number | string, digits = 2): string {
  if (typeof value === "string") return value;
  if (/_pct$/.test(key)) return formatRelativeChange(value);
  return Number.isInteger(value) ? String(value) : formatNumber(value, digits);
}

/**
 * The CoIT mixture of one language (the study's x-LLaMA data): English
 * Alpaca, the language's Alpaca, and `n` translation instructions on the
 * given side (default target: English → the language), `n` of each.
 *
 * @example
 * const examples = await S.coitExamples(study, "vi", settings.tune.examplesPerSource);
 */
export async function coitExamples(
  study: Pick<Study, "alpaca" | "translationExamples">,
  lang: string,
  n: number,
  options: { side?: "target" | "source" | "both"; english?: boolean } = {},
): Promise<InstructionExample[]> {
  return [
    ...(options.english === false ? [] : await study.alpaca("en", n)),
    ...(await study.alpaca(lang, n)),
    ...(await study.translationExamples(lang, n, options.side ?? "target")),
  ];
}

/**
 * Runs every arm with every seed (seeds outer, as the notebooks do), timed
 * under "arms" in the record (and each arm's tuning and evaluation seconds,
 * see RunRecord.armDurations), each writing its training metrics to
 * <run>/train/<label>-<seed>; returns the results in order.
 *
 * @example
 * const results = await S.runArms(study, record, arms, { seeds, qaLanguages: ["en", ...languages], translationLanguages: languages });
 */
export async function runArms(
  study: Pick<Study, "runArm">,
  record: Pick<RunRecord, "dir" | "time" | "armDurations">,
  arms: readonly { label: string; examples: readonly InstructionExample[] }[],
  options: Omit<ArmSpec, "label" | "seed" | "examples" | "outDir"> & { seeds: readonly number[] },
): Promise<ArmResult[]> {
  const { seeds, ...rest } = options;
  const results: ArmResult[] = [];
  for (const seed of seeds) {
    for (const arm of arms) {
      const outDir = join(record.dir, "train", `${arm.label.replace(/[^A-Za-z0-9._-]+/g, "-")}-${seed}`);
      const result = await record.time("arms", () => study.runArm({ ...rest, label: arm.label, seed, examples: arm.examples, outDir }));
      record.armDurations(result);
      results.push(result);
    }
  }
  return results;
}

/**
 * One language's scaling arms (notebooks 04, 05, 07): English and the
 * language's Alpaca (`n` each) plus the first `size` en→X translation pairs
 * for each size, so that each subset contains every smaller one; one seed,
 * evaluated on en→X translation, timed under "arms" (and its parts), each writing its
 * training metrics to <run>/train/<lang>-<size>. Returns one result per size.
 *
 * @example
 * const runs = await S.runScaling(study, record, "vi", { sizes: [125, 500, 2000], n, seed: 0 });
 * runs.map(({ pairs, result }) => ({ n: pairs, score: result.translation.vi!.bleu }));
 */
export async function runScaling(
  study: Pick<Study, "alpaca" | "translationExamples" | "runArm">,
  record: Pick<RunRecord, "dir" | "time" | "armDurations">,
  lang: string,
  options: { sizes: readonly number[]; n: number; seed: number },
): Promise<{ pairs: number; result: ArmResult }[]> {
  const { sizes, n, seed } = options;
  const base = [...(await study.alpaca("en", n)), ...(await study.alpaca(lang, n))];
  const all = await study.translationExamples(lang, Math.max(...sizes), "target");
  const out: { pairs: number; result: ArmResult }[] = [];
  for (const size of sizes) {
    const outDir = join(record.dir, "train", `${lang}-${size}`);
    const examples = [...base, ...all.slice(0, size)];
    const spec = { label: `${lang}:${size}`, seed, examples, outDir, translationLanguages: [lang] };
    const result = await record.time("arms", () => study.runArm(spec));
    record.armDurations(result);
    out.push({ pairs: size, result });
  }
  return out;
}

/**
 * The items of an async iterable as an array (at most `limit`).
 *
 * @example
 * const hinted = await S.collect(data.buildHintedTranslation(pairs, { srcLang: "en", tgtLang: "vi", source: "hinted-vi", seed: 1 }));
 */
export async function collect<T>(items: AsyncIterable<T>, limit = Number.POSITIVE_INFINITY): Promise<T[]> {
  const out: T[] = [];
  if (limit <= 0) return out;
  for await (const item of items) {
    out.push(item);
    if (out.length >= limit) break;
  }
  return out;
}

/** A run's findings as a notebook shows them (see {@link findingsView}). */
export interface FindingsView {
  readonly findings: readonly Finding[];
  readonly runDir: string;
  toString(): string;
  toHtml(): string;
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * The findings of a run for a notebook's last cell: each sentence, its
 * numbers (relative changes as formatRelativeChange prints them), the study's
 * claim where one was recorded, and the run folder as a link relative to the
 * notebook's folder (the working directory).
 *
 * @example
 * await record.finish();
 * record.findingsView(); // the last expression of the "Findings" cell
 */
export function findingsView(findings: readonly Finding[], runDir: string, from = process.cwd()): FindingsView {
  const numbers = (f: Finding) =>
    Object.entries(f.numbers)
      .map(([k, v]) => `${k} ${formatFindingNumber(k, v)}`)
      .join(", ");
  const link = relative(from, runDir).split(sep).join("/") || ".";
  const text = () =>
    [
      ...findings.map((f) => `- ${f.finding}${f.claim ? ` (study: ${f.claim})` : ""}${numbers(f) ? `\n  ${numbers(f)}` : ""}`),
      `Run folder: ${runDir}`,
    ].join("\n");
  const html = () =>
    `<div class="xalign-findings"><ul>${findings
      .map(
        (f) =>
          `<li><p>${escapeHtml(f.finding)}</p>` +
          `${f.claim ? `<p><em>The study: ${escapeHtml(f.claim)}</em></p>` : ""}` +
          `${numbers(f) ? `<p><code>${escapeHtml(numbers(f))}</code></p>` : ""}</li>`,
      )
      .join("")}</ul><p>Run folder: <a href="${escapeHtml(link)}">${escapeHtml(link)}</a></p></div>`;
  return {
    findings,
    runDir,
    toString: text,
    toHtml: html,
    [Symbol.for("Jupyter.display")]: () => ({ "text/html": html(), "text/plain": text() }),
  } as FindingsView;
}
