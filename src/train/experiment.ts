/**
 * An experiment file, run: tokenizer -> model -> training stages (e.g.
 * pretraining then instruction tuning), each leaving a Hugging Face folder
 * (weights + tokenizer) under <output>/<name>/<stage>/final, checkpoints,
 * metrics.jsonl, and one manifest.json for the run. A stage whose final
 * folder exists is loaded rather than trained again (delete it or pass
 * `force` to retrain); `resume` continues an unfinished stage from its
 * newest checkpoint.
 *
 * @example
 * const run = await runExperiment(await loadExperiment("examples/tiny.yaml"));
 * run.stages.at(-1)?.result.finalLoss;
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { experimentDataHashes, type LoadedExperiment, resolveFrom } from "../config/load.js";
import { MODEL_PRESETS } from "../config/presets.js";
import { type ExperimentConfig, type StageConfig, TorchEngineSchema } from "../config/schema.js";
import { renderPrompt } from "../data/prompt.js";
import { type EngineInfo, initEngine } from "../engine/index.js";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../model/config.js";
import { LlamaModel } from "../model/llama.js";
import { JUPYTER_DISPLAY, type MimeBundle } from "../notebook/index.js";
import { buildSynthWorld } from "../synth/index.js";
import { loadTokenizer, type Tokenizer, trainBpeTokenizer } from "../tokenizer/index.js";
import { ConfigError, systemError, TokenizerError } from "../util/errors.js";
import { sha256, stableStringify, writeJsonAtomic } from "../util/fs.js";
import { Rng } from "../util/rng.js";
import { claimRunDir, isRunDir, removeStageForForce } from "../util/run-dir.js";
import { VERSION } from "../version.js";
import { type BatchSource, bucketedBatches, packedBatches } from "./batches.js";
import { LoraAdapters } from "./lora.js";
import { type BatchTokenizer, encodeExamples, readInstructionFiles, readTextLines, splitValidation, tokenStream } from "./sequences.js";
import { trainWithTorch } from "./torch-engine.js";
import { type TrainResult, train } from "./trainer.js";
import { modelPersistence } from "./weights.js";

export interface RunOptions {
  /** Overrides the experiment's backend. */
  backend?: ExperimentConfig["backend"];
  /** Continue unfinished stages from their newest checkpoint. */
  resume?: boolean;
  /** Retrain stages whose final folder exists. */
  force?: boolean;
  signal?: AbortSignal;
  progress?: boolean;
}

export interface StageRun {
  name: string;
  objective: StageConfig["objective"];
  /** Undefined when the stage was loaded from its final folder. */
  result: TrainResult | undefined;
  finalDir: string;
  trainSequences: number;
  validationSequences: number;
  seconds: number;
}

/** A finished (or interrupted) experiment; shows itself as a table in a notebook. */
export class ExperimentRun {
  constructor(
    readonly name: string,
    readonly dir: string,
    readonly engine: EngineInfo,
    readonly tokenizer: Tokenizer,
    readonly model: LlamaModel,
    readonly stages: StageRun[],
    readonly manifestPath: string,
  ) {}

  /** Whether a stage stopped on an interrupt. */
  get interrupted(): boolean {
    return this.stages.some((s) => s.result?.interrupted);
  }

  rows(): Record<string, string | number>[] {
    return this.stages.map((s) => ({
      stage: s.name,
      objective: s.objective,
      steps: s.result ? s.result.steps : "cached",
      final_loss: s.result ? Number(s.result.finalLoss.toFixed(4)) : "",
      best_val_loss: s.result?.bestValidationLoss !== undefined ? Number(s.result.bestValidationLoss.toFixed(4)) : "",
      train_seqs: s.trainSequences,
      val_seqs: s.validationSequences,
      seconds: Number(s.seconds.toFixed(1)),
    }));
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    const rows = this.rows();
    const cols = Object.keys(rows[0] ?? {});
    const esc = (v: unknown) => String(v).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c] ?? c);
    const html = `<p><b>${esc(this.name)}</b> on ${esc(this.engine.backend)} (${this.model.numParameters().toLocaleString("en")} parameters) — ${esc(this.dir)}</p><table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(r[c])}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
    const text = [
      `${this.name} (${this.engine.backend}, ${this.model.numParameters()} parameters)`,
      ...rows.map((r) => cols.map((c) => `${c}=${r[c]}`).join(" ")),
    ].join("\n");
    return { "text/plain": text, "text/html": html };
  }
}

/** The LLaMA config of an experiment: preset, then explicit fields, vocabulary and special ids from the tokenizer. */
export function modelConfigFor(config: ExperimentConfig, tokenizer: Tokenizer): LlamaConfig {
  const { preset, from: _from, ...fields } = config.model;
  const base = preset ? MODEL_PRESETS[preset] : {};
  const explicit = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  const ids = trainingTokenizer(tokenizer);
  const merged: Record<string, unknown> = {
    ...CONFIG_DEFAULTS,
    ...base,
    ...explicit,
    vocab_size: fields.vocab_size ?? tokenizer.vocabSize,
    bos_token_id: ids.bosId,
    eos_token_id: ids.eosId,
    pad_token_id: ids.padId,
  };
  for (const key of ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"] as const) {
    if (!(key in merged))
      throw new ConfigError("XA_CONFIG_MODEL", `model.${key} is not set`, { field: `model.${key}`, hint: "set it, or use model.preset" });
  }
  if (!("num_key_value_heads" in explicit) && !("num_key_value_heads" in base)) merged.num_key_value_heads = merged.num_attention_heads;
  return merged as unknown as LlamaConfig;
}

/**
 * The experiment's tokenizer: loaded from `tokenizer.path`, or trained on
 * `tokenizer.train_on` plus the rendered prompts of (up to 500 records of)
 * each instruction stage's data, so the words of the prompt template are in
 * the vocabulary as they are in a real LLaMA's.
 */
async function prepareTokenizer(exp: LoadedExperiment, runDir: string): Promise<Tokenizer> {
  const t = exp.config.tokenizer;
  if (t.path) return loadTokenizer(resolveFrom(exp, t.path));
  const dir = join(runDir, "tokenizer");
  if (existsSync(join(dir, "tokenizer.json"))) return loadTokenizer(dir);
  const files = (t.train_on ?? []).map((f) => resolveFrom(exp, f));
  const texts: string[] = [];
  for (const stage of exp.config.stages.filter((s) => s.objective === "instruction")) {
    const records = await readInstructionFiles(stage.data.map((f) => resolveFrom(exp, f)));
    for (const r of records.slice(0, 500)) {
      const rendered = renderPrompt(r, stage.prompt_format);
      texts.push(rendered.prompt, rendered.response);
    }
  }
  const tokenizer = await trainBpeTokenizer({ files, texts }, { vocabSize: t.vocab_size });
  await tokenizer.save(dir);
  return tokenizer;
}

/** The tokenizer with the ids training needs (BOS, EOS; PAD falls back to EOS), or a clear error. */
export function trainingTokenizer(tokenizer: Tokenizer): BatchTokenizer & { padId: number } {
  const { bosId, eosId } = tokenizer;
  if (bosId === undefined || eosId === undefined) {
    throw new TokenizerError(
      "XA_TOKENIZER_SPECIALS",
      `the tokenizer has no ${bosId === undefined ? "BOS" : "EOS"} token, which training sequences need`,
      {
        hint: "set bos_token/eos_token in tokenizer_config.json",
      },
    );
  }
  return { encodeBatch: (texts, opts) => tokenizer.encodeBatch(texts, opts), bosId, eosId, padId: tokenizer.padId ?? eosId };
}

async function stageData(
  exp: LoadedExperiment,
  stage: StageConfig,
  tok: Tokenizer,
  seed: number,
): Promise<{ train: BatchSource; validation: BatchSource | undefined; trainCount: number; validationCount: number }> {
  const files = stage.data.map((f) => resolveFrom(exp, f));
  const valFiles = stage.validation?.map((f) => resolveFrom(exp, f));
  const t = stage.train;
  const tokenizer = trainingTokenizer(tok);
  if (stage.objective === "causal-lm") {
    const lines = await readTextLines(files);
    const split = valFiles
      ? { train: lines, validation: await readTextLines(valFiles) }
      : splitValidation(lines, stage.validation_ratio, seed);
    const trainTokens = await tokenStream(split.train, tokenizer);
    const valTokens = split.validation.length > 0 ? await tokenStream(split.validation, tokenizer) : undefined;
    return {
      train: packedBatches(trainTokens, { maxLength: t.max_length, batchSize: t.batch_size, seed }),
      validation:
        valTokens && valTokens.length > t.max_length * t.batch_size
          ? packedBatches(valTokens, { maxLength: t.max_length, batchSize: t.batch_size, seed })
          : undefined,
      trainCount: split.train.length,
      validationCount: split.validation.length,
    };
  }
  const records = await readInstructionFiles(files);
  const split = valFiles
    ? { train: records, validation: await readInstructionFiles(valFiles) }
    : splitValidation(records, stage.validation_ratio, seed);
  const padId = tokenizer.padId;
  const encode = (r: typeof records) => encodeExamples(r, tokenizer, { maxLength: t.max_length, format: stage.prompt_format });
  const trainSeqs = await encode(split.train);
  const valSeqs = split.validation.length > 0 ? await encode(split.validation) : [];
  return {
    train: bucketedBatches(trainSeqs, { batchSize: t.batch_size, seed, padId }),
    validation:
      valSeqs.length > 0
        ? bucketedBatches(valSeqs, { batchSize: Math.min(t.batch_size, valSeqs.length), seed, padId, dropLast: false })
        : undefined,
    trainCount: trainSeqs.length,
    validationCount: valSeqs.length,
  };
}

/**
 * Runs every stage of an experiment and writes its manifest. File-system
 * failures (disk full, a file where the output folder should be) are
 * FileSystemErrors naming the path and what to do.
 */
export async function runExperiment(exp: LoadedExperiment, options: RunOptions = {}): Promise<ExperimentRun> {
  try {
    return await runStages(exp, options);
  } catch (err) {
    throw systemError(err) ?? err;
  }
}

async function runStages(exp: LoadedExperiment, options: RunOptions): Promise<ExperimentRun> {
  const config = exp.config;
  if (config.engine === "torch-fsdp") {
    throw new ConfigError("XA_CONFIG_ENGINE", `this experiment runs on engine "${config.engine}", not on TensorFlow.js`, {
      file: exp.file,
      field: "engine",
      hint: "launch it with `xalign launch` (or launch() from xalign's launch module), or set engine: tfjs",
    });
  }
  const started = Date.now();
  const engine = await initEngine({ backend: options.backend ?? config.backend });
  const runDir = resolveFrom(exp, join(config.output, config.name));
  await claimRunDir(runDir);
  if (options.force) {
    // Refuse before any work when --force would delete folders this tool did not create.
    for (const stage of config.stages)
      if (existsSync(join(runDir, stage.name)) && !isRunDir(runDir)) await removeStageForForce(runDir, join(runDir, stage.name), exp.file);
  }
  if (config.synth) {
    const out = resolveFrom(exp, config.synth.out);
    if (!existsSync(join(out, "manifest.json"))) {
      await buildSynthWorld(out, {
        preset: config.synth.preset,
        seed: config.synth.seed,
        ...(config.synth.sizes ? { sizes: config.synth.sizes } : {}),
      });
    }
  }
  const tokenizer = await prepareTokenizer(exp, runDir);
  const rng = new Rng(config.seed);
  let model = config.model.from
    ? await loadCheckpoint(resolveFrom(exp, config.model.from))
    : LlamaModel.init(modelConfigFor(config, tokenizer), rng.fork("model-init"));
  const stages: StageRun[] = [];
  const saveTokenizer = (dir: string) => tokenizer.save(dir);
  try {
    for (const [i, stage] of config.stages.entries()) {
      const stageStart = Date.now();
      const stageDir = join(runDir, stage.name);
      const finalDir = join(stageDir, "final");
      if (options.force) await removeStageForForce(runDir, stageDir, exp.file);
      if (existsSync(join(finalDir, "config.json"))) {
        model.dispose();
        model = await loadCheckpoint(finalDir);
        stages.push({
          name: stage.name,
          objective: stage.objective,
          result: undefined,
          finalDir,
          trainSequences: 0,
          validationSequences: 0,
          seconds: (Date.now() - stageStart) / 1000,
        });
        continue;
      }
      const seed = rng.fork(`stage-${i}-${stage.name}`).nextU32();
      const data = await stageData(exp, stage, tokenizer, seed);
      const lora = stage.train.lora ? LoraAdapters.attach(model, stage.train.lora, rng.fork(`lora-${stage.name}`)) : undefined;
      const persistence = modelPersistence(model, lora, saveTokenizer);
      const torch = config.engine === "torch" ? (config.torch ?? TorchEngineSchema.parse({})) : undefined;
      const result = torch
        ? await trainWithTorch({
            model,
            train: data.train,
            ...(data.validation ? { validation: data.validation } : {}),
            config: stage.train,
            seed,
            outDir: stageDir,
            label: `${config.name}/${stage.name} (torch)`,
            resume: options.resume ?? false,
            device: torch.device,
            precision: torch.precision,
            tf32: torch.tf32,
            nproc: torch.nproc,
            ...(torch.python ? { python: torch.python } : {}),
            ...(torch.threads ? { threads: torch.threads } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
            ...(options.progress !== undefined ? { progress: options.progress } : {}),
          })
        : await train({
            model,
            params: lora ? lora.params : model.variables,
            train: data.train,
            ...(data.validation ? { validation: data.validation } : {}),
            config: stage.train,
            seed,
            outDir: stageDir,
            ...persistence,
            label: `${config.name}/${stage.name}`,
            resume: options.resume ?? false,
            ...(lora ? { beforeStep: (s: number) => lora.beginStep(s) } : {}),
            ...(options.signal ? { signal: options.signal } : {}),
            ...(options.progress !== undefined ? { progress: options.progress } : {}),
          });
      if (lora) {
        await lora.save(join(stageDir, "adapter"), "base");
        lora.merge();
      }
      stages.push({
        name: stage.name,
        objective: stage.objective,
        result,
        finalDir,
        trainSequences: data.trainCount,
        validationSequences: data.validationCount,
        seconds: (Date.now() - stageStart) / 1000,
      });
      if (result.interrupted) break;
      await mkdir(finalDir, { recursive: true });
      await saveCheckpoint(model, finalDir);
      await tokenizer.save(finalDir);
    }
  } catch (err) {
    model.dispose();
    throw err;
  }
  const manifestPath = join(runDir, "manifest.json");
  await writeJsonAtomic(manifestPath, await manifest(exp, engine, model, stages, (Date.now() - started) / 1000));
  return new ExperimentRun(config.name, runDir, engine, tokenizer, model, stages, manifestPath);
}

async function manifest(
  exp: LoadedExperiment,
  engine: EngineInfo,
  model: LlamaModel,
  stages: StageRun[],
  seconds: number,
): Promise<Record<string, unknown>> {
  const hashes = await experimentDataHashes(exp);
  return {
    format: "xalign-run/1",
    name: exp.config.name,
    experiment_file: exp.file,
    config: exp.config,
    config_hash: sha256(stableStringify(exp.config)),
    data_sha256: hashes,
    // Each data file as written in the experiment and the absolute path read (which may lie outside its folder).
    data_paths: Object.fromEntries(Object.keys(hashes).map((f) => [f, resolveFrom(exp, f)])),
    versions: { xalign: VERSION, tfjs: tf.version.tfjs, node: process.version },
    backend: engine.backend,
    device: engine.device,
    backend_reason: engine.reason,
    parameters: model.numParameters(),
    seconds,
    stages: stages.map((s) => ({
      name: s.name,
      objective: s.objective,
      cached: s.result === undefined,
      steps: s.result?.steps,
      final_loss: s.result?.finalLoss,
      best_validation_loss: s.result?.bestValidationLoss,
      validation: s.result?.validation,
      interrupted: s.result?.interrupted,
      // engine: torch records where the stage trained (python, torch version, device, processes).
      ...(s.result && "engine" in s.result ? { torch_engine: (s.result as { engine: unknown }).engine } : {}),
      train_sequences: s.trainSequences,
      validation_sequences: s.validationSequences,
      seconds: s.seconds,
    })),
  };
}
