// The small model and token stream the trainer tests (and their kill-during-save child) train on.
import type { LlamaConfig } from "../../src/model/config.js";

export const TINY_CONFIG = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 50,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
} as LlamaConfig;

/** A deterministic stream with some structure to learn. */
export const TINY_TOKENS: number[] = Array.from({ length: 2000 }, (_, i) => (i * 7 + Math.floor(i / 13)) % 50);
