/**
 * An `engine: torch-fsdp` experiment, resolved into what the PyTorch side
 * runs: per stage, the data split (the same seeded split as the tfjs engine),
 * the Hugging Face TrainingArguments, the step counts the Trainer will use,
 * and the JSON config python/xalign_train.py reads. Planning reads the data
 * but writes nothing; `prepareLaunch` writes what the plan describes.
 *
 * @example
 * const plan = await planLaunch(await loadExperiment("examples/paper-7b.yaml"));
 * plan.stages[0].trainingArguments.gradient_accumulation_steps; // 4
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { type LoadedExperiment, resolveFrom } from "../config/load.js";
import type { ExperimentConfig, LaunchConfig, StageConfig } from "../config/schema.js";
import { type AlpacaRecord, toAlpacaRecord } from "../data/example.js";
import { loadTokenizer, type Tokenizer } from "../tokenizer/index.js";
import { modelConfigFor, trainingTokenizer } from "../train/experiment.js";
import { readInstructionFiles, splitValidation } from "../train/sequences.js";
import { ConfigError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { type LaunchOverrides, resolveLaunchSettings, resolveTopology, type Topology } from "./topology.js";

/** The ids the Python side needs; xalign resolves them so both engines agree. */
export interface TokenizerIds {
  bos_id: number;
  eos_id: number;
  pad_id: number;
}

/** What python/xalign_train.py reads (format "xalign-launch/1"). */
export interface StageLaunchConfig {
  format: "xalign-launch/1";
  experiment: string;
  stage: string;
  model: { from: string } | { config: Record<string, unknown> | null };
  tokenizer: { path: string } & (TokenizerIds | { bos_id: null; eos_id: null; pad_id: null });
  data: {
    train: string;
    validation: string | null;
    prompt_format: StageConfig["prompt_format"];
    max_length: number;
    max_eval_examples: number | null;
  };
  training_arguments: Record<string, unknown>;
  xalign: { final_dir: string; no_decay: string[]; early_stopping_patience: number | null };
}

export interface StagePlan {
  name: string;
  index: number;
  /** runs/<name>/<stage>: checkpoint-N/, metrics.jsonl, job.log, final/. */
  dir: string;
  finalDir: string;
  configFile: string;
  trainFile: string;
  validationFile: string | undefined;
  train: AlpacaRecord[];
  validation: AlpacaRecord[];
  /** batch_size x grad_accum x world size. */
  effectiveBatch: number;
  /** Optimiser steps as the HF Trainer counts them, and the warmup it derives. */
  stepsPerEpoch: number;
  totalSteps: number;
  warmupSteps: number;
  trainingArguments: Record<string, unknown>;
  config: StageLaunchConfig;
}

export interface LaunchPlan {
  experiment: string;
  experimentFile: string;
  runDir: string;
  /** runs/<name>/launch: configs, data, launch.sh, slurm.sbatch. */
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

const SCHEDULES = { constant: "constant_with_warmup", linear: "linear", cosine: "cosine" } as const;

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
  const maxPositions = modelAvailable ? await readMaxPositions(modelFrom as string) : undefined;

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

  const rng = new Rng(config.seed);
  const stages: StagePlan[] = [];
  for (const [index, stage] of config.stages.entries()) {
    checkStage(exp, stage, index, maxPositions ?? (modelConfig?.max_position_embeddings as number | undefined));
    // The tfjs engine's split seed (src/train/experiment.ts), so both engines hold out the same examples.
    const splitSeed = rng.fork(`stage-${index}-${stage.name}`).nextU32();
    const files = stage.data.map((f) => resolveFrom(exp, f));
    const records = (await readInstructionFiles(files)).map(toAlpacaRecord);
    const split = stage.validation
      ? { train: records, validation: (await readInstructionFiles(stage.validation.map((f) => resolveFrom(exp, f)))).map(toAlpacaRecord) }
      : splitValidation(records, stage.validation_ratio, splitSeed);
    const tokenizerSpec = { path: join(runDir, "tokenizer", "tokenizer.json"), ...(ids ?? { bos_id: null, eos_id: null, pad_id: null }) };
    stages.push(
      planStage({
        exp,
        config,
        stage,
        index,
        split,
        settings,
        topology,
        runDir,
        launchDir,
        splitSeed,
        warnings,
        modelFrom,
        modelConfig,
        tokenizerSpec,
      }),
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
  splitSeed: number;
  warnings: string[];
  modelFrom: string | undefined;
  modelConfig: Record<string, unknown> | null;
  tokenizerSpec: StageLaunchConfig["tokenizer"];
}

function planStage(s: StageInputs): StagePlan {
  const { stage, index, split, settings, topology, warnings } = s;
  const t = stage.train;
  const field = `stages[${index}].train`;
  const effectiveBatch = t.batch_size * t.grad_accum * topology.worldSize;
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
  if (n < effectiveBatch) warnings.push(`stage "${stage.name}": ${n} training examples are less than one global batch (${effectiveBatch})`);
  // HF Trainer: a DistributedSampler gives each rank ceil(n / world) examples; an update every grad_accum batches.
  const batchesPerRank = Math.ceil(Math.ceil(n / topology.worldSize) / t.batch_size);
  const stepsPerEpoch = Math.max(1, Math.floor(batchesPerRank / t.grad_accum));
  const totalSteps = t.max_steps ?? Math.ceil((t.epochs ?? 1) * stepsPerEpoch);
  const warmupSteps = t.warmup_steps ?? Math.ceil((t.warmup_ratio ?? 0) * totalSteps);
  if (warmupSteps > totalSteps) {
    throw new ConfigError("XA_LAUNCH_WARMUP", `warmup (${warmupSteps} steps) is longer than training (${totalSteps} steps)`, {
      file: s.exp.file,
      field: `${field}.warmup_steps`,
      hint: "lower warmup_steps or use warmup_ratio",
    });
  }
  const dir = join(s.runDir, stage.name);
  const finalDir = join(dir, "final");
  const trainFile = join(s.launchDir, `${stage.name}.train.json`);
  const hasValidation = split.validation.length > 0;
  const validationFile = hasValidation ? join(s.launchDir, `${stage.name}.validation.json`) : undefined;
  const evaluate = hasValidation && t.eval_every !== undefined;
  const trainingArguments: Record<string, unknown> = {
    output_dir: dir,
    per_device_train_batch_size: t.batch_size,
    per_device_eval_batch_size: t.batch_size,
    gradient_accumulation_steps: t.grad_accum,
    ...(t.max_steps !== undefined ? { max_steps: t.max_steps } : { num_train_epochs: t.epochs }),
    learning_rate: t.lr,
    lr_scheduler_type: SCHEDULES[t.schedule],
    ...(t.warmup_steps !== undefined ? { warmup_steps: t.warmup_steps } : { warmup_ratio: t.warmup_ratio ?? 0 }),
    weight_decay: t.weight_decay,
    adam_beta1: t.beta1,
    adam_beta2: t.beta2,
    adam_epsilon: t.eps,
    // xalign clips only when clip_norm is set; HF's 0 means the same.
    max_grad_norm: t.clip_norm ?? 0,
    logging_steps: t.log_every,
    save_strategy: t.save_every !== undefined ? "steps" : "no",
    ...(t.save_every !== undefined ? { save_steps: t.save_every, save_total_limit: t.keep_last } : {}),
    eval_strategy: evaluate ? "steps" : "no",
    ...(evaluate ? { eval_steps: t.eval_every } : {}),
    bf16: settings.bf16,
    tf32: settings.tf32,
    fsdp: settings.fsdp,
    ...(settings.fsdp ? { fsdp_config: { transformer_layer_cls_to_wrap: [settings.fsdp_wrap] } } : {}),
    gradient_checkpointing: settings.gradient_checkpointing,
    seed: s.config.seed,
    data_seed: s.splitSeed,
    report_to: "none",
    remove_unused_columns: false,
    include_num_input_tokens_seen: true,
    disable_tqdm: true,
    save_safetensors: true,
  };
  // A later stage starts from the previous stage's final folder, as in the tfjs engine.
  const previousFinal = index > 0 ? join(s.runDir, s.config.stages[index - 1]!.name, "final") : undefined;
  const from = previousFinal ?? s.modelFrom;
  const config: StageLaunchConfig = {
    format: "xalign-launch/1",
    experiment: s.config.name,
    stage: stage.name,
    model: from !== undefined ? { from } : { config: s.modelConfig },
    tokenizer: s.tokenizerSpec,
    data: {
      train: trainFile,
      validation: validationFile ?? null,
      prompt_format: stage.prompt_format,
      max_length: t.max_length,
      max_eval_examples: evaluate ? t.eval_batches * t.batch_size * topology.worldSize : null,
    },
    training_arguments: trainingArguments,
    xalign: { final_dir: finalDir, no_decay: t.no_decay, early_stopping_patience: t.early_stopping_patience ?? null },
  };
  return {
    name: stage.name,
    index,
    dir,
    finalDir,
    configFile: join(s.launchDir, `${stage.name}.json`),
    trainFile,
    validationFile,
    train: split.train,
    validation: split.validation,
    effectiveBatch,
    stepsPerEpoch,
    totalSteps,
    warmupSteps,
    trainingArguments,
    config,
  };
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

async function readMaxPositions(dir: string): Promise<number | undefined> {
  const file = join(dir, "config.json");
  let cfg: { model_type?: unknown; max_position_embeddings?: unknown };
  try {
    cfg = JSON.parse(await readFile(file, "utf8")) as typeof cfg;
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
  return typeof cfg.max_position_embeddings === "number" ? cfg.max_position_embeddings : undefined;
}
