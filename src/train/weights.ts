/**
 * Saving and restoring the trained weights of a stage: the full model as a
 * Hugging Face folder, or only the LoRA adapters in the PEFT layout.
 */
import { mkdir } from "node:fs/promises";
import * as tf from "@tensorflow/tfjs";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.js";
import type { LlamaModel } from "../model/llama.js";
import type { LoraAdapters } from "./lora.js";

/** The saveModel/loadModel pair the trainer calls at each checkpoint and on resume. */
export function modelPersistence(model: LlamaModel, lora?: LoraAdapters, extra?: (dir: string) => Promise<void>) {
  return {
    saveModel: async (dir: string): Promise<void> => {
      await mkdir(dir, { recursive: true });
      if (lora) await lora.save(dir);
      else await saveCheckpoint(model, dir);
      await extra?.(dir);
    },
    loadModel: async (dir: string): Promise<void> => {
      if (lora) {
        await lora.restore(dir);
        return;
      }
      const loaded = await loadCheckpoint(dir, { config: model.config });
      try {
        for (const [name, v] of model.variables) tf.tidy(() => v.assign(loaded.weight(name)));
      } finally {
        loaded.dispose();
      }
    },
  };
}
