/**
 * The torch engine: one training stage run by python/xalign_torch.py on
 * PyTorch (CPU or CUDA, one process or torchrun), on batches TypeScript
 * encodes once. TypeScript writes the initial weights (its own
 * initialisation, HF-layout safetensors), the micro-batches in exactly the
 * order the TF.js trainer would consume them, and a job file; the runner
 * trains with src/train's AdamW groups, schedule, clipping and accumulation,
 * writes checkpoint-N/ and metrics.jsonl in the trainer's layout, and streams
 * `XALIGN_METRICS` lines that feed the same progress display. Interrupting
 * (the signal, Ctrl-C) makes the runner checkpoint and stop; `resume`
 * continues from the newest checkpoint.
 *
 * @example
 * const py = findTorchPython();                        // $XALIGN_PYTHON, python3, /usr/bin/python3
 * const result = await trainWithTorch({ model, train: batches, config: stage.train, outDir: "runs/x/pretrain" });
 * // model now holds the trained weights (loadResult: true by default)
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, open, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import type { TrainConfig } from "../config/schema.js";
import { loadCheckpoint } from "../model/checkpoint.js";
import { configToJson, type LlamaConfig } from "../model/config.js";
import { LlamaModel, toHfLayout, weightNames } from "../model/llama.js";
import { type TensorToWrite, writeSafetensors } from "../model/safetensors.js";
import { interruptSignal } from "../notebook/index.js";
import { ConfigError, TrainingError } from "../util/errors.js";
import type { Batch, BatchSource } from "./batches.js";
import { TrainingMonitor } from "./monitor.js";
import { latestCheckpoint, type StepRecord, stageSteps, type TrainOptions, type TrainResult, train } from "./trainer.js";

export const TORCH_METRICS_PREFIX = "XALIGN_METRICS ";
export const TORCH_RESULT_PREFIX = "XALIGN_RESULT ";
const BATCHES_MAGIC = "XALIGNB1";

/** The runner script, found from this module (works from src/ and dist/src/). */
export function torchRunnerPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, "python", "xalign_torch.py");
    if (existsSync(candidate)) return candidate;
    dir = resolve(dir, "..");
  }
  throw new ConfigError("XA_TORCH_RUNNER", "python/xalign_torch.py was not found above this package", {
    hint: "run xalign from a checkout or an install that ships the python/ folder",
  });
}

/** What an interpreter's torch offers (python/xalign_torch.py --probe). */
export interface TorchProbe {
  python: string;
  python_version: string;
  torch: string;
  cuda: boolean;
  cuda_version: string | null;
  devices: { name: string; memory_gib: number; capability: string }[];
  bf16: boolean;
  sdpa: boolean;
  /** Whether this torch can run the runner's FSDP path (torch >= 2.0). */
  fsdp?: boolean;
  threads: number;
}

export type TorchPythonFound =
  | { python: string; probe: TorchProbe; missing?: undefined }
  | { python?: undefined; probe?: undefined; missing: string };

let probeCache: Map<string, TorchPythonFound> | undefined;

/**
 * The first interpreter that can `import torch`: $XALIGN_PYTHON, then python3
 * on PATH, then /usr/bin/python3 (Debian's python3-torch). `missing` says why
 * none fits. Cached per process (importing torch takes seconds).
 */
export function findTorchPython(options: { candidates?: string[]; fresh?: boolean } = {}): TorchPythonFound {
  const candidates = options.candidates ?? [process.env.XALIGN_PYTHON, "python3", "/usr/bin/python3"].filter((p): p is string => !!p);
  const key = candidates.join("\0");
  probeCache ??= new Map();
  const cached = probeCache.get(key);
  if (cached && !options.fresh) return cached;
  const reasons: string[] = [];
  let found: TorchPythonFound | undefined;
  const runner = torchRunnerPath();
  for (const python of [...new Set(candidates)]) {
    const r = spawnSync(python, [runner, "--probe"], { encoding: "utf8", timeout: 120_000 });
    if (r.error) {
      reasons.push(`${python}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
      continue;
    }
    if (r.status === 0) {
      try {
        found = { python, probe: JSON.parse(r.stdout.trim().split("\n").at(-1) as string) as TorchProbe };
        break;
      } catch {
        reasons.push(`${python}: unreadable probe output`);
        continue;
      }
    }
    reasons.push(`${python}: ${(r.stderr || "").trim().split("\n").at(-1) ?? `exit ${r.status}`}`);
  }
  found ??= { missing: `no Python that can import torch (${reasons.join("; ")}); install python3-torch or set XALIGN_PYTHON` };
  probeCache.set(key, found);
  return found;
}

/** The torch engine as `xalign doctor` reports it. */
export interface TorchEngineReport {
  available: boolean;
  /** Why not, when unavailable. */
  reason: string;
  python?: string;
  python_version?: string;
  torch?: string;
  cuda?: boolean;
  cuda_version?: string | null;
  devices?: TorchProbe["devices"];
  bf16?: boolean;
  /** Whether full mode would pick this engine by itself (CUDA present). */
  default_for_full_mode?: boolean;
}

/** Probes the torch engine (an interpreter with torch, its CUDA devices, memory and bf16). */
export function torchEngineReport(options: { fresh?: boolean } = {}): TorchEngineReport {
  let found: TorchPythonFound;
  try {
    found = findTorchPython(options);
  } catch (err) {
    return { available: false, reason: (err as Error).message };
  }
  if (!found.probe) return { available: false, reason: found.missing };
  const p = found.probe;
  return {
    available: true,
    reason: p.cuda ? `CUDA ${p.cuda_version} with ${p.devices.length} device(s)` : "CPU only (torch sees no CUDA device)",
    python: p.python,
    python_version: p.python_version,
    torch: p.torch,
    cuda: p.cuda,
    cuda_version: p.cuda_version,
    devices: p.devices,
    bf16: p.bf16,
    default_for_full_mode: p.cuda,
  };
}

/** A micro-batch with where it sits in the data (the trainer's DataPosition after it is read). */
export interface PlacedBatch {
  batch: Batch;
  epoch: number;
  index: number;
}

/**
 * The micro-batches the TF.js trainer reads for `steps` optimiser steps from
 * `start` (its nextBatch: epoch by epoch, in order), `gradAccum` per step. Lazy
 * and re-iterable: each pass rebuilds the batches epoch by epoch (a source
 * caches one epoch), so a full-mode run's data is never all in memory.
 */
export function microBatchSequence(
  source: BatchSource,
  steps: number,
  gradAccum: number,
  start = { epoch: 0, index: 0 },
): Iterable<PlacedBatch> {
  return {
    *[Symbol.iterator]() {
      let { epoch, index } = start;
      for (let i = 0; i < steps * gradAccum; i++) {
        let batches = source.epoch(epoch);
        if (index >= batches.length) {
          epoch++;
          index = 0;
          batches = source.epoch(epoch);
        }
        yield { batch: batches[index] as Batch, epoch, index };
        index++;
      }
    },
  };
}

/**
 * Writes micro-batches as an xalign-batches/1 file: "XALIGNB1", u64 header
 * length, a JSON header (per batch: offset, batch_size, length,
 * supervised_tokens, segments, epoch, index), then per batch int32
 * little-endian input_ids, labels, attention_mask and (when present)
 * segments, each [batch_size, length] row-major. Streamed: one batch in
 * memory at a time.
 */
export async function writeBatchesFile(path: string, batches: Iterable<PlacedBatch>): Promise<void> {
  let offset = 0;
  // Two passes: the header (sizes and offsets) first, then the data.
  const entries = Array.from(batches, ({ batch, epoch, index }) => {
    const n = batch.batchSize * batch.length;
    const parts = batch.segments ? 4 : 3;
    const entry = {
      offset,
      batch_size: batch.batchSize,
      length: batch.length,
      supervised_tokens: batch.supervisedTokens,
      segments: batch.segments !== undefined,
      epoch,
      index,
    };
    offset += parts * 4 * n;
    return entry;
  });
  const header = Buffer.from(JSON.stringify({ format: "xalign-batches/1", batches: entries }), "utf8");
  await mkdir(dirname(path), { recursive: true });
  const file = await open(path, "w");
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await file.write(Buffer.concat([Buffer.from(BATCHES_MAGIC, "latin1"), len, header]));
    const le = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
    for (const { batch } of batches) {
      for (const part of [batch.inputIds, batch.labels, batch.attentionMask, ...(batch.segments ? [batch.segments] : [])]) {
        const bytes = Buffer.from(part.buffer, part.byteOffset, part.byteLength);
        if (!le) bytes.swap32();
        await file.write(bytes);
      }
    }
  } finally {
    await file.close();
  }
}

/** Writes the model's weights in HF layout (what the runner's init_weights reads). */
export async function writeHfWeights(model: LlamaModel, path: string): Promise<void> {
  const tensors: Record<string, TensorToWrite> = {};
  for (const name of weightNames(model.config)) {
    const t = toHfLayout(name, model.weight(name));
    tensors[name] = { dtype: "F32", shape: t.shape, data: (await t.data()) as Float32Array };
    t.dispose();
  }
  await mkdir(dirname(path), { recursive: true });
  await writeSafetensors(path, tensors, { format: "pt" });
}

/**
 * The `train` block of a runner job (xalign-torch-job/1): a stage's resolved schedule and optimiser
 * settings, read by python/xalign_torch.py exactly as src/train's trainer reads the TrainConfig.
 */
export function torchTrainBlock(config: TrainConfig, totalSteps: number, warmupSteps: number): Record<string, unknown> {
  return {
    total_steps: totalSteps,
    warmup_steps: warmupSteps,
    lr: config.lr,
    schedule: config.schedule,
    grad_accum: config.grad_accum,
    weight_decay: config.weight_decay,
    no_decay: config.no_decay,
    beta1: config.beta1,
    beta2: config.beta2,
    eps: config.eps,
    clip_norm: config.clip_norm ?? null,
    log_every: config.log_every,
    save_every: config.save_every ?? null,
    keep_last: config.keep_last,
    eval_every: config.eval_every ?? null,
    eval_batches: config.eval_batches,
    early_stopping_patience: config.early_stopping_patience ?? null,
    max_loss: config.max_loss ?? null,
    divergence_factor: config.divergence_factor ?? null,
  };
}

export interface TorchTrainOptions {
  /** The model to train: its config and current weights start the run; the trained weights are loaded back into it. */
  model: LlamaModel;
  train: BatchSource;
  validation?: BatchSource;
  config: TrainConfig;
  /** The stage folder: checkpoint-N/, metrics.jsonl and torch/ (job, batches, initial weights) go here. */
  outDir: string;
  seed?: number;
  /** An interpreter with torch (default: {@link findTorchPython}). */
  python?: string;
  /** "auto" (CUDA when present), "cpu" or "cuda". */
  device?: "auto" | "cpu" | "cuda";
  /** bf16 autocast (CUDA only); default fp32. */
  precision?: "fp32" | "bf16";
  /** TF32 matmuls on CUDA. */
  tf32?: boolean;
  /** Processes under torch.distributed.run (DDP; gloo on CPU, nccl on CUDA). Each micro-batch's rows are split over them. */
  nproc?: number;
  /** torch CPU threads per process. */
  threads?: number;
  resume?: boolean;
  signal?: AbortSignal;
  label?: string;
  progress?: boolean;
  checkpoints?: boolean;
  onStep?: (record: StepRecord) => void;
  /** Load the final weights back into `model` (default true). */
  loadResult?: boolean;
  /** Extra environment for the runner. */
  env?: NodeJS.ProcessEnv;
}

export interface TorchTrainResult extends TrainResult {
  /** An HF folder (config.json + model.safetensors) with the weights at the end: for {@link generateWithTorch}. */
  weightsDir?: string;
  engine: { python: string; torch: string; device: string; world: number };
}

/** The Python that can import torch, or a ConfigError saying how to get one. */
function requireTorchPython(): string {
  const found = findTorchPython();
  if (!found.python)
    throw new ConfigError("XA_TORCH_PYTHON", found.missing ?? "no Python with torch", {
      hint: "apt install python3-torch, or set XALIGN_PYTHON",
    });
  return found.python;
}

/**
 * Trains one stage on the torch engine and returns what {@link train} returns
 * (history, validation, checkpoint...). The model's weights are replaced by
 * the trained ones unless `loadResult: false`.
 */
export async function trainWithTorch(options: TorchTrainOptions): Promise<TorchTrainResult> {
  const { model, config, outDir } = options;
  if (config.lora) {
    throw new ConfigError("XA_TORCH_LORA", "the torch engine trains full models only; this stage has LoRA", {
      field: "train.lora",
      hint: "use engine: tfjs for LoRA stages",
    });
  }
  const python = options.python ?? requireTorchPython();
  const { totalSteps, warmupSteps } = stageSteps(config, options.train.batchesPerEpoch);
  const nproc = options.nproc ?? 1;
  const work = join(outDir, "torch");
  await mkdir(work, { recursive: true });
  const batchesFile = join(work, "batches.bin");
  const micro = microBatchSequence(options.train, totalSteps, config.grad_accum);
  for (const { batch } of micro) {
    if (batch.batchSize % nproc !== 0)
      throw new ConfigError("XA_TORCH_NPROC", `batch size ${batch.batchSize} does not split over ${nproc} processes`, {
        field: "train.batch_size",
        hint: "use a batch size divisible by the process count",
      });
  }
  await writeBatchesFile(batchesFile, micro);
  let validationFile: string | undefined;
  if (options.validation && config.eval_every) {
    validationFile = join(work, "validation.bin");
    const v = options.validation.epoch(0).slice(0, config.eval_batches);
    await writeBatchesFile(
      validationFile,
      v.map((batch, index) => ({ batch, epoch: 0, index })),
    );
  }
  const initWeights = join(work, "init.safetensors");
  if (!options.resume || !existsSync(initWeights)) await writeHfWeights(model, initWeights);
  const job = {
    format: "xalign-torch-job/1",
    model_config: modelConfigJson(model.config),
    init_weights: resolve(initWeights),
    batches: resolve(batchesFile),
    ...(validationFile ? { validation: resolve(validationFile) } : {}),
    out_dir: resolve(outDir),
    seed: options.seed ?? 0,
    device: options.device ?? "auto",
    precision: options.precision ?? "fp32",
    tf32: options.tf32 ?? false,
    checkpoints: options.checkpoints !== false,
    // The weights at the end (also when interrupted, and when checkpoints are off): what comes back into the model.
    final_dir: resolve(join(work, "final")),
    ...(options.threads ? { threads: options.threads } : {}),
    train: torchTrainBlock(config, totalSteps, warmupSteps),
  };
  const jobFile = join(work, "job.json");
  await writeFile(jobFile, `${JSON.stringify(job, null, 2)}\n`);

  const runner = torchRunnerPath();
  // --nproc N: the runner starts itself under torch.distributed.run (torchrun), DDP over N local processes.
  const argv = [python, runner, "--job", resolve(jobFile), ...(nproc > 1 ? ["--nproc", String(nproc)] : [])];
  if (options.resume) argv.push("--resume");

  const startStep = options.resume ? ((await latestCheckpointStep(outDir)) ?? 0) : 0;
  const monitor =
    options.progress === false ? undefined : new TrainingMonitor({ total: totalSteps, label: options.label ?? "train (torch)", startStep });
  const history: StepRecord[] = [];
  const validation: { step: number; loss: number }[] = [];
  let result: Record<string, unknown> | undefined;
  const stderrTail: string[] = [];
  const signal = options.signal ?? interruptSignal();

  const code = await new Promise<number>((resolveExit, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1", ...options.env },
    });
    const onAbort = () => child.kill("SIGINT");
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.startsWith(TORCH_METRICS_PREFIX)) {
        const row = JSON.parse(line.slice(TORCH_METRICS_PREFIX.length)) as Record<string, number | string>;
        if (row.split !== "train" && row.split !== "validation") return; // {"event": "start", ...}
        if (row.split === "validation") {
          validation.push({ step: row.step as number, loss: row.loss as number });
          monitor?.validation(row.step as number, row.loss as number);
          return;
        }
        const { split: _split, ...rest } = row;
        const record = rest as unknown as StepRecord;
        history.push(record);
        options.onStep?.(record);
        monitor?.step(record.step, { loss: record.loss, lr: record.lr, tokensPerSecond: record.tokens_per_s });
      } else if (line.startsWith(TORCH_RESULT_PREFIX)) {
        result = JSON.parse(line.slice(TORCH_RESULT_PREFIX.length)) as Record<string, unknown>;
      } else if (line.trim()) {
        process.stdout.write(`${line}\n`);
      }
    });
    createInterface({ input: child.stderr }).on("line", (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 40) stderrTail.shift();
    });
    child.on("error", (err) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    });
    child.on("close", (c) => {
      signal.removeEventListener("abort", onAbort);
      resolveExit(c ?? 1);
    });
  });
  // Under torch.distributed.run an interrupt also ends the launcher with an error after the workers checkpointed.
  if (!result || (code !== 0 && code !== 130 && result.interrupted !== true)) {
    monitor?.done("failed");
    throw new TrainingError("XA_TORCH_FAILED", `the torch engine exited with code ${code}: ${stderrTail.slice(-8).join("\n")}`, {
      file: jobFile,
      hint: `rerun by hand: ${argv.join(" ")}`,
    });
  }
  const interrupted = result.interrupted === true;
  monitor?.done(interrupted ? "interrupted" : result.stoppedEarly ? "stopped early" : "done");
  const checkpoint = (result.checkpoint as string | null) ?? undefined;
  const finalDir = (result.finalDir as string | null) ?? undefined;
  const weightsDir = finalDir && existsSync(join(finalDir, "model.safetensors")) ? finalDir : checkpoint;
  if (options.loadResult !== false && weightsDir) await loadWeightsInto(model, weightsDir);
  return {
    steps: result.steps as number,
    totalSteps,
    finalLoss: (result.finalLoss as number | null) ?? Number.NaN,
    bestValidationLoss: (result.bestValidationLoss as number | null) ?? undefined,
    validation,
    interrupted,
    stoppedEarly: result.stoppedEarly === true,
    checkpoint,
    ...(result.resumedFrom ? { resumedFrom: result.resumedFrom as string } : {}),
    metricsFile: join(outDir, "metrics.jsonl"),
    history,
    ...(weightsDir ? { weightsDir } : {}),
    engine: { python, torch: String(result.torch), device: String(result.device), world: result.world as number },
  };
}

/** The step of the newest checkpoint-N in `outDir` (where a resumed run's progress display starts). */
async function latestCheckpointStep(outDir: string): Promise<number | undefined> {
  const dir = await latestCheckpoint(outDir);
  return dir === undefined ? undefined : Number(/checkpoint-(\d+)$/.exec(dir)?.[1] ?? 0);
}

/** The config.json object the runner builds its model from (canon_width kept). */
function modelConfigJson(cfg: LlamaConfig): Record<string, unknown> {
  return configToJson(cfg);
}

/** Replaces `model`'s weights with those of an HF folder written by the runner. */
export async function loadWeightsInto(model: LlamaModel, dir: string): Promise<void> {
  const loaded = await loadCheckpoint(dir, { config: model.config });
  try {
    for (const [name, v] of model.variables) tf.tidy(() => v.assign(loaded.weight(name)));
  } finally {
    loaded.dispose();
  }
}

/**
 * Batched greedy decoding on the torch engine (the runner's --generate) from
 * the HF folder `weightsDir`: per prompt the new ids, the EOS and what follows
 * left out, as TF.js's generate() returns them (the parity test checks both
 * agree). No KV cache yet: each new token reruns the sequence, which a GPU
 * absorbs for evaluation-sized prompts and outputs.
 */
export async function generateWithTorch(
  weightsDir: string,
  prompts: number[][],
  options: { maxNewTokens?: number; eosTokenId?: number; device?: "auto" | "cpu" | "cuda"; python?: string; workDir?: string } = {},
): Promise<number[][]> {
  const python = options.python ?? requireTorchPython();
  const work = options.workDir ?? weightsDir;
  const jobFile = join(work, `generate-${process.pid}-${Date.now()}.json`);
  const eos = options.eosTokenId;
  await writeFile(
    jobFile,
    JSON.stringify({
      weights_dir: resolve(weightsDir),
      prompts,
      max_new_tokens: options.maxNewTokens ?? 64,
      ...(eos !== undefined ? { eos_token_id: eos } : {}),
      device: options.device ?? "auto",
    }),
  );
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolveRun, reject) => {
    const child = spawn(python as string, [torchRunnerPath(), "--generate", jobFile], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolveRun({ code: code ?? 1, stdout, stderr }));
  });
  await rm(jobFile, { force: true });
  if (out.code !== 0)
    throw new TrainingError(
      "XA_TORCH_FAILED",
      `torch generation exited with code ${out.code}: ${out.stderr.trim().split("\n").slice(-6).join("\n")}`,
      {
        file: weightsDir,
      },
    );
  const rows = (JSON.parse(out.stdout.trim().split("\n").at(-1) as string) as { tokens: number[][] }).tokens;
  return rows.map((row) => (eos !== undefined && row.includes(eos) ? row.slice(0, row.indexOf(eos)) : row));
}

/**
 * {@link generateWithTorch} with texts: each row decoded (special tokens
 * skipped) and cut before its earliest stop string, as TF.js's generate()
 * returns `texts` with `stopStrings` (rows run to EOS or maxNewTokens and are
 * cut afterwards; the greedy tokens before the stop are the same).
 */
export async function generateTextsWithTorch(
  weightsDir: string,
  prompts: number[][],
  tokenizer: { decode(ids: number[], options?: { skipSpecialTokens?: boolean }): Promise<string> },
  options: Parameters<typeof generateWithTorch>[2] & { stopStrings?: string[] } = {},
): Promise<{ tokens: number[][]; texts: string[] }> {
  const tokens = await generateWithTorch(weightsDir, prompts, options);
  const stops = (options.stopStrings ?? []).filter((x) => x.length > 0);
  const texts: string[] = [];
  for (const row of tokens) {
    const text = await tokenizer.decode(row, { skipSpecialTokens: true });
    const cut = Math.min(...stops.map((x) => text.indexOf(x)).filter((i) => i >= 0));
    texts.push(Number.isFinite(cut) ? text.slice(0, cut) : text);
  }
  return { tokens, texts };
}

/**
 * Whether the torch engine should train: "torch" and "tfjs" decide; "auto"
 * picks torch when an interpreter with CUDA torch is found.
 */
export function torchEngineWanted(engine: "auto" | "tfjs" | "torch" | undefined): boolean {
  if (engine === "torch") return true;
  if (engine === "tfjs") return false;
  const found = findTorchPython();
  return found.probe?.cuda === true;
}

/** Where a training job runs: TF.js here, the torch engine, or "auto" (torch when torch sees CUDA). */
export type TrainEngine = "auto" | "tfjs" | "torch";

/** The torch engine's own settings for {@link trainOn} (the rest comes from the TrainOptions). */
export type TorchSettings = Pick<TorchTrainOptions, "python" | "device" | "precision" | "tf32" | "nproc" | "threads" | "env">;

/**
 * One training job on the chosen engine, with {@link train}'s options: the
 * drop-in the study's full mode calls where it calls train(). The torch engine
 * takes full-model jobs (`params` = the LlamaModel's `variables`); a LoRA or
 * partial job stays on TF.js under "auto" and is refused under "torch". On
 * torch the trained weights come back into the model, so what follows
 * (evaluation, saving) is unchanged.
 *
 * @example
 * const result = await trainOn(settings.engine ?? "auto", { model, params: model.variables, train, config, seed, outDir, ...modelPersistence(model) });
 */
export async function trainOn(
  engine: TrainEngine,
  options: TrainOptions,
  torch: TorchSettings = {},
): Promise<TrainResult | TorchTrainResult> {
  const model = options.model;
  const full = model instanceof LlamaModel && options.params === model.variables;
  const useTorch = engine === "torch" || (engine === "auto" && full && torchEngineWanted("auto"));
  if (!useTorch) return train(options);
  if (!full) {
    throw new ConfigError("XA_TORCH_PARTIAL", "the torch engine trains every weight of a LlamaModel; this job trains a subset (LoRA?)", {
      hint: "use engine tfjs (or auto) for LoRA and partial jobs",
    });
  }
  return trainWithTorch({
    model: model as LlamaModel,
    train: options.train,
    ...(options.validation ? { validation: options.validation } : {}),
    config: options.config,
    seed: options.seed,
    outDir: options.outDir,
    ...(options.label !== undefined ? { label: options.label } : {}),
    ...(options.resume !== undefined ? { resume: options.resume !== false } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.progress !== undefined ? { progress: options.progress } : {}),
    ...(options.checkpoints !== undefined ? { checkpoints: options.checkpoints } : {}),
    ...(options.onStep ? { onStep: options.onStep } : {}),
    ...torch,
  });
}
