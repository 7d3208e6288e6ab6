/**
 * Published runs: the metrics, findings and tables of the run a notebook's
 * findings quote, shipped in the repository as notebooks/results/<notebook>.json
 * so that a reader of a fresh clone sees the numbers and a reviewer can check
 * them (`xalign verify` reruns the notebook and compares with the shipped file).
 *
 * A run becomes published only on purpose: `xalign publish NOTEBOOK` copies the
 * newest finished run of a notebook (its manifest, metrics, findings and
 * recorded tables) into the file. A notebook shows the file with
 * `publishedView("02-x-llama", ["gains"])`, so its "published run" section is
 * generated from the numbers, never typed.
 *
 * @example
 * await publishRun("runs/02-x-llama/2026-12-07T09-34-25-466Z"); // xalign publish notebooks/02-x-llama.ipynb
 * const p = await readPublished("02-x-llama");                  // { metrics, findings, tables, commit, ... }
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Table } from "../plot/table.js";
import { DataError } from "../util/errors.js";
import { writeJsonAtomic, xalignHome } from "../util/fs.js";
import { escapeHtml, formatFindingNumber } from "./present.js";
import type { Finding, Row } from "./record.js";

export const PUBLISHED_FORMAT = "xalign-published-run/1";

export interface PublishedRun {
  format: typeof PUBLISHED_FORMAT;
  notebook: string;
  /** The notebook's parameters in that run (mode, backend, languages, seeds, ...): what `xalign verify` reruns with. */
  parameters: Record<string, unknown>;
  backend: string | null;
  device: string | null;
  versions: Record<string, string>;
  /** The git commit the run was made from ("unknown" outside a git checkout), and whether the tree had changes. */
  commit: string;
  dirty: boolean;
  finished_at: string;
  durations_s: Record<string, number>;
  /** sha256 of the data the run read (world manifest, base model weights): a rerun on other data cannot match. */
  data_sha256?: Record<string, string>;
  /** The run's own folder when it was published (on the machine that ran it). */
  run: string;
  metrics: Record<string, number>;
  findings: Finding[];
  tables: Record<string, Row[]>;
}

/** Where a notebook's published run lives: <home>/notebooks/results/<notebook>.json. */
export function publishedPath(notebook: string, home: string = xalignHome()): string {
  return join(home, "notebooks", "results", `${notebook}.json`);
}

/** A notebook's published run, or undefined when none was published; a malformed file is a DataError naming it. */
export async function readPublished(notebook: string, home?: string): Promise<PublishedRun | undefined> {
  const file = publishedPath(notebook, home);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DataError("XA_PUBLISHED_JSON", `${file} is not valid JSON`, {
      file,
      hint: "restore it from git, or publish the run again: xalign publish NOTEBOOK",
      cause: err,
    });
  }
  const p = value as Partial<PublishedRun>;
  for (const field of ["notebook", "parameters", "metrics", "findings", "tables"] as const) {
    if (p[field] === undefined) {
      throw new DataError("XA_PUBLISHED_FIELD", `${file} has no "${field}"`, {
        file,
        field,
        hint: "publish the run again: xalign publish NOTEBOOK",
      });
    }
  }
  if (p.format !== PUBLISHED_FORMAT) {
    throw new DataError("XA_PUBLISHED_FORMAT", `${file} has format ${JSON.stringify(p.format)}, not ${PUBLISHED_FORMAT}`, {
      file,
      field: "format",
      hint: "publish the run again with this version: xalign publish NOTEBOOK",
    });
  }
  return p as PublishedRun;
}

/** Reads a finished run folder (manifest.json, metrics.json, findings.json and its tables) as a PublishedRun. */
export async function runAsPublished(runDir: string): Promise<PublishedRun> {
  const read = async <T>(name: string): Promise<T> => {
    const file = join(runDir, name);
    try {
      return JSON.parse(await readFile(file, "utf8")) as T;
    } catch (err) {
      throw new DataError("XA_PUBLISHED_RUN", `cannot read ${name} of the run ${runDir}`, {
        file,
        hint: "publish a finished run (one with manifest.json, metrics.json and findings.json)",
        cause: err,
      });
    }
  };
  const manifest = await read<{
    notebook: string;
    parameters: Record<string, unknown>;
    backend: string | null;
    device: string | null;
    versions: Record<string, string>;
    commit?: string;
    dirty?: boolean;
    finished_at: string;
    durations_s: Record<string, number>;
    data_sha256?: Record<string, string>;
    tables?: string[];
  }>("manifest.json");
  const tables: Record<string, Row[]> = {};
  for (const name of manifest.tables ?? []) tables[name] = await read<Row[]>(`${name}.json`);
  return {
    format: PUBLISHED_FORMAT,
    notebook: manifest.notebook,
    parameters: manifest.parameters,
    backend: manifest.backend,
    device: manifest.device,
    versions: manifest.versions,
    commit: manifest.commit ?? "unknown",
    dirty: manifest.dirty ?? false,
    finished_at: manifest.finished_at,
    durations_s: manifest.durations_s,
    ...(manifest.data_sha256 ? { data_sha256: manifest.data_sha256 } : {}),
    run: runDir,
    metrics: await read<Record<string, number>>("metrics.json"),
    findings: await read<Finding[]>("findings.json"),
    tables,
  };
}

/** Publishes a finished run: writes notebooks/results/<notebook>.json; returns the file and the metrics that moved. */
export async function publishRun(
  runDir: string,
  home?: string,
): Promise<{ file: string; published: PublishedRun; moved: MetricDifference[] }> {
  const published = await runAsPublished(runDir);
  const previous = await readPublished(published.notebook, home);
  const file = publishedPath(published.notebook, home);
  await writeJsonAtomic(file, published);
  return { file, published, moved: previous ? compareMetrics(previous.metrics, published.metrics, 0) : [] };
}

export interface MetricDifference {
  metric: string;
  recorded: number | undefined;
  rerun: number | undefined;
  difference: number;
}

/** Metrics that differ by more than `tolerance` (absolute), or that one side lacks; NaN equals NaN. */
export function compareMetrics(recorded: Record<string, number>, rerun: Record<string, number>, tolerance: number): MetricDifference[] {
  const keys = [...new Set([...Object.keys(recorded), ...Object.keys(rerun)])].sort();
  const out: MetricDifference[] = [];
  for (const metric of keys) {
    const a = recorded[metric];
    const b = rerun[metric];
    const same = a === b || (Number.isNaN(a) && Number.isNaN(b));
    const difference = a !== undefined && b !== undefined ? Math.abs(a - b) : Number.POSITIVE_INFINITY;
    if (!same && !(difference <= tolerance)) out.push({ metric, recorded: a, rerun: b, difference });
  }
  return out;
}

/** What `publishedView` shows: the published run's provenance, findings and chosen tables. */
export interface PublishedView {
  readonly published: PublishedRun | undefined;
  toString(): string;
  toHtml(): string;
}

/**
 * A notebook's published run for its "published run" section: where and how
 * it ran (mode, seeds, backend, commit, date), every finding with its numbers
 * and the study's claim, and the named tables, all read from
 * notebooks/results/<notebook>.json. Without a published run it says how to
 * make one.
 */
export async function publishedView(notebook: string, tables: readonly string[] = [], home?: string): Promise<PublishedView> {
  const published = await readPublished(notebook, home);
  const missing = `No published run of ${notebook} yet: run the notebook, then \`xalign publish notebooks/${notebook}.ipynb\`.`;
  const provenance = (p: PublishedRun) => {
    const params = p.parameters;
    const seeds = Array.isArray(params.seeds) ? ` · seeds ${(params.seeds as unknown[]).join(", ")}` : "";
    const langs = Array.isArray(params.languages) ? ` · ${(params.languages as unknown[]).join(", ")}` : "";
    const commit = `${p.commit.slice(0, 10)}${p.dirty ? " (with local changes)" : ""}`;
    const minutes = p.durations_s.total !== undefined ? ` · ${(p.durations_s.total / 60).toFixed(1)} min` : "";
    return `${String(params.mode ?? "?")} mode${langs}${seeds} · ${p.backend ?? "?"} · xalign ${p.versions.xalign ?? "?"} · commit ${commit} · ${p.finished_at.slice(0, 10)}${minutes}`;
  };
  const numbers = (f: Finding) =>
    Object.entries(f.numbers)
      .map(([k, v]) => `${k} ${formatFindingNumber(k, v)}`)
      .join(", ");
  const shown = (p: PublishedRun) =>
    tables.filter((t) => p.tables[t] !== undefined).map((t) => ({ name: t, table: new Table(p.tables[t] as Row[], { caption: t }) }));
  const text = () => {
    if (!published) return missing;
    return [
      `Published run (notebooks/results/${notebook}.json): ${provenance(published)}`,
      ...published.findings.map((f) => `- ${f.finding}${f.claim ? ` (study: ${f.claim})` : ""}${numbers(f) ? `\n  ${numbers(f)}` : ""}`),
      ...shown(published).map((s) => `\n${s.name}\n${s.table.toString()}`),
    ].join("\n");
  };
  const html = () => {
    if (!published) return `<p>${escapeHtml(missing)}</p>`;
    return (
      `<div class="xalign-published"><p><strong>Published run</strong> ` +
      `(<code>notebooks/results/${escapeHtml(notebook)}.json</code>): ${escapeHtml(provenance(published))}</p><ul>` +
      published.findings
        .map(
          (f) =>
            `<li><p>${escapeHtml(f.finding)}</p>${f.claim ? `<p><em>The study: ${escapeHtml(f.claim)}</em></p>` : ""}` +
            `${numbers(f) ? `<p><code>${escapeHtml(numbers(f))}</code></p>` : ""}</li>`,
        )
        .join("") +
      `</ul>${shown(published)
        .map((s) => s.table.toHtml())
        .join("")}</div>`
    );
  };
  return {
    published,
    toString: text,
    toHtml: html,
    [Symbol.for("Jupyter.display")]: () => ({ "text/html": html(), "text/plain": text() }),
  } as PublishedView;
}
