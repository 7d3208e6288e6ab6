/**
 * The LLaMA config record: Hugging Face's `LlamaConfig` field names, so a
 * config.json we write is one that `transformers` reads and vice versa.
 *
 * @example
 * import { readConfig, validateConfig } from "xalign/model";
 * const cfg = await readConfig("runs/x-llama-zh/checkpoint");
 * validateConfig({ ...cfg, num_hidden_layers: 4 });
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "../util/errors.js";
import { writeJsonAtomic } from "../util/fs.js";

export interface LlamaConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Equal to num_attention_heads for multi-head, 1 for multi-query, in between for grouped-query attention. */
  num_key_value_heads: number;
  vocab_size: number;
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  /** When true there is no lm_head.weight: the head is model.embed_tokens.weight. */
  tie_word_embeddings: boolean;
  bos_token_id: number;
  eos_token_id: number;
  /** null when the tokenizer has no pad token (LLaMA's has none). */
  pad_token_id: number | null;
  /**
   * Width of the causal depthwise convolution over each layer's normalized
   * attention input ("canon layer", Allen-Zhu, Physics of Language Models 4.1):
   * 0 or absent for LLaMA as published. Not a Hugging Face field: transformers
   * ignores it (and the `self_attn.canon.weight` tensors), so such a checkpoint
   * runs only here and in python/ (see src/model/README.md).
   */
  canon_width?: number;
}

/** Hugging Face's LlamaConfig defaults for the fields a config.json may leave out. */
export const CONFIG_DEFAULTS = {
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 2048,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: null,
} as const satisfies Partial<LlamaConfig>;

const INTEGER_FIELDS = [
  "hidden_size",
  "intermediate_size",
  "num_hidden_layers",
  "num_attention_heads",
  "num_key_value_heads",
  "vocab_size",
  "max_position_embeddings",
] as const;

/** Per-head width: hidden_size / num_attention_heads. */
export function headDim(cfg: LlamaConfig): number {
  return cfg.hidden_size / cfg.num_attention_heads;
}

/** The canon convolution's width (0: none). */
export function canonWidth(cfg: LlamaConfig): number {
  return cfg.canon_width ?? 0;
}

/** Throws a {@link ConfigError} naming the field when `cfg` is not a usable LLaMA config; returns it otherwise. */
export function validateConfig(cfg: LlamaConfig, file?: string): LlamaConfig {
  const fail = (field: string, message: string, hint: string): never => {
    throw new ConfigError("XA_MODEL_CONFIG", message, { ...(file !== undefined ? { file } : {}), field, hint });
  };
  for (const field of INTEGER_FIELDS) {
    const v = cfg[field];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
      fail(field, `${field} must be a positive integer, got ${String(v)}`, "fix the config");
  }
  for (const field of ["rms_norm_eps", "rope_theta"] as const) {
    const v = cfg[field];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0)
      fail(field, `${field} must be a positive number, got ${String(v)}`, "fix the config");
  }
  if (cfg.hidden_size % cfg.num_attention_heads !== 0) {
    fail(
      "num_attention_heads",
      `num_attention_heads (${cfg.num_attention_heads}) does not divide hidden_size (${cfg.hidden_size})`,
      "choose a head count that divides hidden_size",
    );
  }
  if (cfg.num_attention_heads % cfg.num_key_value_heads !== 0) {
    fail(
      "num_key_value_heads",
      `num_key_value_heads (${cfg.num_key_value_heads}) does not divide num_attention_heads (${cfg.num_attention_heads})`,
      "use a divisor of num_attention_heads (1 = multi-query, equal = multi-head)",
    );
  }
  if (cfg.canon_width !== undefined && (!Number.isInteger(cfg.canon_width) || cfg.canon_width < 0 || cfg.canon_width > 16))
    fail("canon_width", `canon_width must be an integer in [0, 16], got ${String(cfg.canon_width)}`, "use 0 (off) or e.g. 4");
  if (headDim(cfg) % 2 !== 0) fail("hidden_size", `head dimension ${headDim(cfg)} must be even for rotary embeddings`, "fix the config");
  if (typeof cfg.tie_word_embeddings !== "boolean")
    fail("tie_word_embeddings", "tie_word_embeddings must be true or false", "fix the config");
  for (const field of ["bos_token_id", "eos_token_id"] as const) {
    const v = cfg[field];
    if (!Number.isInteger(v) || v < 0 || v >= cfg.vocab_size)
      fail(field, `${field} (${String(v)}) must be a token id below vocab_size ${cfg.vocab_size}`, "fix the config");
  }
  if (cfg.pad_token_id !== null && (!Number.isInteger(cfg.pad_token_id) || cfg.pad_token_id < 0 || cfg.pad_token_id >= cfg.vocab_size)) {
    fail(
      "pad_token_id",
      `pad_token_id (${String(cfg.pad_token_id)}) must be null or a token id below vocab_size ${cfg.vocab_size}`,
      "fix the config",
    );
  }
  return cfg;
}

/**
 * A config from a plain object (a parsed config.json): fills Hugging Face's
 * defaults, accepts an eos list (keeps the first), and validates.
 */
export function configFromJson(raw: unknown, file?: string): LlamaConfig {
  const where = file !== undefined ? { file } : {};
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError("XA_MODEL_CONFIG", "a model config must be a JSON object", { ...where, hint: "write config.json as HF does" });
  }
  const o = raw as Record<string, unknown>;
  if (o.model_type !== undefined && o.model_type !== "llama" && o.model_type !== "mistral") {
    throw new ConfigError("XA_MODEL_CONFIG", `model_type "${String(o.model_type)}" is not a LLaMA model`, {
      ...where,
      field: "model_type",
      hint: "only LLaMA-architecture checkpoints are supported",
    });
  }
  if (o.hidden_act !== undefined && o.hidden_act !== "silu") {
    throw new ConfigError("XA_MODEL_CONFIG", `hidden_act "${String(o.hidden_act)}" is not supported (LLaMA uses silu)`, {
      ...where,
      field: "hidden_act",
      hint: "use silu",
    });
  }
  if (o.rope_scaling !== undefined && o.rope_scaling !== null) {
    throw new ConfigError("XA_MODEL_CONFIG", "rope_scaling is not supported", {
      ...where,
      field: "rope_scaling",
      hint: "remove it or use a model without RoPE scaling",
    });
  }
  const num = (k: string): number => o[k] as number;
  const firstId = (v: unknown): unknown => (Array.isArray(v) ? v[0] : v);
  const cfg: LlamaConfig = {
    hidden_size: num("hidden_size"),
    intermediate_size: num("intermediate_size"),
    num_hidden_layers: num("num_hidden_layers"),
    num_attention_heads: num("num_attention_heads"),
    num_key_value_heads: (o.num_key_value_heads ?? o.num_attention_heads) as number,
    vocab_size: num("vocab_size"),
    rms_norm_eps: (o.rms_norm_eps ?? CONFIG_DEFAULTS.rms_norm_eps) as number,
    rope_theta: (o.rope_theta ?? CONFIG_DEFAULTS.rope_theta) as number,
    max_position_embeddings: (o.max_position_embeddings ?? CONFIG_DEFAULTS.max_position_embeddings) as number,
    tie_word_embeddings: (o.tie_word_embeddings ?? CONFIG_DEFAULTS.tie_word_embeddings) as boolean,
    bos_token_id: (firstId(o.bos_token_id) ?? CONFIG_DEFAULTS.bos_token_id) as number,
    eos_token_id: (firstId(o.eos_token_id) ?? CONFIG_DEFAULTS.eos_token_id) as number,
    pad_token_id: (firstId(o.pad_token_id) ?? CONFIG_DEFAULTS.pad_token_id) as number | null,
    ...(o.canon_width !== undefined && o.canon_width !== 0 ? { canon_width: o.canon_width as number } : {}),
  };
  return validateConfig(cfg, file);
}

/** The JSON object written as config.json: HF's fields plus architectures/model_type so transformers recognises it. */
export function configToJson(cfg: LlamaConfig): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_act: "silu",
    ...cfg,
    attention_bias: false,
    mlp_bias: false,
    rope_scaling: null,
    torch_dtype: "float32",
  };
}

/** Reads and validates `dir/config.json`. */
export async function readConfig(dir: string): Promise<LlamaConfig> {
  const file = join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError("XA_MODEL_CONFIG_MISSING", "cannot read config.json", {
      file,
      hint: "a checkpoint folder needs a config.json",
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError("XA_MODEL_CONFIG", `config.json is not valid JSON: ${(err as Error).message}`, {
      file,
      hint: "fix the JSON",
      cause: err,
    });
  }
  return configFromJson(raw, file);
}

/** Validates and writes `dir/config.json` atomically. `torchDtype` records the weights' dtype ("float32" or "bfloat16"). */
export async function writeConfig(dir: string, cfg: LlamaConfig, torchDtype = "float32"): Promise<void> {
  validateConfig(cfg);
  await writeJsonAtomic(join(dir, "config.json"), { ...configToJson(cfg), torch_dtype: torchDtype });
}
