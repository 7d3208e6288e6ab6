/**
 * Named presets. `paper` holds the study's fine-tuning recipe (Zhu et al. 2023,
 * x-LLaMA: lr 2e-5, 3 epochs, cosine, warmup ratio 0.03, weight decay 0,
 * effective batch 128 = 4 per device x 4 accumulation x 8 GPUs, max length 512);
 * `tiny-cpu` and `small-gpu` are sized for a 2-core CPU and a single GPU.
 */
import type { ModelSpec, TrainConfig } from "./schema.js";

export interface ModelPreset {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  vocab_size?: number;
}

export const MODEL_PRESETS: Record<NonNullable<ModelSpec["preset"]>, ModelPreset> = {
  // ~1-3M parameters with a vocabulary of a few thousand tokens: minutes on 2 CPU cores.
  "tiny-cpu": {
    hidden_size: 128,
    intermediate_size: 352,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: true,
  },
  "small-gpu": {
    hidden_size: 512,
    intermediate_size: 1376,
    num_hidden_layers: 8,
    num_attention_heads: 8,
    num_key_value_heads: 8,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
  },
  // LLaMA-7B as released (Touvron et al. 2023; HF config of llama-7b).
  "llama-7b": {
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    tie_word_embeddings: false,
    vocab_size: 32000,
  },
};

export type TrainPresetName = "paper" | "tiny-cpu" | "small-gpu";

/** Training settings by preset, before the user's own keys are applied. */
export const TRAIN_PRESETS: Record<TrainPresetName, Partial<TrainConfig> & { gpus?: number; bf16?: boolean }> = {
  paper: {
    epochs: 3,
    batch_size: 4,
    grad_accum: 4,
    gpus: 8,
    bf16: true,
    max_length: 512,
    lr: 2e-5,
    schedule: "cosine",
    warmup_ratio: 0.03,
    weight_decay: 0,
    // Not set by the study's script, so Hugging Face Trainer's default max_grad_norm (1.0) applied.
    clip_norm: 1,
  },
  "tiny-cpu": {
    batch_size: 16,
    grad_accum: 1,
    max_length: 128,
    lr: 3e-3,
    schedule: "cosine",
    warmup_ratio: 0.05,
    weight_decay: 0.01,
    clip_norm: 1,
  },
  "small-gpu": {
    batch_size: 32,
    grad_accum: 1,
    max_length: 512,
    lr: 6e-4,
    schedule: "cosine",
    warmup_ratio: 0.03,
    weight_decay: 0.1,
    clip_norm: 1,
  },
};
