/**
 * The study's base model: its LLaMA config (the study's sizes on the study
 * tokenizer) and its pretraining on the world's imbalanced corpus, cached per
 * tokenizer, model, pretraining settings and seed.
 *
 * @example
 * const baseDir = await prepareBase(settings, world, tok, cacheRoot());
 * const model = await loadCheckpoint(baseDir);
 */
import { join } from "node:path";
import { TrainSchema } from "../config/schema.js";
import { saveCheckpoint } from "../model/checkpoint.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../model/config.js";
import { LlamaModel } from "../model/llama.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { documentBatches, packedBatches } from "../train/batches.js";
import { trainingTokenizer } from "../train/experiment.js";
import { readTextLines, tokenDocuments, tokenStream } from "../train/sequences.js";
import { trainOn } from "../train/torch-engine.js";
import { modelPersistence } from "../train/weights.js";
import { Rng } from "../util/rng.js";
import { cached } from "./cache.js";
import type { StudySettings } from "./settings.js";
import type { PreparedTokenizer } from "./tokenizer.js";
import type { PreparedWorld } from "./world.js";

/** Pretrains the base model of `settings` in the cache under `cacheDir`, or finds it there; returns its folder. */
export function prepareBase(
  settings: StudySettings,
  world: PreparedWorld,
  tok: PreparedTokenizer,
  cacheDir: string,
  onStatus?: (message: string) => void,
): Promise<string> {
  const baseConfig = {
    tokenizer: tok.key,
    model: settings.model,
    pretrain: settings.pretrain,
    seed: settings.seed,
  };
  return cached(cacheDir, "base", baseConfig, (dir) => pretrainBase(settings, world.dir, tok.tokenizer, dir), onStatus);
}

/** The base model's LLaMA config: the study's sizes, tied embeddings, the tokenizer's vocabulary and special ids. */
export function baseModelConfig(model: StudySettings["model"], tokenizer: Tokenizer): LlamaConfig {
  const tok = trainingTokenizer(tokenizer);
  return {
    ...CONFIG_DEFAULTS,
    ...model,
    num_key_value_heads: model.num_attention_heads,
    vocab_size: tokenizer.vocabSize,
    tie_word_embeddings: true,
    bos_token_id: tok.bosId,
    eos_token_id: tok.eosId,
    pad_token_id: tok.padId,
  } as LlamaConfig;
}

/** Pretrains the base model on the world's imbalanced corpus and saves it (HF layout + tokenizer + metrics). */
async function pretrainBase(settings: StudySettings, worldDir: string, tokenizer: Tokenizer, dir: string): Promise<void> {
  const tok = trainingTokenizer(tokenizer);
  const p = settings.pretrain;
  const model = LlamaModel.init(baseModelConfig(settings.model, tokenizer), new Rng(settings.seed).fork("base-init"));
  try {
    const lines = await readTextLines([join(worldDir, "pretrain", "corpus.txt")]);
    const shape = { maxLength: p.maxLength, batchSize: p.batchSize, seed: settings.seed };
    await trainOn(settings.engine ?? "tfjs", {
      model,
      params: model.variables,
      train:
        p.packing === "documents" || p.packing === "isolated"
          ? documentBatches(await tokenDocuments(lines, tok), { ...shape, padId: tok.padId, isolate: p.packing === "isolated" })
          : packedBatches(await tokenStream(lines, tok), shape),
      config: TrainSchema.parse({
        max_steps: p.steps,
        batch_size: p.batchSize,
        max_length: p.maxLength,
        lr: p.lr,
        warmup_steps: p.warmupSteps,
        schedule: "cosine",
        weight_decay: 0.01,
        clip_norm: 1,
        keep_last: 1,
      }),
      seed: settings.seed,
      outDir: join(dir, "pretrain"),
      ...modelPersistence(model),
      label: "pretrain base",
    });
    await saveCheckpoint(model, dir);
    await tokenizer.save(dir);
  } finally {
    model.dispose();
  }
}
