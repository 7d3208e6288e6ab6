/**
 * An `engine: torch-fsdp` experiment, resolved into what python/xalign_torch.py
 * runs under torchrun: per stage, the data split and batch seed (the tfjs
 * engine's, so both engines train the same sequences in the same order), the
 * micro-batches (batch_size per GPU x world size rows; each rank takes an
 * equal share), the optimiser steps, DDP or FSDP (by the memory estimate or
 * launch.parallel), and the runner's job. Planning reads the data but writes
 * nothing; `prepareLaunch` encodes the data (TypeScript, once) and writes
 * what the plan describes.
 *
 * @example
 * const plan = await planLaunch(await loadExperiment("examples/paper-7b.yaml"));
 * plan.stages[0].parallel.mode; // "fsdp": LLaMA-7B does not fit one 80 GB GPU under DDP
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type LoadedExperiment, resolveFrom } from "../config/load.js";
import { MODEL_PRESETS } from "../config/presets.js";
import type { ExperimentConfig, LaunchConfig, StageConfig, TrainConfig } from "../config/schema.js";
import { type AlpacaRecord, toAlpacaRecord } from "../data/example.js";
import { loadTokenizer, type Tokenizer } from "../tokenizer/index.js";
import { modelConfigFor, trainingTokenizer } from "../train/experiment.js";
import { warmupStepsFrom } from "../train/schedule.js";
import { readInstructionFiles, splitValidation } from "../train/sequences.js";
import { torchTrainBlock } from "../train/torch-engine.js";
import { totalStepsOf } from "../train/trainer.js";
import { ConfigError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { estimateMemory, formatCount, type MemoryEstimate, type ModelShape } from "./memory.js";
import { type LaunchOverrides, resolveLaunchSettings, resolveTopology, type Topology } from "./topology.js";

/** The ids the Python side needs; xalign resolves them so both engines agree. */
export interface TokenizerIds {
  bos_id: number;
  eos_id: number;
  pad_id: number;
}

/** What python/xalign_torch.py reads for one stage (format "xalign-torch-job/1", written by prepareLaunch). */
export interface LaunchJob {
  format: "xalign-torch-job/1";
  experiment: string;
  stage: string;
  /** The model's HF config (from scratch; filled when prepared if the tokenizer is not there yet), or null with init_from. */
  model_config: Record<string, unknown> | null;
  /** From scratch: TypeScript's initial weights (HF-layout safetensors). */
  init_weights?: string;
  /** A Hugging Face folder to start from: model.from, or the previous stage's final/. */
  init_from?: string;
  /** xalign-batches/1: the micro-batches in training order. */
  batches: string;
  validation?: string;
  /** checkpoint-N/ and metrics.jsonl. */
  out_dir: string;
  /** The stage's Hugging Face folder at the end (with the tokenizer files); not written when interrupted. */
  final_dir: string;
  final_on_interrupt: false;
  tokenizer_dir: string;
  seed: number;
  device: "auto";
  precision: "bf16" | "fp32";
  tf32: boolean;
  parallel: "ddp" | "fsdp";
  fsdp?: { sharding: "full_shard" | "shard_grad_op" };
  gradient_checkpointing: boolean;
  checkpoints: true;
  train: Record<string, unknown>;
}

export interface StagePlan {
  name: string;
  index: number;
  /** runs/<name>/<stage>: checkpoint-N/, metrics.jsonl, job.log, final/. */
  dir: string;
  finalDir: string;
  /** runs/<name>/launch/<stage>.json: the runner's job. */
  jobFile: string;
  /** runs/<name>/launch/<stage>.batches.bin (and .validation.bin): the encoded micro-batches. */
  batchesFile: string;
  validationFile: string | undefined;
  /** From scratch (first stage without model.from): runs/<name>/launch/init.safetensors. */
  initWeightsFile: string | undefined;
  train: AlpacaRecord[];
  validation: AlpacaRecord[];
  promptFormat: StageConfig["prompt_format"];
  /** The tfjs engine's split and batch seed for this stage. */
  seed: number;
  /** The stage's train settings with batch_size = rows per micro-batch (what the batches are built with). */
  trainConfig: TrainConfig;
  /** Rows per micro-batch: batch_size per GPU x world size. */
  microBatch: number;
  /** microBatch x grad_accum. */
  effectiveBatch: number;
  /**
   * Micro-batches per epoch. The plan counts every record; `prepareLaunch` drops, as the tfjs engine
   * does, records whose response max_length cuts away, and recounts.
   */
  microBatchesPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
  /** DDP or FSDP, why, and the memory estimate behind it. */
  parallel: { mode: "ddp" | "fsdp"; reason: string; memory: MemoryEstimate };
  job: LaunchJob;
}

export interface LaunchPlan {
  experiment: string;
  experimentFile: string;
  runDir: string;
  /** runs/<name>/launch: jobs, batches, launch.sh, slurm.sbatch, plan.json. */
  launchDir: string;
  settings: LaunchConfig;
  topology: Topology;
  /** Where the tokenizer comes from, and the folder it is saved to for the job. */
  tokenizer: { source: string; dir: string; ids: TokenizerIds | undefined };
  /** The starting checkpoint, when there is one, and whether it exists on this machine. */
  model: { from: string | undefined; available: boolean };
  stages: StagePlan[];
  /** Things that do not stop a launch but that the user should know. */
  warnings: string[];
  /** Set by planLaunch's `slurm` option. */
  slurm: boolean;
}

export interface PlanOptions extends LaunchOverrides {
  /** Plan for a Slurm batch script (the rendezvous comes from the allocation). */
  slurm?: boolean;
}

/** Resolves and validates a torch-fsdp launch of an experiment. */
export async function planLaunch(exp: LoadedExperiment, options: PlanOptions = {}): Promise<LaunchPlan> {
  const config = withModelDir(exp, options.modelDir);
  if (config.engine !== "torch-fsdp") {
    throw new ConfigError("XA_LAUNCH_ENGINE", `the experiment's engine is "${config.engine}"`, {
      file: exp.file,
      field: "engine",
      hint: "set `engine: torch-fsdp` to launch it with PyTorch; `xalign train` runs the tfjs engine",
    });
  }
  const settings = resolveLaunchSettings(config.launch, options);
  const topology = resolveTopology(settings, { slurm: options.slurm ?? false });
  const runDir = resolveFrom(exp, join(config.output, config.name));
  const launchDir = join(runDir, "launch");
  const warnings: string[] = [];

  const modelFrom = config.model.from ? resolveFrom(exp, config.model.from) : undefined;
  const modelAvailable = modelFrom !== undefined && existsSync(join(modelFrom, "config.json"));
  if (modelFrom !== undefined && !modelAvailable) {
    warnings.push(
      `model.from ${modelFrom} has no config.json on this machine: it must exist at this path on every node (or pass --model DIR)`,
    );
  }
  const fromConfig = modelAvailable ? await readModelConfig(modelFrom as string) : undefined;
  const maxPositions = typeof fromConfig?.max_position_embeddings === "number" ? fromConfig.max_position_embeddings : undefined;

  const tokenizerSource = config.tokenizer.path ? resolveFrom(exp, config.tokenizer.path) : join(runDir, "tokenizer");
  const tokenizer = await tryLoadTokenizer(tokenizerSource);
  if (!tokenizer) {
    warnings.push(
      config.tokenizer.path
        ? `tokenizer ${tokenizerSource} is not on this machine: its ids are resolved when the launch is prepared`
        : "the tokenizer is trained (tokenizer.train_on) when the launch is prepared",
    );
  }
  const ids = tokenizer ? tokenizerIds(tokenizer) : undefined;
  const modelConfig = modelFrom === undefined && tokenizer ? { ...modelConfigFor(config, tokenizer) } : null;
  const shape = modelShape(config, fromConfig ?? modelConfig ?? undefined, tokenizer?.vocabSize);

  const rng = new Rng(config.seed);
  const stages: StagePlan[] = [];
  for (const [index, stage] of config.stages.entries()) {
    checkStage(exp, stage, index, maxPositions ?? (modelConfig?.max_position_embeddings as number | undefined));
    // The tfjs engine's split and batch seed (src/train/experiment.ts), so both engines hold out the same examples.
    const seed = rng.fork(`stage-${index}-${stage.name}`).nextU32();
    const files = stage.data.map((f) => resolveFrom(exp, f));
    const records = (await readInstructionFiles(files)).map(toAlpacaRecord);
    const split = stage.validation
      ? { train: records, validation: (await readInstructionFiles(stage.validation.map((f) => resolveFrom(exp, f)))).map(toAlpacaRecord) }
      : splitValidation(records, stage.validation_ratio, seed);
    stages.push(
      planStage({ exp, config, stage, index, split, settings, topology, runDir, launchDir, seed, warnings, modelFrom, modelConfig, shape }),
    );
  }
  return {
    experiment: config.name,
    experimentFile: exp.file,
    runDir,
    launchDir,
    settings,
    topology,
    tokenizer: { source: tokenizerSource, dir: join(runDir, "tokenizer"), ids },
    model: { from: modelFrom, available: modelAvailable },
    stages,
    warnings,
    slurm: options.slurm ?? false,
  };
}

/** BOS/EOS/PAD as the tfjs trainer uses them (PAD falls back to EOS). */
export function tokenizerIds(tokenizer: Tokenizer): TokenizerIds {
  const t = trainingTokenizer(tokenizer);
  return { bos_id: t.bosId, eos_id: t.eosId, pad_id: t.padId };
}

interface StageInputs {
  exp: LoadedExperiment;
  config: ExperimentConfig;
  stage: StageConfig;
  index: number;
  split: { train: AlpacaRecord[]; validation: AlpacaRecord[] };
  settings: LaunchConfig;
  topology: Topology;
  runDir: string;
  launchDir: string;
  seed: number;
  warnings: string[];
  modelFrom: string | undefined;
  modelConfig: Record<string, unknown> | null;
  shape: ModelShape;
}

/** A stage's optimiser steps over `microBatchesPerEpoch`, counted as the tfjs trainer counts them. */
export function launchSteps(train: TrainConfig, microBatchesPerEpoch: number): { totalSteps: number; warmupSteps: number } {
  const totalSteps = totalStepsOf(train, microBatchesPerEpoch);
  const warmupSteps = warmupStepsFrom(totalSteps, {
    ...(train.warmup_steps !== undefined ? { steps: train.warmup_steps } : {}),
    ...(train.warmup_ratio !== undefined ? { ratio: train.warmup_ratio } : {}),
  });
  return { totalSteps, warmupSteps };
}

function planStage(s: StageInputs): StagePlan {
  const { stage, index, split, settings, topology, warnings } = s;
  const t = stage.train;
  const field = `stages[${index}].train`;
  const microBatch = t.batch_size * topology.worldSize;
  const effectiveBatch = microBatch * t.grad_accum;
  if (settings.effective_batch !== undefined && settings.effective_batch !== effectiveBatch) {
    const accum = settings.effective_batch / (t.batch_size * topology.worldSize);
    throw new ConfigError(
      "XA_LAUNCH_BATCH",
      `effective batch ${t.batch_size} per GPU x ${t.grad_accum} accumulation x ${topology.worldSize} GPUs = ${effectiveBatch}, but launch.effective_batch is ${settings.effective_batch}`,
      {
        file: s.exp.file,
        field: `${field}.grad_accum`,
        hint: Number.isInteger(accum)
          ? `set grad_accum to ${accum} for ${topology.worldSize} GPUs`
          : `choose batch_size x grad_accum x GPUs = ${settings.effective_batch}`,
      },
    );
  }
  const n = split.train.length;
  if (n < topology.worldSize) {
    throw new ConfigError("XA_LAUNCH_BATCH", `stage "${stage.name}" has ${n} training examples for ${topology.worldSize} GPUs`, {
      file: s.exp.file,
      field: `stages[${index}].data`,
      hint: "every GPU needs at least one example: add data or use fewer GPUs",
    });
  }
  // The tfjs engine's batches (src/train/batches.ts bucketedBatches) with batch_size x world rows, whole batches only.
  const microBatchesPerEpoch = Math.floor(n / microBatch);
  if (microBatchesPerEpoch < 1) {
    throw new ConfigError(
      "XA_LAUNCH_BATCH",
      `stage "${stage.name}" has ${n} training examples: fewer than one micro-batch of ${t.batch_size} per GPU x ${topology.worldSize} GPUs`,
      { file: s.exp.file, field: `${field}.batch_size`, hint: "add examples, or lower batch_size or the GPU count" },
    );
  }
  if (n < effectiveBatch) warnings.push(`stage "${stage.name}": ${n} training examples are less than one global batch (${effectiveBatch})`);
  const trainConfig: TrainConfig = { ...t, batch_size: microBatch };
  const { totalSteps, warmupSteps } = launchSteps(trainConfig, microBatchesPerEpoch);
  if (warmupSteps > totalSteps) {
    throw new ConfigError("XA_LAUNCH_WARMUP", `warmup (${warmupSteps} steps) is longer than training (${totalSteps} steps)`, {
      file: s.exp.file,
      field: `${field}.warmup_steps`,
      hint: "lower warmup_steps or use warmup_ratio",
    });
  }
  const parallel = chooseParallel(settings, s.shape, t, topology);
  if (parallel.mode === "ddp" && !parallel.memory.fitsDdp) {
    warnings.push(
      `stage "${stage.name}": DDP needs ~${parallel.memory.ddpGiB.toFixed(0)} GiB per GPU by the estimate, over ${settings.gpu_memory_gib} GiB (launch.gpu_memory_gib); use launch.parallel: fsdp`,
    );
  }
  if (parallel.mode === "fsdp" && !parallel.memory.fitsFsdp) {
    warnings.push(
      `stage "${stage.name}": FSDP over ${topology.worldSize} GPU(s) needs ~${parallel.memory.fsdpGiB.toFixed(0)} GiB per GPU by the estimate, over ${settings.gpu_memory_gib} GiB; set launch.gradient_checkpointing, lower batch_size or add GPUs`,
    );
  }
  const dir = join(s.runDir, stage.name);
  const finalDir = join(dir, "final");
  const batchesFile = join(s.launchDir, `${stage.name}.batches.bin`);
  const evaluate = split.validation.length > 0 && t.eval_every !== undefined;
  const validationFile = evaluate ? join(s.launchDir, `${stage.name}.validation.bin`) : undefined;
  // A later stage starts from the previous stage's final folder, as in the tfjs engine.
  const previousFinal = index > 0 ? join(s.runDir, s.config.stages[index - 1]!.name, "final") : undefined;
  const from = previousFinal ?? s.modelFrom;
  const initWeightsFile = from === undefined ? join(s.launchDir, "init.safetensors") : undefined;
  const words = settings.fsdp.split(/\s+/);
  const job: LaunchJob = {
    format: "xalign-torch-job/1",
    experiment: s.config.name,
    stage: stage.name,
    model_config: from === undefined ? s.modelConfig : null,
    ...(initWeightsFile ? { init_weights: initWeightsFile } : {}),
    ...(from !== undefined ? { init_from: from } : {}),
    batches: batchesFile,
    ...(validationFile ? { validation: validationFile } : {}),
    out_dir: dir,
    final_dir: finalDir,
    final_on_interrupt: false,
    tokenizer_dir: join(s.runDir, "tokenizer"),
    seed: s.seed,
    device: "auto",
    precision: settings.bf16 ? "bf16" : "fp32",
    tf32: settings.tf32,
    parallel: parallel.mode,
    ...(parallel.mode === "fsdp" ? { fsdp: { sharding: words.includes("shard_grad_op") ? "shard_grad_op" : "full_shard" } } : {}),
    gradient_checkpointing: settings.gradient_checkpointing,
    checkpoints: true,
    train: torchTrainBlock(trainConfig, totalSteps, warmupSteps),
  };
  return {
    name: stage.name,
    index,
    dir,
    finalDir,
    jobFile: join(s.launchDir, `${stage.name}.json`),
    batchesFile,
    validationFile,
    initWeightsFile,
    train: split.train,
    validation: split.validation,
    promptFormat: stage.prompt_format,
    seed: s.seed,
    trainConfig,
    microBatch,
    effectiveBatch,
    microBatchesPerEpoch,
    totalSteps,
    warmupSteps,
    parallel,
    job,
  };
}

/**
 * DDP or FSDP: launch.parallel when it says which; under auto, DDP when launch.fsdp is "" (no FSDP) or
 * when the memory estimate of DDP fits one GPU, FSDP otherwise.
 */
export function chooseParallel(settings: LaunchConfig, shape: ModelShape, train: TrainConfig, topology: Topology): StagePlan["parallel"] {
  const memory = estimateMemory(shape, {
    batchSize: train.batch_size,
    maxLength: train.max_length,
    worldSize: topology.worldSize,
    bf16: settings.bf16,
    gradientCheckpointing: settings.gradient_checkpointing,
    gpuGiB: settings.gpu_memory_gib,
  });
  const size = `${formatCount(memory.parameters)} parameters${memory.vocabAssumed ? " (vocabulary of 32000 assumed)" : ""}`;
  const need = `~${memory.ddpGiB.toFixed(1)} GiB per GPU under DDP, ~${memory.fsdpGiB.toFixed(1)} under FSDP over ${topology.worldSize}`;
  if (settings.parallel !== "auto")
    return { mode: settings.parallel, reason: `launch.parallel (--parallel) ${settings.parallel}; ${size}, ${need}`, memory };
  if (settings.fsdp.trim() === "") return { mode: "ddp", reason: `launch.fsdp is "" (no FSDP); ${size}, ${need}`, memory };
  return memory.fitsDdp
    ? { mode: "ddp", reason: `the model fits one GPU: ${size}, ${need}, of ${settings.gpu_memory_gib} GiB`, memory }
    : { mode: "fsdp", reason: `the model does not fit one GPU under DDP: ${size}, ${need}, of ${settings.gpu_memory_gib} GiB`, memory };
}

/** The model's shape for the memory estimate: model.from's config.json, else the experiment's preset and fields. */
function modelShape(config: ExperimentConfig, known: Record<string, unknown> | undefined, vocab: number | undefined): ModelShape {
  if (known) return known as unknown as ModelShape;
  const { preset, from: _from, ...fields } = config.model;
  const explicit = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  const merged = { ...(preset ? MODEL_PRESETS[preset] : {}), ...explicit } as Partial<ModelShape>;
  for (const key of ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"] as const) {
    if (merged[key] === undefined) {
      throw new ConfigError("XA_CONFIG_MODEL", `model.${key} is not set`, { field: `model.${key}`, hint: "set it, or use model.preset" });
    }
  }
  return { ...(merged as ModelShape), vocab_size: merged.vocab_size ?? vocab };
}

function checkStage(exp: LoadedExperiment, stage: StageConfig, index: number, maxPositions: number | undefined): void {
  const where = (field: string) => ({ file: exp.file, field: `stages[${index}].${field}` });
  if (stage.objective !== "instruction") {
    throw new ConfigError("XA_LAUNCH_OBJECTIVE", `stage "${stage.name}" is ${stage.objective}; torch-fsdp runs instruction stages`, {
      ...where("objective"),
      hint: "pretrain with the tfjs engine (xalign train) and start from its final/ folder via model.from",
    });
  }
  if (stage.train.lora) {
    throw new ConfigError("XA_LAUNCH_LORA", "LoRA is not supported by the torch-fsdp engine (the study fine-tunes all weights)", {
      ...where("train.lora"),
      hint: "remove train.lora, or train LoRA with the tfjs engine",
    });
  }
  for (const [list, files] of [
    ["data", stage.data],
    ["validation", stage.validation ?? []],
  ] as const) {
    files.forEach((f, j) => {
      const path = resolveFrom(exp, f);
      if (!existsSync(path)) {
        throw new ConfigError("XA_LAUNCH_DATA", `data file ${path} does not exist`, {
          ...where(`${list}[${j}]`),
          hint: "build the mixture first (xalign data build) or fix the path; relative paths start at the experiment file's folder",
        });
      }
    });
  }
  if (maxPositions !== undefined && stage.train.max_length > maxPositions) {
    throw new ConfigError("XA_LAUNCH_LENGTH", `max_length ${stage.train.max_length} exceeds the model's ${maxPositions} positions`, {
      ...where("train.max_length"),
      hint: `use at most ${maxPositions}`,
    });
  }
}

function withModelDir(exp: LoadedExperiment, modelDir: string | undefined): ExperimentConfig {
  const config = exp.config;
  if (modelDir === undefined) return config;
  const dir = resolve(modelDir);
  const sameFolder = config.tokenizer.path !== undefined && config.tokenizer.path === config.model.from;
  return {
    ...config,
    model: { ...config.model, from: dir },
    tokenizer: sameFolder ? { ...config.tokenizer, path: dir } : config.tokenizer,
  };
}

async function tryLoadTokenizer(source: string): Promise<Tokenizer | undefined> {
  if (!existsSync(source)) return undefined;
  return loadTokenizer(source);
}

async function readModelConfig(dir: string): Promise<Record<string, unknown>> {
  const file = join(dir, "config.json");
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError("XA_LAUNCH_MODEL", `cannot read the model's config.json: ${(err as Error).message}`, {
      file,
      hint: "model.from must be a Hugging Face LLaMA folder",
    });
  }
  if (cfg.model_type !== undefined && cfg.model_type !== "llama") {
    throw new ConfigError("XA_LAUNCH_MODEL", `model_type is "${String(cfg.model_type)}", not "llama"`, {
      file,
      hint: "model.from must be a LLaMA checkpoint",
    });
  }
  return cfg;
}
