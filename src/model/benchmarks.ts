/**
 * The project's two benchmark models (the foundation issue's tiny and larger
 * LLaMA shapes, with their sequence length and batch), as the trainer
 * benchmark and the native-kernel parity tests build them.
 */
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
