/**
 * How the study asks a model for answers: greedy continuations of prompts,
 * batched, each cut at the first newline — on TF.js, or through the torch
 * engine's runner when the study trains there (the same tokens on the same
 * weights, test/train/torch-engine.test.ts).
 *
 * @example
 * const completer = new ModelCompleter(tokenizer, settings, cacheRoot());
 * const answers = await completer.complete(model, ["Who likes"], 24);
 * await completer.release(model);
 */
import { mkdir, rm } from "node:fs/promises";
import { saveCheckpoint } from "../model/checkpoint.js";
import { generate } from "../model/generate.js";
import type { LlamaModel } from "../model/llama.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { trainingTokenizer } from "../train/experiment.js";
import { generateTextsWithTorch, torchEngineWanted } from "../train/torch-engine.js";
import { scratchDir } from "./cache.js";
import type { StudySettings } from "./settings.js";

/**
 * Greedy continuations of text prompts (BOS + prompt), batched, each cut at
 * the first newline: how the study's evaluations and the competence probe ask
 * a model for an answer.
 */
export async function greedyComplete(
  model: LlamaModel,
  tokenizer: Tokenizer,
  prompts: string[],
  options: { maxNewTokens: number; batchSize: number; native?: boolean },
): Promise<string[]> {
  const tok = trainingTokenizer(tokenizer);
  const encoded = (await tokenizer.encodeBatch(prompts, { addBos: false, addEos: false })).map((r) => [tok.bosId, ...r]);
  // Batches of similar lengths (longest first), so little of each batch's prefill is padding; a row's
  // continuation does not depend on its batch (generate's batched rows equal one-at-a-time decoding).
  const order = encoded.map((_, i) => i).sort((a, b) => (encoded[b] as number[]).length - (encoded[a] as number[]).length || a - b);
  const out = new Array<string>(prompts.length);
  for (let i = 0; i < order.length; i += options.batchSize) {
    const rows = order.slice(i, i + options.batchSize);
    const ids = rows.map((r) => encoded[r] as number[]);
    const res = await generate(model, ids, {
      maxNewTokens: options.maxNewTokens,
      tokenizer,
      stopStrings: ["\n"],
      padTokenId: tok.padId,
      ...(options.native === false ? { native: false } : {}),
    });
    rows.forEach((r, k) => {
      out[r] = (res.texts?.[k] ?? "").trim();
    });
  }
  return out;
}

/**
 * Greedy completion on the engine the study trains on. For the torch runner a
 * model's weights are saved once to a folder under the cache's scratch
 * (`cacheDir`), removed by {@link ModelCompleter.release}.
 */
export class ModelCompleter {
  /** Whether generation goes through the torch engine (decided once: "auto" probes for CUDA torch). */
  private torchGeneration: boolean | undefined;
  /** Weights of a tuned model saved for the torch runner, one folder per model, removed with the model. */
  private readonly torchWeights = new WeakMap<LlamaModel, string>();

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly settings: Pick<StudySettings, "engine" | "eval">,
    private readonly cacheDir: string,
  ) {}

  /** Greedy continuations of `prompts`, each cut at the first newline and trimmed. */
  async complete(model: LlamaModel, prompts: string[], maxNewTokens: number): Promise<string[]> {
    this.torchGeneration ??= torchEngineWanted(this.settings.engine);
    if (!this.torchGeneration) {
      return greedyComplete(model, this.tokenizer, prompts, {
        maxNewTokens,
        batchSize: this.settings.eval.batchSize,
        ...(this.settings.eval.native === false ? { native: false } : {}),
      });
    }
    let dir = this.torchWeights.get(model);
    if (!dir) {
      dir = scratchDir(this.cacheDir, "eval-weights");
      await mkdir(dir, { recursive: true });
      await saveCheckpoint(model, dir);
      this.torchWeights.set(model, dir);
    }
    const tok = trainingTokenizer(this.tokenizer);
    const ids = (await this.tokenizer.encodeBatch(prompts, { addBos: false, addEos: false })).map((r) => [tok.bosId, ...r]);
    const { texts } = await generateTextsWithTorch(dir, ids, this.tokenizer, {
      maxNewTokens,
      eosTokenId: tok.eosId,
      stopStrings: ["\n"],
    });
    return texts.map((t) => t.trim());
  }

  /** Frees a model and the weights folder the torch runner read it from, if any. */
  async release(model: LlamaModel): Promise<void> {
    model.dispose();
    const dir = this.torchWeights.get(model);
    if (dir) {
      this.torchWeights.delete(model);
      await rm(dir, { recursive: true, force: true });
    }
  }
}
