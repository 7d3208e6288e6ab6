/**
 * The project's two benchmark models (the foundation issue's tiny and larger
 * LLaMA shapes, with their sequence length and batch), as the trainer and
 * engine benchmarks and the native-kernel parity tests build them, and the
 * seeded batch the engine benchmark and the backend parity tests train on.
 *
 * @example
 * const m = BENCHMARK_MODELS.tiny;
 * const model = LlamaModel.init(benchmarkConfig(m, m.seq), new Rng(7));
 * const { ids, labels } = benchmarkBatch(m, m.batch, 7);
 * const loss = model.loss(ids, labels);
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../util/rng.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "./config.js";

export interface BenchmarkShape {
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  ffn: number;
  seq: number;
  batch: number;
}

export const BENCHMARK_MODELS = {
  tiny: { vocab: 512, dim: 128, layers: 2, heads: 4, ffn: 384, seq: 64, batch: 8 },
  larger: { vocab: 8192, dim: 512, layers: 8, heads: 8, ffn: 1376, seq: 256, batch: 4 },
} as const satisfies Record<string, BenchmarkShape>;

/** A benchmark shape's LlamaConfig: untied head, RMSNorm eps 1e-5, BOS 1 / EOS 2 / PAD 0, positions up to `maxPositions`. */
export function benchmarkConfig(m: Omit<BenchmarkShape, "seq" | "batch">, maxPositions: number): LlamaConfig {
  return {
    ...CONFIG_DEFAULTS,
    hidden_size: m.dim,
    intermediate_size: m.ffn,
    num_hidden_layers: m.layers,
    num_attention_heads: m.heads,
    num_key_value_heads: m.heads,
    vocab_size: m.vocab,
    rms_norm_eps: 1e-5,
    max_position_embeddings: maxPositions,
    pad_token_id: 0,
  } as LlamaConfig;
}

/**
 * A seeded batch of `batch` rows of `m.seq` random token ids below `m.vocab`,
 * with next-token labels; the first quarter of each row's labels is -1 (no
 * loss), as if it were the instruction. The same seed gives the same batch on
 * every backend.
 */
export function benchmarkBatch(
  m: Pick<BenchmarkShape, "vocab" | "seq">,
  batch: number,
  seed: number,
): { ids: tf.Tensor2D; labels: tf.Tensor2D; dispose(): void } {
  const rng = new Rng(seed).fork("benchmark-batch");
  const t = m.seq;
  const ids = new Int32Array(batch * t);
  const labels = new Int32Array(batch * t);
  for (let b = 0; b < batch; b++) {
    const row = Array.from({ length: t + 1 }, () => rng.int(m.vocab));
    for (let i = 0; i < t; i++) {
      ids[b * t + i] = row[i] as number;
      labels[b * t + i] = i < t / 4 ? -1 : (row[i + 1] as number);
    }
  }
  const idTensor = tf.tensor2d(ids, [batch, t], "int32");
  const labelTensor = tf.tensor2d(labels, [batch, t], "int32");
  return { ids: idTensor, labels: labelTensor, dispose: () => tf.dispose([idTensor, labelTensor]) };
}

/**
 * llama2.c's TinyStories-15M shape (dim 288, 6 layers, 6 heads, vocab 32000, tied head): the decode and model
 * benchmarks' peer comparisons (bench/model.ts, bench/decode.ts) use it with random weights.
 */
export const STORIES_15M: LlamaConfig = {
  hidden_size: 288,
  intermediate_size: 768,
  num_hidden_layers: 6,
  num_attention_heads: 6,
  num_key_value_heads: 6,
  vocab_size: 32000,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: null,
};
