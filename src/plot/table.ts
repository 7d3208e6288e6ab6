/**
 * A results table that shows itself in Jupyter (text/html and text/plain),
 * for score tables and the like; numbers print with fixed decimals.
 */
import type { ScoreTable } from "../eval/scores.js";

export type Cell = string | number | boolean | null | undefined;

export interface TableOptions {
  /** Column order (default: keys of the first row, then any new keys). */
  columns?: readonly string[];
  /** Decimals for non-integer numbers (default 2). */
  digits?: number;
  caption?: string;
  /** Columns always printed with `digits` decimals, even when every value is whole (scores). */
  fixedColumns?: readonly string[];
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * A table of rows.
 *
 * @example
 * new Table([{ lang: "zh", bleu: 31.2 }, { lang: "ar", bleu: 25.04 }], { caption: "spBLEU" }); // shows as an HTML table
 */
export class Table {
  readonly rows: ReadonlyArray<Record<string, Cell>>;
  readonly columns: readonly string[];
  readonly digits: number;
  readonly caption: string | undefined;
  private readonly fixed: ReadonlySet<string>;

  constructor(rows: ReadonlyArray<Record<string, Cell>>, options: TableOptions = {}) {
    this.rows = rows;
    const cols = options.columns ? [...options.columns] : [];
    if (!options.columns) for (const row of rows) for (const k of Object.keys(row)) if (!cols.includes(k)) cols.push(k);
    this.columns = cols;
    this.digits = options.digits ?? 2;
    this.caption = options.caption;
    this.fixed = new Set(options.fixedColumns ?? []);
  }

  /** A score table (from scoreByLanguage) as languages × metrics. */
  static fromScores(scores: ScoreTable, options: Omit<TableOptions, "columns" | "fixedColumns"> = {}): Table {
    const rows = scores.languages.map((lang) => ({ lang, ...scores.table[lang] }));
    return new Table(rows, { ...options, columns: ["lang", ...scores.metrics], fixedColumns: scores.metrics });
  }

  /** Columns whose numbers are all integers print without decimals (counts); others with `digits`. */
  private integerColumn(column: string): boolean {
    return (
      !this.fixed.has(column) &&
      this.rows.every((r) => typeof r[column] !== "number" || Number.isInteger(r[column]) || !Number.isFinite(r[column]))
    );
  }

  private cell(value: Cell, column: string): string {
    if (value === null || value === undefined) return "";
    // NaN is "no value" here (e.g. a relative change against a baseline of 0): never print "NaN".
    if (typeof value === "number" && Number.isNaN(value)) return "n/a";
    if (typeof value === "number" && !Number.isFinite(value)) return value > 0 ? "∞" : "-∞";
    if (typeof value === "number") return this.integerColumn(column) ? String(value) : value.toFixed(this.digits);
    return String(value);
  }

  /** Fixed-width text with right-aligned numbers. */
  toString(): string {
    const cells = this.rows.map((r) => this.columns.map((c) => this.cell(r[c], c)));
    const widths = this.columns.map((c, j) => Math.max(c.length, ...cells.map((row) => row[j]!.length)));
    const numeric = this.columns.map((c) => this.rows.some((r) => typeof r[c] === "number"));
    const fmt = (row: string[]) => row.map((v, j) => (numeric[j] ? v.padStart(widths[j]!) : v.padEnd(widths[j]!))).join("  ");
    const lines = [fmt([...this.columns]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(fmt)];
    return `${this.caption ? `${this.caption}\n` : ""}${lines.join("\n")}`;
  }

  toHtml(): string {
    const head = this.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join("");
    const body = this.rows
      .map((r) => {
        const tds = this.columns.map((c) => {
          const v = r[c];
          const align = typeof v === "number" ? ' style="text-align:right"' : "";
          return `<td${align}>${escapeHtml(this.cell(v, c))}</td>`;
        });
        return `<tr>${tds.join("")}</tr>`;
      })
      .join("\n");
    const caption = this.caption ? `<caption>${escapeHtml(this.caption)}</caption>` : "";
    return `<table class="xalign-table">${caption}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
  }

  [Symbol.for("Jupyter.display")](): Record<string, string> {
    return { "text/html": this.toHtml(), "text/plain": this.toString() };
  }
}
