/**
 * Scores predictions by language and metric: a plain table for code and
 * JSON, and a danfojs DataFrame for notebooks (danfojs is loaded only when
 * asked for; it takes seconds to import).
 */
import type { DataFrame } from "danfojs-node";
import { AnalysisError } from "../util/errors.js";
import { BLEU, type BLEUOptions } from "./bleu.js";
import { CHRF } from "./chrf.js";
import type { PredictionRecord } from "./generation.js";
import { type NormalizeOptions, qaScores } from "./qa.js";
import { rougeScores } from "./rouge.js";

/** Metrics scoreByLanguage can compute. */
export type MetricName = "bleu" | "chrf" | "chrf++" | "em" | "f1" | "contains" | "rouge1" | "rouge2" | "rougeL";

/** Settings for {@link scoreByLanguage}. */
export interface ScoreTableOptions {
  /** Default ["bleu", "chrf"]; QA runs use ["contains", "em", "f1"]. */
  metrics?: readonly MetricName[];
  /** BLEU settings (spBLEU as in the study: `{ tokenize: spmTokenizer(model), effectiveOrder: true }`). */
  bleu?: BLEUOptions;
  qa?: NormalizeOptions;
  /** Add an "avg" row, the unweighted mean over languages (default true). */
  average?: boolean;
}

/** One cell of the table. */
export interface ScoreRow {
  lang: string;
  metric: MetricName;
  value: number;
  /** Examples behind the value (languages for the avg row). */
  count: number;
}

/** The plain-object form: long rows and a lang → metric → value table. */
export interface ScoreTable {
  metrics: MetricName[];
  languages: string[];
  rows: ScoreRow[];
  table: Record<string, Partial<Record<MetricName, number>>>;
}

const ALL_METRICS: readonly MetricName[] = ["bleu", "chrf", "chrf++", "em", "f1", "contains", "rouge1", "rouge2", "rougeL"];

function referencesOf(rec: PredictionRecord): string[] {
  const r = rec.reference;
  const list = r === null || r === undefined ? [] : typeof r === "string" ? [r] : r;
  if (list.length === 0) {
    throw new AnalysisError("XA_EVAL_NO_REFERENCE", `prediction "${rec.id}" has no reference to score against`, {
      field: "reference",
      hint: "give every example a reference (translation) or answers (QA)",
    });
  }
  return list;
}

function scoreGroup(records: PredictionRecord[], metric: MetricName, options: ScoreTableOptions): number {
  const hyps = records.map((r) => r.prediction);
  const refs = records.map(referencesOf);
  const width = Math.max(...refs.map((r) => r.length));
  const streams = Array.from({ length: width }, (_, k) => refs.map((r) => r[k] ?? null));
  switch (metric) {
    case "bleu":
      return new BLEU(options.bleu).corpusScore(hyps, streams).score;
    case "chrf":
      return new CHRF().corpusScore(hyps, streams).score;
    case "chrf++":
      return new CHRF({ wordOrder: 2 }).corpusScore(hyps, streams).score;
    case "em":
    case "f1":
    case "contains": {
      const qa = qaScores(
        records.map((r, i) => ({ prediction: r.prediction, answers: refs[i]!, lang: r.lang ?? "en" })),
        options.qa,
      );
      return metric === "em" ? qa.exactMatch : metric === "f1" ? qa.f1 : qa.contains;
    }
    default: {
      const rouge = rougeScores(hyps, refs);
      return rouge[metric];
    }
  }
}

/**
 * Scores records per language (records without lang are "all").
 *
 * @example
 * const t = scoreByLanguage(records, { metrics: ["contains"] });
 * t.table.zh.contains; // e.g. 61.2
 */
export function scoreByLanguage(records: readonly PredictionRecord[], options: ScoreTableOptions = {}): ScoreTable {
  const metrics = [...(options.metrics ?? ["bleu", "chrf"])];
  for (const m of metrics) {
    if (!ALL_METRICS.includes(m)) {
      throw new AnalysisError("XA_EVAL_METRIC", `unknown metric "${m}"`, { field: "metrics", hint: `use ${ALL_METRICS.join(", ")}` });
    }
  }
  if (records.length === 0) throw new AnalysisError("XA_EVAL_EMPTY", "no predictions to score", { field: "records" });
  const groups = new Map<string, PredictionRecord[]>();
  for (const rec of records) {
    const lang = rec.lang ?? "all";
    if (!groups.has(lang)) groups.set(lang, []);
    groups.get(lang)!.push(rec);
  }
  const languages = [...groups.keys()].sort();
  const rows: ScoreRow[] = [];
  const table: ScoreTable["table"] = {};
  for (const lang of languages) {
    table[lang] = {};
    for (const metric of metrics) {
      const group = groups.get(lang)!;
      const value = scoreGroup(group, metric, options);
      rows.push({ lang, metric, value, count: group.length });
      table[lang]![metric] = value;
    }
  }
  if ((options.average ?? true) && languages.length > 1) {
    table.avg = {};
    for (const metric of metrics) {
      const values = languages.map((l) => table[l]![metric]!);
      const value = values.reduce((a, b) => a + b, 0) / values.length;
      rows.push({ lang: "avg", metric, value, count: languages.length });
      table.avg[metric] = value;
    }
    languages.push("avg");
  }
  return { metrics, languages, rows, table };
}

/**
 * The score table as a danfojs DataFrame: one row per language (then "avg"),
 * a `lang` column and one column per metric.
 *
 * @example
 * const df = await scoreTable(records, { metrics: ["bleu", "chrf"] });
 * df.print();
 */
export async function scoreTable(records: readonly PredictionRecord[], options: ScoreTableOptions = {}): Promise<DataFrame> {
  const scores = scoreByLanguage(records, options);
  return scoreTableToDataFrame(scores);
}

/** A plain ScoreTable as a danfojs DataFrame. */
export async function scoreTableToDataFrame(scores: ScoreTable): Promise<DataFrame> {
  const danfo = await import("danfojs-node");
  const data = scores.languages.map((lang) => ({ lang, ...scores.table[lang] }));
  return new danfo.DataFrame(data, { columns: ["lang", ...scores.metrics] });
}
