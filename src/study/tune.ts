/**
 * Instruction tuning of a study model: encodes instruction examples with the
 * study tokenizer and trains (TF.js or the torch engine) with the study's
 * tuning settings, writing metrics (and optionally checkpoints) to a folder
 * the caller names.
 *
 * @example
 * const tuned = await tuneModel(await loadCheckpoint(baseDir), tokenizer, settings, examples, { seed: 0, label: "alpaca", outDir });
 */

import { TrainSchema } from "../config/schema.js";
import type { InstructionExample } from "../data/example.js";
import type { LlamaModel } from "../model/llama.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { bucketedBatches } from "../train/batches.js";
import { trainingTokenizer } from "../train/experiment.js";
import { encodeExamples } from "../train/sequences.js";
import { trainOn } from "../train/torch-engine.js";
import type { TrainResult } from "../train/trainer.js";
import { modelPersistence } from "../train/weights.js";
import { Rng } from "../util/rng.js";
import type { StudySettings } from "./settings.js";

export interface TuneOptions {
  seed: number;
  label: string;
  /** Folder for checkpoints and metrics (default: a folder under the cache's scratch). */
  outDir?: string;
  /** Override the settings' epochs. */
  epochs?: number;
  /** Fixed number of optimiser steps instead of epochs. */
  maxSteps?: number;
  progress?: boolean;
  /** Keep checkpoints of the run (default false: metrics.jsonl only). */
  checkpoints?: boolean;
}

export interface Tuned {
  model: LlamaModel;
  result: TrainResult;
  examples: number;
}

/** Instruction-tunes `model` (trained in place) on `examples`; metrics go to `options.outDir`. */
export async function tuneModel(
  model: LlamaModel,
  tokenizer: Tokenizer,
  settings: Pick<StudySettings, "tune" | "engine">,
  examples: readonly InstructionExample[],
  options: TuneOptions & { outDir: string },
): Promise<Tuned> {
  const s = settings.tune;
  const tok = trainingTokenizer(tokenizer);
  const seqs = await encodeExamples(examples, tok, { maxLength: s.maxLength });
  const rng = new Rng(options.seed);
  const config = TrainSchema.parse({
    ...(options.maxSteps !== undefined ? { max_steps: options.maxSteps } : { epochs: options.epochs ?? s.epochs }),
    batch_size: s.batchSize,
    max_length: s.maxLength,
    lr: s.lr,
    warmup_ratio: s.warmupRatio,
    schedule: "cosine",
    weight_decay: 0,
    clip_norm: 1,
    keep_last: 1,
  });
  const result = await trainOn(settings.engine ?? "tfjs", {
    model,
    params: model.variables,
    train: bucketedBatches(seqs, { batchSize: s.batchSize, seed: rng.nextU32(), padId: tok.padId }),
    config,
    seed: options.seed,
    outDir: options.outDir,
    ...modelPersistence(model),
    label: options.label,
    progress: options.progress ?? true,
    checkpoints: options.checkpoints ?? false,
  });
  return { model, result, examples: seqs.length };
}
