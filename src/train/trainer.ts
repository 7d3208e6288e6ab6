/**
 * The training loop shared by pretraining and instruction tuning: gradient
 * accumulation, AdamW, warmup schedules, global-norm clipping, NaN/Inf
 * detection, validation and early stopping, atomic checkpoints holding
 * everything needed for an exact resume, metrics.jsonl, and a live display.
 *
 * On the cpu backend a run stopped at step k and resumed from its checkpoint
 * gives bitwise the same losses as an uninterrupted run: the weights and
 * moments are saved as float32, and the data order and LoRA dropout masks
 * depend only on (seed, epoch, step).
 *
 * @example
 * const result = await train({ model, train: batches, config: stage.train, seed: 0, outDir: "runs/tiny/pretrain", saveModel });
 */
import { appendFile, mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { TrainConfig } from "../config/schema.js";
import { readSafetensors, type TensorToWrite, writeSafetensors } from "../model/safetensors.js";
import { interruptSignal } from "../notebook/index.js";
import { systemError, TrainingError } from "../util/errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/fs.js";
import { AdamW, clipScale, globalNorm } from "./adamw.js";
import type { Batch, BatchSource, DataPosition } from "./batches.js";
import { TrainingMonitor } from "./monitor.js";
import { learningRate, type Schedule, warmupStepsFrom } from "./schedule.js";

/** What the loop needs of a model. */
export interface TrainableModel {
  /** `segments` (when the batch has them): document number per position, attention kept inside a document. */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, attentionMask?: tf.Tensor2D, segments?: Int32Array): tf.Scalar;
}

export interface TrainOptions {
  model: TrainableModel;
  /** The parameters to update, by name (all weights, or only LoRA adapters). */
  params: ReadonlyMap<string, tf.Variable>;
  train: BatchSource;
  validation?: BatchSource;
  config: TrainConfig;
  seed: number;
  /** The stage folder: metrics.jsonl and checkpoint-N/ go here. */
  outDir: string;
  /** Writes the model (HF layout, tokenizer, adapters...) into a checkpoint folder. */
  saveModel: (dir: string) => Promise<void>;
  /** Reads the trainable weights back from a checkpoint folder written by saveModel (for resume). */
  loadModel: (dir: string) => Promise<void>;
  /** Shown before the progress bar. */
  label?: string;
  /** Continue from the newest checkpoint in outDir (true) or from this checkpoint folder. */
  resume?: boolean | string;
  /** Stops after the current step when aborted (default: the kernel's / Ctrl-C interrupt signal). */
  signal?: AbortSignal;
  /** Task metrics computed at each evaluation (e.g. BLEU on a few examples). */
  onEvaluate?: (step: number) => Promise<Record<string, number>>;
  /** Called before each optimiser step with its 0-based index (LoRA seeds its dropout from it). */
  beforeStep?: (step: number) => void;
  /** Called after each optimiser step (for tests and custom logging). */
  onStep?: (record: StepRecord) => void;
  /** Show progress (default true). */
  progress?: boolean;
  /** Write checkpoints (default true). Off for short throwaway runs: only metrics.jsonl is written. */
  checkpoints?: boolean;
}

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens: number;
  tokens_per_s: number;
  elapsed_s: number;
}

export interface TrainResult {
  steps: number;
  totalSteps: number;
  finalLoss: number;
  bestValidationLoss: number | undefined;
  validation: { step: number; loss: number }[];
  interrupted: boolean;
  stoppedEarly: boolean;
  /** The last checkpoint written. */
  checkpoint: string | undefined;
  /** The checkpoint this run resumed from, if it resumed. */
  resumedFrom?: string;
  /** Newer checkpoints that could not be read when resuming (skipped), with why. */
  damagedCheckpoints?: { dir: string; reason: string }[];
  metricsFile: string;
  history: StepRecord[];
}

interface TrainerState {
  format: "xalign-trainer-state/1";
  step: number;
  position: DataPosition;
  bestValidationLoss: number | null;
  evalsWithoutImprovement: number;
  tokensSeen: number;
  elapsedSeconds: number;
  totalSteps: number;
}

const STATE_FILE = "trainer_state.json";
const OPTIMIZER_FILE = "optimizer.safetensors";

/** Total optimiser steps of a stage. */
export function totalStepsOf(config: TrainConfig, batchesPerEpoch: number): number {
  if (config.max_steps !== undefined) return config.max_steps;
  return Math.max(1, Math.ceil(((config.epochs ?? 1) * batchesPerEpoch) / config.grad_accum));
}

/** A stage's optimiser steps and warmup steps (both engines schedule from these); a warmup longer than training is an error. */
export function stageSteps(config: TrainConfig, batchesPerEpoch: number): { totalSteps: number; warmupSteps: number } {
  const totalSteps = totalStepsOf(config, batchesPerEpoch);
  const warmupSteps = warmupStepsFrom(totalSteps, {
    ...(config.warmup_steps !== undefined ? { steps: config.warmup_steps } : {}),
    ...(config.warmup_ratio !== undefined ? { ratio: config.warmup_ratio } : {}),
  });
  if (warmupSteps > totalSteps) {
    throw new TrainingError("XA_TRAIN_WARMUP", `warmup (${warmupSteps} steps) is longer than training (${totalSteps} steps)`, {
      field: "train.warmup_steps",
    });
  }
  return { totalSteps, warmupSteps };
}

/** Runs (or resumes) one training stage. */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { model, params, config, outDir } = options;
  await mkdir(outDir, { recursive: true });
  await removeStaleTempFolders(outDir);
  const { totalSteps, warmupSteps } = stageSteps(config, options.train.batchesPerEpoch);
  const schedule: Schedule = { kind: config.schedule, peak: config.lr, warmupSteps, totalSteps };
  const noDecay = config.no_decay.map((p) => new RegExp(p));
  const optimizer = new AdamW({
    beta1: config.beta1,
    beta2: config.beta2,
    epsilon: config.eps,
    weightDecay: config.weight_decay,
    decay: (n) => !noDecay.some((r) => r.test(n)),
  });
  const byVariable = new Map<string, string>();
  for (const [name, v] of params) byVariable.set(v.name, name);
  const varList = [...params.values()];

  let state: TrainerState = {
    format: "xalign-trainer-state/1",
    step: 0,
    position: { epoch: 0, index: 0 },
    bestValidationLoss: null,
    evalsWithoutImprovement: 0,
    tokensSeen: 0,
    elapsedSeconds: 0,
    totalSteps,
  };
  let lastCheckpoint: string | undefined;
  const damagedCheckpoints: { dir: string; reason: string }[] = [];
  let resumedFrom: string | undefined;
  if (typeof options.resume === "string") {
    state = await restore(options.resume, params, optimizer, options.loadModel);
    lastCheckpoint = resumedFrom = options.resume;
  } else if (options.resume) {
    // Newest first; a damaged checkpoint (a truncated file after a crash or a full disk) is reported and skipped.
    const steps = (await checkpointSteps(outDir)).reverse();
    for (const step of steps) {
      const dir = join(outDir, `checkpoint-${step}`);
      try {
        state = await restore(dir, params, optimizer, options.loadModel);
        lastCheckpoint = resumedFrom = dir;
        break;
      } catch (err) {
        damagedCheckpoints.push({ dir, reason: (err as Error).message });
      }
    }
    if (damagedCheckpoints.length > 0 && resumedFrom === undefined) {
      const first = damagedCheckpoints[0] as { dir: string; reason: string };
      throw new TrainingError(
        "XA_TRAIN_RESUME",
        `no intact checkpoint to resume from: ${damagedCheckpoints.map((d) => d.dir).join(", ")} are damaged (newest: ${first.reason})`,
        {
          file: first.dir,
          hint: "start the stage again without --resume, or restore a checkpoint folder from a backup",
        },
      );
    }
    if (damagedCheckpoints.length > 0) {
      for (const d of damagedCheckpoints) process.stderr.write(`xalign: ${d.dir} is damaged (${d.reason})\n`);
      process.stderr.write(`xalign: resuming from ${resumedFrom}, the newest intact checkpoint (step ${state.step})\n`);
    }
  }

  const metricsFile = join(outDir, "metrics.jsonl");
  // Rows written after the checkpoint (a hard kill, a full disk) would be logged again: keep only those up to its step.
  if (options.resume) await truncateMetrics(metricsFile, state.step);
  const signal = options.signal ?? interruptSignal();
  const monitor =
    options.progress === false
      ? undefined
      : new TrainingMonitor({ total: totalSteps, label: options.label ?? "train", startStep: state.step });
  const history: StepRecord[] = [];
  const validation: { step: number; loss: number }[] = [];
  const started = performance.now() - state.elapsedSeconds * 1000;
  let interrupted = false;
  let stoppedEarly = false;
  let finalLoss = Number.NaN;
  const divergence = new DivergenceCheck(config);

  const nextBatch = (): Batch => {
    let batches = options.train.epoch(state.position.epoch);
    if (state.position.index >= batches.length) {
      state.position = { epoch: state.position.epoch + 1, index: 0 };
      batches = options.train.epoch(state.position.epoch);
    }
    const batch = batches[state.position.index] as Batch;
    state.position = { ...state.position, index: state.position.index + 1 };
    return batch;
  };

  const save = async (): Promise<void> => {
    state.elapsedSeconds = (performance.now() - started) / 1000;
    try {
      lastCheckpoint = await saveCheckpointAtomic(outDir, state, optimizer, options.saveModel, config.keep_last);
    } catch (err) {
      // Disk full and the like: the earlier checkpoints are untouched (the save went to a temp folder).
      throw systemError(withPath(err, join(outDir, `checkpoint-${state.step}`))) ?? err;
    }
  };

  try {
    while (state.step < totalSteps) {
      if (signal.aborted) {
        interrupted = true;
        break;
      }
      options.beforeStep?.(state.step);
      const stepStart = performance.now();
      let lossSum = 0;
      let tokens = 0;
      let acc: Record<string, tf.Tensor> | undefined;
      for (let micro = 0; micro < config.grad_accum; micro++) {
        const batch = nextBatch();
        tokens += batch.supervisedTokens;
        const { value, grads } = tf.tidy(() => {
          const [ids, labels, mask] = batchTensors(batch);
          return tf.variableGrads(() => model.loss(ids, labels, mask, batch.segments), varList);
        });
        lossSum += (await value.data())[0] as number;
        value.dispose();
        acc = accumulate(acc, grads, byVariable);
      }
      const loss = lossSum / config.grad_accum;
      if (!Number.isFinite(loss)) {
        disposeAll(acc);
        throw new TrainingError("XA_TRAIN_NONFINITE", `the loss became ${loss} at step ${state.step + 1}`, {
          hint: `lower the learning rate or enable clip_norm; the last good checkpoint is ${lastCheckpoint ?? "none (no checkpoint was written yet)"}`,
        });
      }
      const diverged = divergence.check(loss);
      if (diverged) {
        disposeAll(acc);
        throw new TrainingError("XA_TRAIN_DIVERGED", `training diverged at step ${state.step + 1}: ${diverged}`, {
          field: "train.lr",
          hint: `lower the learning rate or enable clip_norm; the last good checkpoint is ${lastCheckpoint ?? "none (no checkpoint was written yet)"}`,
        });
      }
      // Averaging over micro-batches and clipping are one factor on the gradients, applied inside the optimiser step.
      const grads = acc as Record<string, tf.Tensor>;
      const accumScale = 1 / config.grad_accum;
      const norm = globalNorm(grads) * accumScale;
      if (!Number.isFinite(norm)) {
        disposeAll(grads);
        throw new TrainingError("XA_TRAIN_NONFINITE", `the gradient norm became ${norm} at step ${state.step + 1}`, {
          hint: `lower the learning rate; the last good checkpoint is ${lastCheckpoint ?? "none"}`,
        });
      }
      const lr = learningRate(schedule, state.step);
      optimizer.apply(params, grads, lr, accumScale * clipScale(norm, config.clip_norm));
      disposeAll(grads);
      state.step++;
      state.tokensSeen += tokens;
      finalLoss = loss;
      const record: StepRecord = {
        step: state.step,
        epoch: state.position.epoch,
        loss,
        lr,
        grad_norm: norm,
        tokens,
        tokens_per_s: tokens / ((performance.now() - stepStart) / 1000),
        elapsed_s: (performance.now() - started) / 1000,
      };
      history.push(record);
      options.onStep?.(record);
      if (state.step % config.log_every === 0 || state.step === totalSteps) await appendMetrics(metricsFile, { split: "train", ...record });
      monitor?.step(state.step, { loss, lr, tokensPerSecond: record.tokens_per_s });

      if (options.validation && config.eval_every && (state.step % config.eval_every === 0 || state.step === totalSteps)) {
        const valLoss = evaluateLoss(model, options.validation, config.eval_batches);
        const extra = options.onEvaluate ? await options.onEvaluate(state.step) : {};
        validation.push({ step: state.step, loss: valLoss });
        monitor?.validation(state.step, valLoss);
        await appendMetrics(metricsFile, { split: "validation", step: state.step, loss: valLoss, ...extra });
        if (state.bestValidationLoss === null || valLoss < state.bestValidationLoss) {
          state.bestValidationLoss = valLoss;
          state.evalsWithoutImprovement = 0;
        } else {
          state.evalsWithoutImprovement++;
        }
        if (config.early_stopping_patience !== undefined && state.evalsWithoutImprovement >= config.early_stopping_patience) {
          stoppedEarly = true;
          break;
        }
      }
      if (options.checkpoints !== false && config.save_every && state.step % config.save_every === 0 && state.step < totalSteps)
        await save();
    }
    if (options.checkpoints !== false && !lastCheckpoint?.endsWith(`checkpoint-${state.step}`)) await save();
  } finally {
    optimizer.dispose();
  }
  monitor?.done(interrupted ? "interrupted" : stoppedEarly ? "stopped early" : "done");
  return {
    steps: state.step,
    totalSteps,
    finalLoss,
    bestValidationLoss: state.bestValidationLoss ?? undefined,
    validation,
    interrupted,
    stoppedEarly,
    checkpoint: lastCheckpoint,
    ...(resumedFrom !== undefined ? { resumedFrom } : {}),
    ...(damagedCheckpoints.length > 0 ? { damagedCheckpoints } : {}),
    metricsFile,
    history,
  };
}

async function appendMetrics(file: string, row: Record<string, unknown>): Promise<void> {
  try {
    await appendFile(file, `${JSON.stringify(row)}\n`);
  } catch (err) {
    throw systemError(withPath(err, file)) ?? err;
  }
}

/** Node's write errors (ENOSPC from a file handle) carry no path: give them the one being written. */
function withPath(err: unknown, path: string): unknown {
  const e = err as NodeJS.ErrnoException;
  if (err instanceof Error && typeof e.code === "string" && e.path === undefined) e.path = path;
  return err;
}

/**
 * Drops the rows of metrics.jsonl after `step` (and a torn last line), so a
 * resumed run's metrics equal an uninterrupted run's. Rewritten atomically.
 */
export async function truncateMetrics(file: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const kept: string[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let row: { step?: unknown };
    try {
      row = JSON.parse(line) as { step?: unknown };
    } catch {
      continue;
    }
    if (typeof row.step !== "number" || row.step <= step) kept.push(line);
  }
  const out = kept.length > 0 ? `${kept.join("\n")}\n` : "";
  if (out !== text) await writeFileAtomic(file, out);
}

/** Default of train.divergence_factor. */
export const DEFAULT_DIVERGENCE_FACTOR = 10;

/**
 * The divergence rule: a step's loss above `max_loss`, or the loss smoothed
 * by an exponential moving average (0.9, bias-corrected) above
 * `divergence_factor` (default 10) times the first loss of this run, taken
 * as at least 1 (so a stage starting at a low loss may still move by nats).
 */
export class DivergenceCheck {
  private start: number | undefined;
  private ema = 0;
  private weight = 0;
  private readonly factor: number;
  private readonly maxLoss: number | undefined;

  constructor(config: { max_loss?: number | undefined; divergence_factor?: number | undefined }) {
    this.factor = config.divergence_factor ?? DEFAULT_DIVERGENCE_FACTOR;
    this.maxLoss = config.max_loss;
  }

  /** A description of the divergence, or undefined when the loss is fine. */
  check(loss: number): string | undefined {
    if (this.maxLoss !== undefined && loss > this.maxLoss) return `the loss ${fmt(loss)} is above max_loss ${this.maxLoss}`;
    this.start ??= loss;
    this.ema = 0.9 * this.ema + 0.1 * loss;
    this.weight = 0.9 * this.weight + 0.1;
    const smoothed = this.ema / this.weight;
    const limit = this.factor * Math.max(this.start, 1);
    if (this.factor > 0 && smoothed > limit)
      return `the smoothed loss ${fmt(smoothed)} is over ${this.factor} times the first loss ${fmt(this.start)} (set train.divergence_factor or train.max_loss to change the rule)`;
    return undefined;
  }
}

function fmt(x: number): string {
  return Math.abs(x) >= 1e4 ? x.toExponential(2) : x.toFixed(3);
}

/** Mean loss over the first `maxBatches` validation batches, weighted by supervised tokens. */
export function evaluateLoss(model: TrainableModel, source: BatchSource, maxBatches: number): number {
  const batches = source.epoch(0).slice(0, maxBatches);
  let total = 0;
  let weight = 0;
  for (const batch of batches) {
    const l = tf.tidy(() => {
      const [ids, labels, mask] = batchTensors(batch);
      return model.loss(ids, labels, mask, batch.segments).dataSync()[0] as number;
    });
    total += l * batch.supervisedTokens;
    weight += batch.supervisedTokens;
  }
  return weight > 0 ? total / weight : Number.NaN;
}

function batchTensors(batch: Batch): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  const shape: [number, number] = [batch.batchSize, batch.length];
  return [
    tf.tensor2d(batch.inputIds, shape, "int32"),
    tf.tensor2d(batch.labels, shape, "int32"),
    tf.tensor2d(batch.attentionMask, shape, "int32"),
  ];
}

function accumulate(
  acc: Record<string, tf.Tensor> | undefined,
  grads: tf.NamedTensorMap,
  byVariable: Map<string, string>,
): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = acc ?? {};
  for (const [varName, g] of Object.entries(grads)) {
    const name = byVariable.get(varName) ?? varName;
    const prev = out[name];
    if (prev) {
      out[name] = tf.add(prev, g);
      prev.dispose();
      g.dispose();
    } else {
      out[name] = g;
    }
  }
  return out;
}

function disposeAll(grads: Record<string, tf.Tensor> | undefined): void {
  for (const g of Object.values(grads ?? {})) g.dispose();
}

/** The checkpoint-N folder with the highest N in `outDir`, if any. */
export async function latestCheckpoint(outDir: string): Promise<string | undefined> {
  const steps = await checkpointSteps(outDir);
  const last = steps.at(-1);
  return last === undefined ? undefined : join(outDir, `checkpoint-${last}`);
}

async function checkpointSteps(outDir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(outDir);
  } catch {
    return [];
  }
  return names
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/**
 * Writes checkpoint-<step> atomically: everything goes into a temp folder
 * beside it, trainer_state.json last, and one rename publishes it. A kill at
 * any point leaves the previous checkpoints intact and no partial folder
 * under a checkpoint name. Keeps the newest `keepLast`.
 */
async function saveCheckpointAtomic(
  outDir: string,
  state: TrainerState,
  optimizer: AdamW,
  saveModel: (dir: string) => Promise<void>,
  keepLast: number,
): Promise<string> {
  const final = join(outDir, `checkpoint-${state.step}`);
  const tmp = join(outDir, `.tmp-checkpoint-${state.step}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    await mkdir(tmp, { recursive: true });
    await saveModel(tmp);
    const opt = await optimizer.getState();
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, { m, v, shape }] of Object.entries(opt.moments)) {
      tensors[`${name}.exp_avg`] = { dtype: "F32", shape, data: m };
      tensors[`${name}.exp_avg_sq`] = { dtype: "F32", shape, data: v };
    }
    await writeSafetensors(join(tmp, OPTIMIZER_FILE), tensors, { format: "xalign-adamw", step: String(opt.step) });
    await writeJsonAtomic(join(tmp, STATE_FILE), state);
  } catch (err) {
    // A failed save (a full disk) gives its space back; the earlier checkpoints were never touched.
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  if (await exists(final)) {
    const old = `${final}.old-${process.pid}`;
    await rename(final, old);
    await rename(tmp, final);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(tmp, final);
  }
  const steps = await checkpointSteps(outDir);
  for (const s of steps.slice(0, Math.max(0, steps.length - keepLast)))
    await rm(join(outDir, `checkpoint-${s}`), { recursive: true, force: true });
  return final;
}

async function restore(
  dir: string,
  params: ReadonlyMap<string, tf.Variable>,
  optimizer: AdamW,
  loadModel: (dir: string) => Promise<void>,
): Promise<TrainerState> {
  let state: TrainerState;
  try {
    state = JSON.parse(await readFile(join(dir, STATE_FILE), "utf8")) as TrainerState;
  } catch (err) {
    throw new TrainingError("XA_TRAIN_RESUME", `cannot read ${STATE_FILE}: ${(err as Error).message}`, {
      file: join(dir, STATE_FILE),
      hint: "resume from a complete checkpoint-N folder",
    });
  }
  await loadModel(dir);
  const opt = await readSafetensors(join(dir, OPTIMIZER_FILE));
  const moments: Record<string, { m: Float32Array; v: Float32Array; shape: number[] }> = {};
  for (const name of params.keys()) {
    const m = opt[`${name}.exp_avg`];
    const v = opt[`${name}.exp_avg_sq`];
    if (m && v) moments[name] = { m: m.data as Float32Array, v: v.data as Float32Array, shape: m.shape };
  }
  // Every optimiser step advances the trainer's step by one, so the two counts agree.
  optimizer.setState({ step: state.step, moments });
  return state;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Temp folders of saves that a killed process never finished. */
async function removeStaleTempFolders(outDir: string): Promise<void> {
  for (const name of await readdir(outDir)) {
    const old = /^(checkpoint-\d+)\.old-\d+$/.exec(name);
    // Killed between the two renames of a re-save: the old folder is the only complete copy.
    if (old && !(await exists(join(outDir, old[1] as string)))) await rename(join(outDir, name), join(outDir, old[1] as string));
    else if (old || name.startsWith(".tmp-checkpoint-")) await rm(join(outDir, name), { recursive: true, force: true });
  }
}
