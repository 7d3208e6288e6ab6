/**
 * Rerunning a study notebook: `verify` executes it again with the parameters
 * its newest run recorded and compares the metrics; `runStudy` executes a
 * list of notebooks and gathers their findings (the README's main job).
 */
import { copyFile, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { type RunEvent, runNotebook } from "../notebook/index.js";
import { NotebookError } from "../util/errors.js";
import { type Finding, latestRun } from "./record.js";

export interface MetricDifference {
  metric: string;
  recorded: number | undefined;
  rerun: number | undefined;
  difference: number;
}

export interface VerifyResult {
  notebook: string;
  recordedRun: string;
  rerun: string;
  backend: string;
  /** Largest |difference| allowed: 0 on the cpu and wasm backends (deterministic), else `tolerance`. */
  tolerance: number;
  compared: number;
  mismatches: MetricDifference[];
  ok: boolean;
}

/** The notebook's name as its runs are filed (the file name without .ipynb). */
export function notebookName(path: string): string {
  return basename(path).replace(/\.ipynb$/, "");
}

/** Logs each cell's start as `[k/n] first line`. */
export function onEventLogger(log: (line: string) => void): (e: RunEvent) => void {
  return (e) => {
    // codeIndex counts from 1 (as `xalign run` prints it): never past codeCells.
    if (e.kind === "cell-start") log(`[${e.codeIndex}/${e.codeCells}] ${String(e.cell.source).split("\n")[0]?.slice(0, 70) ?? ""}`);
  };
}

/**
 * Reruns a notebook with the parameters of its newest recorded run and
 * compares every recorded metric. On cpu and wasm the comparison is exact;
 * elsewhere (GPU backends reorder float sums) within `tolerance` (default 1e-3,
 * absolute, on metrics in percent or BLEU points).
 */
export async function verifyNotebook(
  path: string,
  options: { tolerance?: number; log?: (line: string) => void } = {},
): Promise<VerifyResult> {
  const name = notebookName(path);
  const recorded = await latestRun(name);
  if (!recorded) {
    throw new NotebookError("XA_VERIFY_NO_RUN", `no finished run of ${name} to verify against`, {
      file: path,
      hint: `run it first: xalign run ${path}`,
    });
  }
  const manifest = JSON.parse(await readFile(join(recorded, "manifest.json"), "utf8")) as {
    parameters: Record<string, unknown>;
    backend: string;
  };
  const before = JSON.parse(await readFile(join(recorded, "metrics.json"), "utf8")) as Record<string, number>;
  const log = options.log ?? (() => {});
  log(`rerunning ${name} with the parameters of ${recorded}: ${JSON.stringify(manifest.parameters)}`);
  const parameters = Object.fromEntries(Object.entries(manifest.parameters).filter(([k]) => k !== "paths"));
  await runNotebook(path, { parameters, out: join(recorded, `${name}.verify.ipynb`), onEvent: onEventLogger(log) });
  const rerun = await latestRun(name);
  if (!rerun || rerun === recorded) throw new NotebookError("XA_VERIFY_NO_RERUN", `the rerun of ${name} recorded no run`, { file: path });
  const after = JSON.parse(await readFile(join(rerun, "metrics.json"), "utf8")) as Record<string, number>;
  const exact = ["cpu", "wasm"].includes(manifest.backend);
  const tolerance = exact ? 0 : (options.tolerance ?? 1e-3);
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const mismatches: MetricDifference[] = [];
  for (const metric of keys) {
    const a = before[metric];
    const b = after[metric];
    const same = a === b || (Number.isNaN(a) && Number.isNaN(b));
    const difference = a !== undefined && b !== undefined ? Math.abs(a - b) : Number.POSITIVE_INFINITY;
    if (!same && !(difference <= tolerance)) mismatches.push({ metric, recorded: a, rerun: b, difference });
  }
  return {
    notebook: name,
    recordedRun: recorded,
    rerun,
    backend: manifest.backend,
    tolerance,
    compared: keys.length,
    mismatches,
    ok: mismatches.length === 0,
  };
}

export interface StudyRun {
  notebook: string;
  runDir: string | undefined;
  seconds: number;
  findings: Finding[];
  error?: string;
}

/** Executes notebooks in order (each saved into its run folder) and gathers their findings. */
export async function runStudy(
  paths: readonly string[],
  options: { parameters?: Record<string, unknown>; log?: (line: string) => void } = {},
): Promise<StudyRun[]> {
  const log = options.log ?? (() => {});
  const out: StudyRun[] = [];
  for (const path of paths) {
    const name = notebookName(path);
    const t0 = Date.now();
    log(`\n== ${name}`);
    const previous = await latestRun(name);
    let error: string | undefined;
    const executed = join(process.env.TMPDIR ?? "/tmp", `${name}.${process.pid}.ipynb`);
    try {
      await runNotebook(path, {
        ...(options.parameters ? { parameters: options.parameters } : {}),
        out: executed,
        onEvent: onEventLogger(log),
      });
    } catch (err) {
      error = (err as Error).message;
      log(`${name} failed: ${error}`);
    }
    const runDir = await latestRun(name);
    const fresh = runDir !== previous ? runDir : undefined;
    let findings: Finding[] = [];
    if (fresh) {
      await copyFile(executed, join(fresh, `${name}.ipynb`)).catch(() => undefined);
      findings = JSON.parse(await readFile(join(fresh, "findings.json"), "utf8")) as Finding[];
    }
    out.push({ notebook: name, runDir: fresh, seconds: (Date.now() - t0) / 1000, findings, ...(error ? { error } : {}) });
  }
  return out;
}
