/**
 * Statistics of a set of examples per language and source: examples, tokens
 * and length percentiles. Plain rows first; a danfojs DataFrame on request
 * (danfojs loads TF.js, ~4 s, so it is imported only then). Both show as a
 * table in the kernel through the Jupyter.display symbol.
 */
import type { InstructionExample } from "./example.js";
import { type PromptFormat, renderPrompt } from "./prompt.js";

/** One row: a (lang, source) group, or the "all" total. */
export interface StatsRow {
  lang: string;
  source: string;
  examples: number;
  /** Tokens of prompt + response over all examples. */
  tokens: number;
  meanTokens: number;
  p50: number;
  p90: number;
  p99: number;
  maxTokens: number;
}

export interface StatsOptions {
  /** Token counter; default {@link approximateTokens}. Pass `(t) => tokenizer.encode(t).length` for real counts. */
  countTokens?: (text: string) => number;
  /** What the counter counts, for the table caption. Default "approximate tokens (words; CJK/Thai characters)". */
  unit?: string;
  format?: PromptFormat;
}

const DISPLAY = Symbol.for("Jupyter.display");
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}]/gu;

/** Whitespace-separated words, with each Han/Kana/Thai character counted as one (those scripts use no spaces). */
export function approximateTokens(text: string): number {
  const unspaced = text.match(UNSPACED)?.length ?? 0;
  const words = text
    .replace(UNSPACED, " ")
    .split(/\s+/)
    .filter((w) => w !== "").length;
  return words + unspaced;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

function row(lang: string, source: string, lengths: number[]): StatsRow {
  const sorted = [...lengths].sort((a, b) => a - b);
  const tokens = sorted.reduce((a, b) => a + b, 0);
  return {
    lang,
    source,
    examples: sorted.length,
    tokens,
    meanTokens: sorted.length ? Math.round((tokens / sorted.length) * 10) / 10 : 0,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    maxTokens: sorted.at(-1) ?? 0,
  };
}

const COLUMNS: (keyof StatsRow)[] = ["lang", "source", "examples", "tokens", "meanTokens", "p50", "p90", "p99", "maxTokens"];

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);
}

function htmlTable(rows: StatsRow[], caption: string): string {
  const head = COLUMNS.map((c) => `<th>${c}</th>`).join("");
  const body = rows.map((r) => `<tr>${COLUMNS.map((c) => `<td>${escapeHtml(String(r[c]))}</td>`).join("")}</tr>`).join("");
  return `<table><caption>${escapeHtml(caption)}</caption><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

/** Statistics rows with table renderings; shows itself as a table in the kernel. */
export class DataStats {
  constructor(
    readonly rows: StatsRow[],
    readonly unit: string,
  ) {}

  /** A markdown table. */
  toMarkdown(): string {
    const lines = [
      `| ${COLUMNS.join(" | ")} |`,
      `|${COLUMNS.map((c) => (c === "lang" || c === "source" ? " --- " : " ---: ")).join("|")}|`,
    ];
    for (const r of this.rows) lines.push(`| ${COLUMNS.map((c) => String(r[c])).join(" | ")} |`);
    return `${lines.join("\n")}\n\ntokens: ${this.unit}`;
  }

  /** Plain objects, for JSON. */
  toJSON(): { unit: string; rows: StatsRow[] } {
    return { unit: this.unit, rows: this.rows.map((r) => ({ ...r })) };
  }

  /** A danfojs DataFrame of the rows, which also shows as a table in the kernel. */
  async toDataFrame(): Promise<import("danfojs-node").DataFrame> {
    const { DataFrame } = await import("danfojs-node");
    const df = new DataFrame(this.rows.map((r) => ({ ...r })));
    const html = htmlTable(this.rows, `tokens: ${this.unit}`);
    Object.defineProperty(df, DISPLAY, { value: () => ({ "text/html": html, "text/plain": this.toMarkdown() }), enumerable: false });
    return df;
  }

  [DISPLAY](): Record<string, string> {
    return { "text/html": htmlTable(this.rows, `tokens: ${this.unit}`), "text/plain": this.toMarkdown() };
  }
}

/**
 * Statistics per (language, source), sorted, then an "all" row. Lengths are
 * of the rendered prompt plus response.
 *
 * @example
 * const stats = computeStats(mix.train);
 * stats.rows.find((r) => r.lang === "zh")?.p90;
 * await stats.toDataFrame(); // shows as a table in a notebook
 */
export function computeStats(examples: Iterable<InstructionExample>, options: StatsOptions = {}): DataStats {
  const count = options.countTokens ?? approximateTokens;
  const groups = new Map<string, number[]>();
  const all: number[] = [];
  for (const e of examples) {
    const { prompt, response } = renderPrompt(e, options.format ?? "alpaca");
    const n = count(prompt) + count(response);
    const key = `${e.lang}\u0000${e.source}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(n);
    all.push(n);
  }
  const rows = [...groups.keys()].sort().map((key) => {
    const [lang, source] = key.split("\u0000") as [string, string];
    return row(lang, source, groups.get(key) as number[]);
  });
  rows.push(row("all", "all", all));
  return new DataStats(
    rows,
    options.unit ?? (options.countTokens ? "tokenizer tokens" : "approximate tokens (words; CJK/Thai characters)"),
  );
}
