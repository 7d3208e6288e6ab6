/**
 * danfojs DataFrames and Series as a cell's result: an HTML table and an
 * aligned text table, as pandas shows in IPython (index on the left, long
 * frames cut to their first and last rows with the shape below), instead of
 * the object's internals. Recognised by shape, not by class, so any copy of
 * danfojs (the notebook's or xalign's) is shown the same way.
 */

/** The parts of a danfojs DataFrame or Series that are shown. */
export interface FrameLike {
  columns: readonly unknown[];
  index: readonly unknown[];
  values: readonly unknown[];
  shape: readonly number[];
}

/** More rows than this are cut to the first and last {@link EDGE_ROWS} (pandas' max_rows). */
export const MAX_ROWS = 60;
export const EDGE_ROWS = 10;

/** Whether `value` is a danfojs DataFrame or Series (by constructor name and fields). */
export function isDanfoFrame(value: unknown): value is FrameLike {
  if (value === null || typeof value !== "object") return false;
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  if (name !== "DataFrame" && name !== "Series") return false;
  const v = value as Partial<Record<keyof FrameLike, unknown>>;
  try {
    return Array.isArray(v.columns) && Array.isArray(v.index) && Array.isArray(v.values) && Array.isArray(v.shape);
  } catch {
    // danfojs getters throw on a frame in an odd state: not shown as a table.
    return false;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return "NaN";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

/** Rows as [index, cells] with the cut (null) where rows were left out. */
function visibleRows(frame: FrameLike): ([string, string[]] | null)[] {
  const series = frame.constructor.name === "Series";
  const rows = frame.values.map((row, i): [string, string[]] => [
    cellText(frame.index[i]),
    series ? [cellText(row)] : (Array.isArray(row) ? row : [row]).map(cellText),
  ]);
  if (rows.length <= MAX_ROWS) return rows;
  return [...rows.slice(0, EDGE_ROWS), null, ...rows.slice(-EDGE_ROWS)];
}

function headers(frame: FrameLike): string[] {
  return frame.columns.map(cellText);
}

function shapeText(frame: FrameLike): string {
  const [rows = 0, cols = 1] = frame.shape;
  return frame.constructor.name === "Series" ? `Length: ${rows}, name: ${headers(frame)[0] ?? ""}` : `${rows} rows × ${cols} columns`;
}

/** The HTML table (class "dataframe", as pandas writes it). */
export function frameHtml(frame: FrameLike): string {
  const cols = headers(frame);
  const rows = visibleRows(frame);
  const head = `<thead><tr style="text-align: right;"><th></th>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}</tr></thead>`;
  const body = rows
    .map((r) =>
      r === null
        ? `<tr><th>…</th>${cols.map(() => "<td>…</td>").join("")}</tr>`
        : `<tr><th>${escapeHtml(r[0])}</th>${r[1].map((c) => `<td>${escapeHtml(c)}</td>`).join("")}</tr>`,
    )
    .join("\n");
  const cut = rows.includes(null) || frame.constructor.name === "Series" ? `<p>${escapeHtml(shapeText(frame))}</p>` : "";
  return `<div><table border="1" class="dataframe">${head}\n<tbody>\n${body}\n</tbody></table>${cut}</div>`;
}

/** Aligned text: index on the left, values right-aligned, a "..." row where rows were cut. */
export function frameText(frame: FrameLike): string {
  const cols = headers(frame);
  const rows = visibleRows(frame);
  const series = frame.constructor.name === "Series";
  const grid: string[][] = [
    ...(series ? [] : [["", ...cols]]),
    ...rows.map((r) => (r === null ? ["...", ...cols.map(() => "...")] : [r[0], ...r[1]])),
  ];
  const widths = grid[0]?.map((_, j) => Math.max(...grid.map((row) => (row[j] ?? "").length))) ?? [];
  const lines = grid.map((row) => row.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join("  "));
  if (series || rows.includes(null)) lines.push("", shapeText(frame));
  return lines.join("\n");
}

/** The bundle a DataFrame or Series shows as. */
export function frameBundle(frame: FrameLike): Record<string, string> {
  return { "text/html": frameHtml(frame), "text/plain": frameText(frame) };
}
