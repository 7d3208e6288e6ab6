/**
 * Jupyter `error` content (ename, evalue, traceback) for what a cell threw or
 * for its type errors, with stack frames mapped back to the cell's own lines
 * ("Cell In[3], line 2", as IPython writes them).
 */
import { SourceMap, type SourceMapPayload } from "node:module";
import { plainText } from "../src/notebook/mime.js";
import type { CellSourceMaps } from "./typescript.js";

export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

/** A type error reported by the compiler, 1-based line and column in the cell. */
export interface CellDiagnostic {
  line: number;
  column: number;
  message: string;
  file: string | undefined;
}

/** What the kernel knows about one executed cell, to map its stack frames. */
export interface CellRecord {
  count: number;
  source: string;
  maps: CellSourceMaps | undefined;
  /** Characters the executor put before the code on the first line. */
  firstLineOffset: number;
}

const CELL_FRAME = /cell\[(\d+)\]:(\d+):(\d+)/g;
const INTERRUPT_MESSAGES = ["Script execution was interrupted by `SIGINT`", "Interrupted asynchronously"];

/** The cell name used in stack traces (set with //# sourceURL). */
export function cellScriptName(count: number): string {
  return `cell[${count}]`;
}

/** Error content for compile-time diagnostics. */
export function diagnosticsError(count: number, source: string, diagnostics: CellDiagnostic[]): ErrorContent {
  const lines = source.split("\n");
  const first = diagnostics[0];
  const traceback = [`TSError: ${diagnostics.length} TypeScript error${diagnostics.length === 1 ? "" : "s"} in Cell In[${count}]`];
  for (const d of diagnostics) {
    const where = d.file ? `${d.file}, line ${d.line}` : `Cell In[${count}], line ${d.line}, column ${d.column}`;
    traceback.push(`${where}: ${d.message}`);
    const text = d.file ? undefined : lines[d.line - 1];
    if (text !== undefined)
      traceback.push(`${String(d.line).padStart(5)} | ${text}\n${" ".repeat(5)} | ${" ".repeat(Math.max(0, d.column - 1))}^`);
  }
  const evalue = first ? `${first.message} (${first.file ?? `Cell In[${count}]`}, line ${first.line})` : "type errors";
  return { ename: "TSError", evalue, traceback };
}

/** Whether a thrown value is how Node/tslab report an interrupt. */
export function isInterruptError(value: unknown): boolean {
  return value instanceof Error && (INTERRUPT_MESSAGES.includes(value.message) || value.name === "InterruptedError");
}

/** Error content for a value thrown at run time; `cells` maps frames of earlier cells too. */
export function thrownError(value: unknown, cells: ReadonlyMap<number, CellRecord>): ErrorContent {
  if (!(value instanceof Error)) {
    const evalue = plainText(value);
    return { ename: "Uncaught", evalue, traceback: [`Uncaught ${evalue}`] };
  }
  const ename = value.name || value.constructor?.name || "Error";
  const evalue = value.message;
  const stack = typeof value.stack === "string" ? value.stack : `${ename}: ${evalue}`;
  const frames = stack.split("\n").filter((l) => /^\s+at /.test(l));
  // Frames after the last cell frame are the kernel calling the cell: not the user's concern.
  let last = -1;
  frames.forEach((f, i) => {
    if (f.includes("cell[")) last = i;
  });
  const kept = last >= 0 ? frames.slice(0, last + 1) : frames.filter((f) => !/node:vm|tslab[\\/]dist|[\\/]kernel[\\/]/.test(f));
  const traceback = [`${ename}: ${evalue}`];
  let excerpt: string | undefined;
  for (const frame of kept) {
    traceback.push(
      frame.replace(CELL_FRAME, (_all, n: string, l: string, c: string) => {
        const cell = cells.get(Number(n));
        const line = cell ? cellLine(cell, Number(l), Number(c)) : undefined;
        if (line === undefined) return `Cell In[${n}]`;
        if (excerpt === undefined && cell) excerpt = sourceExcerpt(cell, line);
        return `Cell In[${n}], line ${line}`;
      }),
    );
  }
  if (excerpt) traceback.push(excerpt);
  return { ename, evalue, traceback };
}

/** The 1-based cell line of a 1-based line/column in the code that ran. */
export function cellLine(cell: CellRecord, line: number, column: number): number | undefined {
  if (!cell.maps) return undefined;
  try {
    const cjsColumn = line === 1 ? Math.max(0, column - 1 - cell.firstLineOffset) : column - 1;
    const esm = findEntry(cell.maps.esmToCjs, line - 1, cjsColumn);
    if (!esm) return undefined;
    const ts = findEntry(cell.maps.tsToEsm, esm.originalLine, esm.originalColumn);
    if (!ts) return undefined;
    // tslab prefixes each cell with one line ("export {};").
    const cellLineNumber = ts.originalLine;
    return cellLineNumber >= 1 ? cellLineNumber : undefined;
  } catch {
    return undefined;
  }
}

function findEntry(payload: unknown, line: number, column: number): { originalLine: number; originalColumn: number } | undefined {
  const entry = new SourceMap(payload as SourceMapPayload).findEntry(line, column) as Partial<{
    originalLine: number;
    originalColumn: number;
  }>;
  if (entry?.originalLine === undefined || entry.originalColumn === undefined) return undefined;
  return { originalLine: entry.originalLine, originalColumn: entry.originalColumn };
}

function sourceExcerpt(cell: CellRecord, line: number): string {
  const lines = cell.source.split("\n");
  const out = [`Cell In[${cell.count}], line ${line}:`];
  for (let i = Math.max(1, line - 2); i <= Math.min(lines.length, line + 1); i++) {
    out.push(`${i === line ? "---->" : "     "} ${String(i).padStart(3)} ${lines[i - 1]}`);
  }
  return out.join("\n");
}
