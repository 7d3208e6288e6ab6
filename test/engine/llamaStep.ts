/**
 * A plain LLaMA training step for the engine tests: LlamaModel's loss, every
 * gradient from tf.variableGrads, one AdamW update (src/train/adamw.ts, no
 * weight decay, no clipping), on a seeded benchmark batch.
 */
import { tf } from "../../src/engine/index.js";
import { benchmarkBatch, benchmarkConfig } from "../../src/model/benchmarks.js";
import { LlamaModel } from "../../src/model/llama.js";
import { AdamW } from "../../src/train/adamw.js";
import { Rng } from "../../src/util/rng.js";

/** A model small enough for a test on the slow cpu backend (vocab 64, hidden 32, 2 layers, 2 heads, SwiGLU 96, seq 16, batch 2). */
export const TEST_MODEL = { vocab: 64, dim: 32, layers: 2, heads: 2, ffn: 96, seq: 16, batch: 2 } as const;

export interface LlamaStepper {
  model: LlamaModel;
  /** One AdamW step (lr 1e-3) on the batch; returns the loss before the update. */
  step(): Promise<number>;
  dispose(): void;
}

/** A seeded model and batch of `shape` (the same weights and tokens on every backend). */
export function llamaStepper(
  shape: { vocab: number; dim: number; layers: number; heads: number; ffn: number; seq: number; batch: number },
  seed: number,
): LlamaStepper {
  const model = LlamaModel.init(benchmarkConfig(shape, shape.seq), new Rng(seed));
  const batch = benchmarkBatch(shape, shape.batch, seed);
  const optimizer = new AdamW();
  const byVariable = new Map<string, string>();
  for (const [name, v] of model.variables) byVariable.set(v.name, name);
  const vars = model.trainableVariables();
  return {
    model,
    async step(): Promise<number> {
      const { value, grads } = tf.variableGrads(() => model.loss(batch.ids, batch.labels), vars);
      const named: Record<string, tf.Tensor> = {};
      for (const [name, g] of Object.entries(grads)) named[byVariable.get(name) ?? name] = g;
      optimizer.apply(model.variables, named, 1e-3);
      const loss = (await value.data())[0] as number;
      tf.dispose([value, ...Object.values(grads)]);
      return loss;
    },
    dispose(): void {
      optimizer.dispose();
      model.dispose();
      batch.dispose();
    },
  };
}
