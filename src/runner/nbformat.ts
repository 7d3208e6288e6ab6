/**
 * Reading and writing notebooks (nbformat 4.5) and papermill-style
 * parameter injection.
 */
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { ConfigError, NotebookError } from "../util/errors.js";
import { sha256, stableStringify, writeFileAtomic } from "../util/fs.js";

export type MultilineString = string | string[];

export interface Output {
  output_type: "stream" | "display_data" | "execute_result" | "error";
  [key: string]: unknown;
}

export interface Cell {
  id?: string;
  cell_type: "code" | "markdown" | "raw";
  source: MultilineString;
  metadata: Record<string, unknown> & { tags?: string[] };
  outputs?: Output[];
  execution_count?: number | null;
  attachments?: Record<string, unknown>;
}

export interface Notebook {
  nbformat: number;
  nbformat_minor: number;
  metadata: Record<string, unknown>;
  cells: Cell[];
}

/** The cell tag papermill reads parameters from, and the one of the cell it injects. */
export const PARAMETERS_TAG = "parameters";
export const INJECTED_TAG = "injected-parameters";

/** A cell's source as one string. */
export function sourceText(cell: Cell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

/** Reads a notebook (nbformat 4), checking the shape; cells get ids (4.5) if they had none. */
export async function readNotebook(path: string): Promise<Notebook> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new NotebookError("XA_NOTEBOOK_READ", `cannot read the notebook: ${(err as Error).message}`, {
      file: path,
      hint: "pass an .ipynb file (JSON, nbformat 4)",
      cause: err,
    });
  }
  const nb = raw as Partial<Notebook>;
  if (nb.nbformat !== 4 || !Array.isArray(nb.cells)) {
    throw new NotebookError("XA_NOTEBOOK_FORMAT", `not an nbformat 4 notebook (nbformat ${String(nb.nbformat)})`, {
      file: path,
      field: "nbformat",
      hint: "convert it with `jupyter nbconvert --to notebook` first",
    });
  }
  nb.cells.forEach((cell, i) => {
    if (!["code", "markdown", "raw"].includes(cell?.cell_type) || (typeof cell.source !== "string" && !Array.isArray(cell.source))) {
      throw new NotebookError("XA_NOTEBOOK_FORMAT", `cell ${i + 1} has no valid cell_type/source`, {
        file: path,
        field: `cells[${i}]`,
        hint: "repair the notebook in Jupyter",
      });
    }
  });
  return upgradeTo45({ nbformat: 4, nbformat_minor: nb.nbformat_minor ?? 0, metadata: nb.metadata ?? {}, cells: nb.cells });
}

/** Adds cell ids (required from 4.5 on), derived from position and source so reruns keep them. */
export function upgradeTo45(nb: Notebook): Notebook {
  const seen = new Set<string>();
  const cells = nb.cells.map((cell, i) => {
    let id = cell.id && /^[a-zA-Z0-9-_]{1,64}$/.test(cell.id) && !seen.has(cell.id) ? cell.id : undefined;
    id ??= sha256(`${i}\n${sourceText(cell)}`).slice(0, 8);
    while (seen.has(id)) id = sha256(id).slice(0, 8);
    seen.add(id);
    const out: Cell = { ...cell, id, metadata: cell.metadata ?? {} };
    if (cell.cell_type === "code") {
      out.outputs = cell.outputs ?? [];
      out.execution_count = cell.execution_count ?? null;
    }
    return out;
  });
  return { ...nb, nbformat: 4, nbformat_minor: Math.max(5, nb.nbformat_minor), cells };
}

/** Writes a notebook atomically, formatted as Jupyter does (sorted keys, 1-space indent, trailing newline). */
export async function writeNotebook(path: string, nb: Notebook): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(JSON.parse(stableStringify(nb)), null, 1)}\n`);
}

/**
 * Parses `-p key=value` arguments; values are read as YAML scalars or flow
 * collections (papermill's convention): `-p steps=10 -p lang=vi -p langs=[ar,zh]`.
 */
export function parseParameterArgs(args: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const arg of args) {
    const at = arg.indexOf("=");
    const key = at > 0 ? arg.slice(0, at) : "";
    if (!/^[A-Za-z_$][\w$]*$/.test(key)) {
      throw new ConfigError("XA_NOTEBOOK_PARAMETER", `"${arg}" is not key=value with an identifier as key`, {
        field: key || arg,
        hint: "write -p name=value, e.g. -p steps=100",
      });
    }
    const text = arg.slice(at + 1);
    let value: unknown;
    try {
      value = parseYaml(text);
    } catch {
      value = text;
    }
    out[key] = value ?? text;
  }
  return out;
}

/**
 * The names the notebook's cell tagged "parameters" declares (top-level
 * `const`/`let`/`var` at the start of a line), or undefined when it has no
 * such cell.
 */
export function notebookParameters(nb: Notebook): string[] | undefined {
  const cell = nb.cells.find((c) => c.cell_type === "code" && (c.metadata.tags ?? []).includes(PARAMETERS_TAG));
  if (!cell) return undefined;
  const names: string[] = [];
  for (const m of sourceText(cell).matchAll(/^(?:export\s+)?(?:const|let|var)\s+([A-Za-z_$][\w$]*)/gm)) names.push(m[1] as string);
  return names;
}

/**
 * The parameters the notebook does not declare. Unless `allowUnknown`, any
 * is an error listing the notebook's parameters: papermill only warns, but a
 * typo such as `-p stepz=5` would run a long notebook with the default.
 */
export function checkParameters(nb: Notebook, parameters: Record<string, unknown>, file: string, allowUnknown = false): string[] {
  const given = Object.keys(parameters);
  if (given.length === 0) return [];
  const declared = notebookParameters(nb);
  const unknown = declared === undefined ? given : given.filter((k) => !declared.includes(k));
  if (unknown.length === 0 || allowUnknown) return unknown;
  if (declared === undefined) {
    throw new ConfigError(
      "XA_NOTEBOOK_NO_PARAMETERS",
      `the notebook has no cell tagged "parameters", so -p ${unknown.join(", ")} would set nothing it reads`,
      {
        file,
        hint: 'tag the cell that sets the defaults with "parameters", or pass --allow-unknown-params to inject them anyway (papermill\'s behaviour)',
      },
    );
  }
  const near = unknown.map((u) => closest(u, declared)).filter((n) => n !== undefined);
  throw new ConfigError(
    "XA_NOTEBOOK_UNKNOWN_PARAMETER",
    `unknown parameter${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => `"${u}"`).join(", ")}; the notebook's parameters are ${declared.length ? declared.join(", ") : "(none)"}${near.length ? ` (did you mean ${near.join(", ")}?)` : ""}`,
    { file, field: unknown[0] as string, hint: "fix the name, or pass --allow-unknown-params to inject it anyway (papermill's behaviour)" },
  );
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length] as number;
}

/** The TypeScript source of an injected-parameters cell. */
export function parametersSource(parameters: Record<string, unknown>): string {
  const lines = Object.entries(parameters).map(([key, value]) => `const ${key} = ${JSON.stringify(value)};`);
  return `// Parameters injected by xalign run\n${lines.join("\n")}\n`;
}

/**
 * Inserts a cell tagged "injected-parameters" after the cell tagged
 * "parameters" (or first, when there is none), replacing an earlier injected
 * cell. Returns the new notebook and whether a parameters cell was found.
 */
export function injectParameters(nb: Notebook, parameters: Record<string, unknown>): { notebook: Notebook; foundParametersCell: boolean } {
  if (Object.keys(parameters).length === 0) return { notebook: nb, foundParametersCell: true };
  const cells = nb.cells.filter((c) => !(c.metadata.tags ?? []).includes(INJECTED_TAG));
  const at = cells.findIndex((c) => c.cell_type === "code" && (c.metadata.tags ?? []).includes(PARAMETERS_TAG));
  const injected: Cell = {
    cell_type: "code",
    source: parametersSource(parameters),
    metadata: { tags: [INJECTED_TAG] },
    outputs: [],
    execution_count: null,
  };
  cells.splice(at + 1, 0, injected);
  return { notebook: upgradeTo45({ ...nb, cells }), foundParametersCell: at >= 0 };
}
