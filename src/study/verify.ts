/**
 * Rerunning a study notebook: `verify` executes it again with the parameters
 * of its published run (notebooks/results/, see published.ts) or of its newest
 * local run and compares the metrics; `runStudy` executes a list of notebooks
 * and gathers their findings (the README's main job). The notebooks it starts
 * keep their cache and file their runs in the folders it is given (passed to
 * their kernels as $XALIGN_CACHE and $XALIGN_RUNS), by default where this
 * process's environment says (cacheRoot(), runsRoot()).
 */
import { copyFile, readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { type RunEvent, runNotebook } from "../runner/index.js";
import { NotebookError } from "../util/errors.js";
import { compareMetrics, type MetricDifference, publishedPath, readPublished } from "./published.js";
import { type Finding, latestRun, runsRoot } from "./record.js";

export type { MetricDifference } from "./published.js";

/** Where the notebooks a rerun starts keep the study cache and file their runs (default: cacheRoot(), runsRoot()). */
export interface NotebookFolders {
  cacheDir?: string;
  runsDir?: string;
}

/** The runs folder of `folders`, and the environment that sends a notebook's kernel to them. */
function notebookPlaces(folders: NotebookFolders): { runs: string; env?: NodeJS.ProcessEnv } {
  const runs = folders.runsDir ?? runsRoot();
  if (folders.cacheDir === undefined && folders.runsDir === undefined) return { runs };
  return {
    runs,
    env: {
      ...process.env,
      ...(folders.cacheDir !== undefined ? { XALIGN_CACHE: folders.cacheDir } : {}),
      ...(folders.runsDir !== undefined ? { XALIGN_RUNS: folders.runsDir } : {}),
    },
  };
}

export interface VerifyResult {
  notebook: string;
  /** What the rerun was compared with: the published file (notebooks/results/<notebook>.json) or a local run folder. */
  against: "published" | "local";
  recordedRun: string;
  rerun: string;
  backend: string;
  /** Largest |difference| allowed: 0 on the cpu and wasm backends (deterministic), else `tolerance`. */
  tolerance: number;
  compared: number;
  mismatches: MetricDifference[];
  /**
   * Inputs whose sha256 differs between the reference run and the rerun (world manifest, base model weights):
   * where one differs the numbers were computed from other data (e.g. a base model trained differently), which
   * explains a mismatch better than the notebook's own code.
   */
  dataDifferences: string[];
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

/** What a rerun is compared with: its parameters, backend and metrics, and where they came from. */
interface Reference {
  label: string;
  parameters: Record<string, unknown>;
  backend: string;
  metrics: Record<string, number>;
  data?: Record<string, string>;
}

async function reference(name: string, path: string, against: "published" | "local", runs: string, home?: string): Promise<Reference> {
  if (against === "published") {
    const published = await readPublished(name, home);
    if (!published) {
      throw new NotebookError("XA_VERIFY_NO_RUN", `no published run of ${name} (${publishedPath(name, home)})`, {
        file: path,
        hint: `publish one (xalign publish ${path}) or compare with the newest local run: --against local`,
      });
    }
    return {
      label: publishedPath(name, home),
      parameters: published.parameters,
      backend: published.backend ?? "?",
      metrics: published.metrics,
    };
  }
  const recorded = await latestRun(name, runs);
  if (!recorded) {
    throw new NotebookError("XA_VERIFY_NO_RUN", `no finished run of ${name} to verify against`, {
      file: path,
      hint: `run it first: xalign run ${path}`,
    });
  }
  const manifest = JSON.parse(await readFile(join(recorded, "manifest.json"), "utf8")) as {
    parameters: Record<string, unknown>;
    backend: string;
    data_sha256?: Record<string, string>;
  };
  const metrics = JSON.parse(await readFile(join(recorded, "metrics.json"), "utf8")) as Record<string, number>;
  return {
    label: recorded,
    parameters: manifest.parameters,
    backend: manifest.backend,
    metrics,
    ...(manifest.data_sha256 ? { data: manifest.data_sha256 } : {}),
  };
}

/**
 * Reruns a notebook with the parameters of its published run (the shipped
 * notebooks/results/<notebook>.json; by default when it exists) or of its
 * newest local run, and compares every recorded metric. On cpu and wasm the
 * comparison is exact; elsewhere (GPU backends reorder float sums) within
 * `tolerance` (default 1e-3, absolute, on metrics in percent or BLEU points).
 * The result names every metric that moved.
 */
export async function verifyNotebook(
  path: string,
  options: {
    tolerance?: number;
    against?: "published" | "local";
    /** Where notebooks/results/ is (default: xalignHome()). */
    home?: string;
    log?: (line: string) => void;
  } & NotebookFolders = {},
): Promise<VerifyResult> {
  const name = notebookName(path);
  const { runs, env } = notebookPlaces(options);
  const against = options.against ?? ((await readPublished(name, options.home)) ? "published" : "local");
  const ref = await reference(name, path, against, runs, options.home);
  const log = options.log ?? (() => {});
  log(`rerunning ${name} with the parameters of ${ref.label}: ${JSON.stringify(ref.parameters)}`);
  const parameters = Object.fromEntries(Object.entries(ref.parameters).filter(([k]) => k !== "paths"));
  const before = await latestRun(name, runs);
  const executed = join(process.env.TMPDIR ?? "/tmp", `${name}.verify.${process.pid}.ipynb`);
  await runNotebook(path, { parameters, out: executed, onEvent: onEventLogger(log), ...(env ? { env } : {}) });
  const rerun = await latestRun(name, runs);
  if (!rerun || rerun === before) throw new NotebookError("XA_VERIFY_NO_RERUN", `the rerun of ${name} recorded no run`, { file: path });
  await copyFile(executed, join(rerun, `${name}.verify.ipynb`)).catch(() => undefined);
  const after = JSON.parse(await readFile(join(rerun, "metrics.json"), "utf8")) as Record<string, number>;
  const exact = ["cpu", "wasm"].includes(ref.backend);
  const tolerance = exact ? 0 : (options.tolerance ?? 1e-3);
  const mismatches = compareMetrics(ref.metrics, after, tolerance);
  const rerunData = (JSON.parse(await readFile(join(rerun, "manifest.json"), "utf8")) as { data_sha256?: Record<string, string> })
    .data_sha256;
  const dataDifferences = Object.entries(ref.data ?? {})
    .filter(([input, hash]) => rerunData?.[input] !== undefined && rerunData[input] !== hash)
    .map(([input]) => input);
  return {
    notebook: name,
    against,
    recordedRun: ref.label,
    rerun,
    backend: ref.backend,
    tolerance,
    compared: new Set([...Object.keys(ref.metrics), ...Object.keys(after)]).size,
    mismatches,
    dataDifferences,
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
  options: { parameters?: Record<string, unknown>; log?: (line: string) => void } & NotebookFolders = {},
): Promise<StudyRun[]> {
  const log = options.log ?? (() => {});
  const out: StudyRun[] = [];
  const { runs, env } = notebookPlaces(options);
  for (const path of paths) {
    const name = notebookName(path);
    const t0 = Date.now();
    log(`\n== ${name}`);
    const previous = await latestRun(name, runs);
    let error: string | undefined;
    const executed = join(process.env.TMPDIR ?? "/tmp", `${name}.${process.pid}.ipynb`);
    try {
      await runNotebook(path, {
        ...(options.parameters ? { parameters: options.parameters } : {}),
        out: executed,
        onEvent: onEventLogger(log),
        ...(env ? { env } : {}),
      });
    } catch (err) {
      error = (err as Error).message;
      log(`${name} failed: ${error}`);
    }
    const runDir = await latestRun(name, runs);
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
