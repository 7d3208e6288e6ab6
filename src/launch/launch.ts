/**
 * `engine: torch-fsdp`, run from a notebook or the CLI: prepare the run
 * folder, run each stage's torchrun command (python/xalign_torch.py, DDP or
 * FSDP) on this node under supervision (progress, clean interrupt, crash
 * report; the runner writes metrics.jsonl and checkpoint-N/), and write the
 * same runs/<name>/manifest.json as the tfjs engine. Each stage leaves a
 * Hugging Face folder in runs/<name>/<stage>/final that `loadCheckpoint`
 * reads, so evaluation and plots do not care which engine trained it.
 *
 * @example
 * const run = await launch(await loadExperiment("examples/paper-7b.yaml"), { modelDir: "/models/llama-7b" });
 * const model = await loadCheckpoint(run.finalDir);
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { experimentDataHashes, type LoadedExperiment } from "../config/load.js";
import { JUPYTER_DISPLAY, type MimeBundle } from "../notebook/index.js";
import { sha256, stableStringify, writeJsonAtomic } from "../util/fs.js";
import { removeStageForForce } from "../util/run-dir.js";
import { VERSION } from "../version.js";
import { torchrunCommand } from "./commands.js";
import { type JobResult, superviseJob } from "./job.js";
import type { LaunchPlan, PlanOptions, StagePlan } from "./plan.js";
import { prepareLaunch } from "./prepare.js";

export interface LaunchOptions extends PlanOptions {
  /** Continue unfinished stages from their newest checkpoint-N. */
  resume?: boolean;
  /** Retrain stages whose final/ folder exists. */
  force?: boolean;
  signal?: AbortSignal;
  progress?: boolean;
  /** Grace between SIGTERM and SIGKILL on interrupt, ms. */
  killAfterMs?: number;
  /** Rewrites a stage's command (e.g. to run it through a container); tests use it. */
  wrapCommand?: (argv: string[], stage: StagePlan) => string[];
  env?: NodeJS.ProcessEnv;
}

export interface LaunchedStage {
  name: string;
  finalDir: string;
  metricsFile: string;
  logFile: string;
  /** Undefined when the stage's final/ folder was already there. */
  job: JobResult | undefined;
  seconds: number;
}

/** A finished (or interrupted) torch-fsdp run; shows itself as a table in a notebook. */
export class LaunchResult {
  constructor(
    readonly plan: LaunchPlan,
    readonly stages: LaunchedStage[],
    readonly manifestPath: string,
  ) {}

  get interrupted(): boolean {
    return this.stages.some((s) => s.job?.interrupted);
  }

  /** The last stage's Hugging Face folder (load it with loadCheckpoint). */
  get finalDir(): string {
    return this.stages.at(-1)?.finalDir ?? "";
  }

  rows(): Record<string, string | number>[] {
    return this.stages.map((s) => ({
      stage: s.name,
      steps: s.job ? s.job.steps : "cached",
      final_loss: s.job?.finalLoss !== undefined ? Number(s.job.finalLoss.toFixed(4)) : "",
      status: s.job ? (s.job.interrupted ? "interrupted" : "done") : "cached",
      seconds: Number(s.seconds.toFixed(1)),
    }));
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    const rows = this.rows();
    const cols = Object.keys(rows[0] ?? {});
    const esc = (v: unknown) => String(v).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c] ?? c);
    const { nodes, gpusPerNode } = this.plan.topology;
    const modes = [...new Set(this.plan.stages.map((s) => s.parallel.mode.toUpperCase()))].join("/");
    const head = `${this.plan.experiment} on torch-fsdp (${modes}, ${nodes} x ${gpusPerNode} GPUs) — ${this.plan.runDir}`;
    const html = `<p><b>${esc(head)}</b></p><table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(r[c])}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
    const text = [head, ...rows.map((r) => cols.map((c) => `${c}=${r[c]}`).join(" "))].join("\n");
    return { "text/plain": text, "text/html": html };
  }
}

/** Prepares and runs every stage of a torch-fsdp experiment on this node. */
export async function launch(exp: LoadedExperiment, options: LaunchOptions = {}): Promise<LaunchResult> {
  const started = Date.now();
  const { plan } = await prepareLaunch(exp, options);
  const stages: LaunchedStage[] = [];
  for (const stage of plan.stages) {
    const stageStart = Date.now();
    const metricsFile = join(stage.dir, "metrics.jsonl");
    const logFile = join(stage.dir, "job.log");
    if (options.force) await removeStageForForce(plan.runDir, stage.dir, exp.file);
    if (existsSync(join(stage.finalDir, "config.json"))) {
      stages.push({ name: stage.name, finalDir: stage.finalDir, metricsFile, logFile, job: undefined, seconds: 0 });
      continue;
    }
    const argv = torchrunCommand(plan, stage, { ...(options.resume ? { resume: true } : {}) });
    const job = await superviseJob({
      argv: options.wrapCommand ? options.wrapCommand(argv, stage) : argv,
      label: `${plan.experiment}/${stage.name}`,
      logFile,
      totalSteps: stage.totalSteps,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.progress !== undefined ? { progress: options.progress } : {}),
      ...(options.killAfterMs !== undefined ? { killAfterMs: options.killAfterMs } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    stages.push({ name: stage.name, finalDir: stage.finalDir, metricsFile, logFile, job, seconds: (Date.now() - stageStart) / 1000 });
    if (job.interrupted) break;
  }
  const manifestPath = join(plan.runDir, "manifest.json");
  await writeJsonAtomic(manifestPath, await manifest(exp, plan, stages, (Date.now() - started) / 1000));
  return new LaunchResult(plan, stages, manifestPath);
}

async function manifest(
  exp: LoadedExperiment,
  plan: LaunchPlan,
  stages: LaunchedStage[],
  seconds: number,
): Promise<Record<string, unknown>> {
  const hashes = await experimentDataHashes(exp);
  return {
    format: "xalign-run/1",
    name: plan.experiment,
    engine: "torch-fsdp",
    experiment_file: exp.file,
    config: exp.config,
    config_hash: sha256(stableStringify(exp.config)),
    data_sha256: hashes,
    versions: { xalign: VERSION, node: process.version },
    topology: plan.topology,
    seconds,
    stages: stages.map((s) => {
      const planned = plan.stages.find((p) => p.name === s.name);
      return {
        name: s.name,
        objective: "instruction",
        cached: s.job === undefined,
        steps: s.job?.steps,
        final_loss: s.job?.finalLoss,
        interrupted: s.job?.interrupted,
        parallel: planned?.parallel.mode,
        train_sequences: planned?.train.length,
        validation_sequences: planned?.validation.length,
        final_dir: s.finalDir,
        metrics: s.metricsFile,
        seconds: s.seconds,
      };
    }),
  };
}
