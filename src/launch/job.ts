/**
 * Supervises one external training job (torchrun and its workers): its
 * `XALIGN_METRICS {json}` lines feed the same progress display as a local run
 * (and metrics.jsonl when `metricsFile` is given; python/xalign_torch.py writes
 * its own), every line goes to job.log; an interrupt sends SIGTERM
 * to the job's process group (the workers stop at the next step boundary and
 * save), then SIGKILL after a grace period; a job that dies is a
 * TrainingError quoting its last log lines.
 */
import { spawn } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { interruptSignal } from "../notebook/index.js";
import { TrainingMonitor } from "../train/monitor.js";
import { BackendError, TrainingError } from "../util/errors.js";

/** The prefix python/xalign_torch.py puts before each metrics record. */
export const METRICS_PREFIX = "XALIGN_METRICS ";

export interface JobOptions {
  /** The command; argv[0] is looked up on PATH. */
  argv: string[];
  /** Shown on the progress line, e.g. "paper-7b/sft". */
  label: string;
  /** Where to append the job's train/validation records; omitted: the job writes its own metrics.jsonl. */
  metricsFile?: string;
  logFile: string;
  /** Default: the notebook/terminal interrupt signal. */
  signal?: AbortSignal;
  /** Expected optimiser steps until the job reports its own count. */
  totalSteps?: number;
  progress?: boolean;
  /** Grace between SIGTERM and SIGKILL of the process group, ms. Default 60 000. */
  killAfterMs?: number;
  /** How many log lines a crash report quotes. Default 30. */
  tailLines?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface JobResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  interrupted: boolean;
  /** Last optimiser step reported, and its loss. */
  steps: number;
  finalLoss: number | undefined;
  /** Train and validation records the job reported. */
  records: number;
  lastLines: string[];
}

/**
 * Runs the job to its end.
 *
 * @example
 * const result = await superviseJob({ argv: ["torchrun", ...], label: "x/sft", metricsFile, logFile });
 */
export async function superviseJob(options: JobOptions): Promise<JobResult> {
  const signal = options.signal ?? interruptSignal();
  const tailLines = options.tailLines ?? 30;
  const result: JobResult = { exitCode: null, signal: null, interrupted: false, steps: 0, finalLoss: undefined, records: 0, lastLines: [] };
  if (signal.aborted) return { ...result, interrupted: true };
  if (options.metricsFile) await mkdir(dirname(options.metricsFile), { recursive: true });
  await mkdir(dirname(options.logFile), { recursive: true });
  const metrics = options.metricsFile ? createWriteStream(options.metricsFile, { flags: "a" }) : undefined;
  const log = createWriteStream(options.logFile, { flags: "a" });
  let monitor: TrainingMonitor | undefined;
  const ensureMonitor = (total: number | undefined) => {
    if (options.progress === false || monitor) return;
    monitor = new TrainingMonitor({ total: total ?? options.totalSteps ?? 0, label: options.label });
  };

  // stderr's own tail too: stdout and stderr are separate pipes, read in no fixed order, so a traceback on
  // stderr can arrive before the stdout lines printed ahead of it and fall out of the combined tail.
  const stderrTail: string[] = [];
  const onLine = (line: string): void => {
    log.write(`${line}\n`);
    result.lastLines.push(line);
    if (result.lastLines.length > tailLines) result.lastLines.shift();
    if (!line.startsWith(METRICS_PREFIX)) return;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line.slice(METRICS_PREFIX.length)) as Record<string, unknown>;
    } catch {
      return; // a garbled line stays in job.log only
    }
    if (record.event === "start") ensureMonitor(typeof record.total_steps === "number" ? record.total_steps : undefined);
    if (record.split !== "train" && record.split !== "validation") return;
    metrics?.write(`${JSON.stringify(record)}\n`);
    result.records++;
    const step = Number(record.step);
    const loss = Number(record.loss);
    ensureMonitor(undefined);
    if (record.split === "train") {
      result.steps = step;
      result.finalLoss = loss;
      monitor?.step(step, {
        loss,
        ...(typeof record.lr === "number" ? { lr: record.lr } : {}),
        ...(typeof record.tokens_per_s === "number" ? { tokensPerSecond: record.tokens_per_s } : {}),
        ...(typeof record.input_tokens_per_s === "number" ? { tokensPerSecond: record.input_tokens_per_s } : {}),
      });
    } else {
      monitor?.validation(step, loss);
    }
  };

  const child = spawn(options.argv[0] as string, options.argv.slice(1), {
    detached: true, // its own process group, so a stop reaches torchrun and every worker
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PYTHONUNBUFFERED: "1", ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const killGroup = (sig: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    result.interrupted = true;
    log.write("xalign: interrupt requested; sending SIGTERM to the job's process group\n");
    killGroup("SIGTERM");
    killTimer = setTimeout(() => killGroup("SIGKILL"), options.killAfterMs ?? 60_000);
  };
  const onExit = (): void => killGroup("SIGKILL"); // never leave GPU workers behind
  signal.addEventListener("abort", onAbort, { once: true });
  process.once("exit", onExit);
  const streams = [child.stdout, child.stderr].map((s, i) => {
    const rl = createInterface({ input: s, crlfDelay: Number.POSITIVE_INFINITY });
    rl.on("line", onLine);
    if (i === 1) {
      rl.on("line", (line) => {
        stderrTail.push(line);
        if (stderrTail.length > tailLines) stderrTail.shift();
      });
    }
    return new Promise<void>((done) => rl.once("close", done));
  });

  try {
    const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once("error", (err: NodeJS.ErrnoException) => {
        reject(
          new BackendError("XA_LAUNCH_SPAWN", `cannot start ${options.argv[0]}: ${err.message}`, {
            hint:
              err.code === "ENOENT"
                ? "install the Python side (python/README.md) or set launch.torchrun to its path"
                : "check the command and its permissions",
            cause: err,
          }),
        );
      });
      child.once("exit", (c, s) => resolve([c, s]));
    });
    await Promise.all(streams);
    result.exitCode = code;
    result.signal = sig;
  } finally {
    clearTimeout(killTimer);
    signal.removeEventListener("abort", onAbort);
    process.off("exit", onExit);
    await Promise.all([...(metrics ? [metrics] : []), log].map(closeStream));
  }
  monitor?.done(result.interrupted ? "interrupted" : result.exitCode === 0 ? "done" : "failed");
  if (!result.interrupted && result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    throw new TrainingError(
      "XA_LAUNCH_FAILED",
      `${options.label}: the job ${how}; its last log lines:\n${[...result.lastLines, ...stderrTail.filter((l) => !result.lastLines.includes(l))].join("\n")}`,
      {
        file: options.logFile,
        hint: "the whole log is in that file; fix the cause, then launch again with --resume to continue from the newest checkpoint",
      },
    );
  }
  return result;
}

function closeStream(stream: WriteStream): Promise<void> {
  return new Promise((done) => stream.end(done));
}
