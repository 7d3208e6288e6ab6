/**
 * The experiment file: one YAML document describing data, model, training
 * stages and evaluation. Unknown keys, wrong types and impossible values are
 * ConfigErrors naming the field (e.g. `stages[1].train.batch_size`).
 */
import { z } from "zod";
import { SAFE_NAME, SAFE_NAME_RULE } from "../util/run-dir.js";

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const probability = z.number().min(0).max(1);

export const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

export const LoraSchema = z.strictObject({
  rank: positiveInt.default(8),
  alpha: z.number().positive().default(16),
  dropout: z.number().min(0).lt(1).default(0),
  targets: z
    .array(z.enum(LORA_TARGETS, { message: `a LoRA target must be one of ${LORA_TARGETS.join(", ")}` }))
    .min(1)
    .default(["q_proj", "v_proj"]),
});

/** HF LlamaConfig fields; vocab_size may be omitted to take the tokenizer's. */
export const ModelSchema = z.strictObject({
  preset: z.enum(["tiny-cpu", "small-gpu", "llama-7b"]).optional(),
  /** A Hugging Face checkpoint folder to start from. */
  from: z.string().optional(),
  hidden_size: positiveInt.optional(),
  intermediate_size: positiveInt.optional(),
  num_hidden_layers: positiveInt.optional(),
  num_attention_heads: positiveInt.optional(),
  num_key_value_heads: positiveInt.optional(),
  vocab_size: positiveInt.optional(),
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  max_position_embeddings: positiveInt.optional(),
  tie_word_embeddings: z.boolean().optional(),
});

export const TrainSchema = z
  .strictObject({
    epochs: z.number().positive().optional(),
    max_steps: positiveInt.optional(),
    batch_size: positiveInt.default(8),
    grad_accum: positiveInt.default(1),
    /** Sequence length for packed pretraining; maximum length for instructions. */
    max_length: positiveInt.default(128),
    lr: z.number().positive().default(1e-3),
    schedule: z.enum(["constant", "linear", "cosine"]).default("cosine"),
    warmup_steps: nonNegativeInt.optional(),
    warmup_ratio: probability.optional(),
    weight_decay: z.number().min(0).default(0),
    /** Regular expressions of parameter names without weight decay. */
    no_decay: z.array(z.string()).default(["norm", "bias", "embed_tokens"]),
    beta1: probability.default(0.9),
    beta2: probability.default(0.999),
    eps: z.number().positive().default(1e-8),
    clip_norm: z.number().positive().optional(),
    eval_every: positiveInt.optional(),
    eval_batches: positiveInt.default(8),
    early_stopping_patience: positiveInt.optional(),
    save_every: positiveInt.optional(),
    keep_last: positiveInt.default(2),
    log_every: positiveInt.default(1),
    /** Stop (as on a NaN loss) when a step's loss exceeds this. */
    max_loss: z.number().positive().optional(),
    /**
     * Stop when the smoothed loss (EMA, 0.9) exceeds this many times the
     * run's first loss (taken as at least 1). Default 10; 0 turns it off.
     */
    divergence_factor: z.number().min(0).optional(),
    lora: LoraSchema.optional(),
  })
  .superRefine((t, ctx) => {
    if (t.epochs === undefined && t.max_steps === undefined) {
      ctx.addIssue({ code: "custom", message: "set epochs or max_steps", path: ["epochs"] });
    }
    if (t.warmup_steps !== undefined && t.warmup_ratio !== undefined) {
      ctx.addIssue({ code: "custom", message: "set warmup_steps or warmup_ratio, not both", path: ["warmup_steps"] });
    }
    if (t.warmup_steps !== undefined && t.max_steps !== undefined && t.warmup_steps > t.max_steps) {
      ctx.addIssue({
        code: "custom",
        message: `warmup (${t.warmup_steps} steps) is longer than training (${t.max_steps} steps)`,
        path: ["warmup_steps"],
      });
    }
  });

export const StageSchema = z.strictObject({
  name: z.string().regex(SAFE_NAME, `a stage name uses ${SAFE_NAME_RULE}`),
  objective: z.enum(["causal-lm", "instruction"]).default("instruction"),
  /** Data files: plain text for causal-lm; Alpaca JSON / JSONL for instruction. */
  data: z.array(z.string()).min(1),
  /** Validation files (same format); else `validation_ratio` of data is held out. */
  validation: z.array(z.string()).optional(),
  validation_ratio: z.number().min(0).lt(1).default(0.05),
  prompt_format: z.enum(["alpaca", "chat"]).default("alpaca"),
  train: TrainSchema,
});

export const TokenizerSchema = z.strictObject({
  /** A tokenizer.json / tokenizer.model file or a folder holding one. */
  path: z.string().optional(),
  /** Train a byte-fallback BPE tokenizer on these files. */
  train_on: z.array(z.string()).optional(),
  vocab_size: positiveInt.default(2048),
});

/**
 * How `engine: torch-fsdp` runs (src/launch: python/xalign_torch.py under torchrun): the topology,
 * precision, DDP or FSDP and an optional Slurm header. Ignored by the tfjs engine.
 */
export const LaunchSchema = z.strictObject({
  nodes: positiveInt.default(1),
  gpus_per_node: positiveInt.default(1),
  /** host:port of the rendezvous (node 0) for multi-node runs. */
  rdzv_endpoint: z.string().optional(),
  /** This machine's rank among the nodes (multi-node runs started by hand). */
  node_rank: nonNegativeInt.optional(),
  /** When set, batch_size x grad_accum x nodes x gpus_per_node must equal it (the study: 128). */
  effective_batch: positiveInt.optional(),
  bf16: z.boolean().default(true),
  tf32: z.boolean().default(false),
  /**
   * DDP (each GPU holds the whole model) or FSDP (weights, gradients and AdamW moments sharded over the GPUs);
   * auto: DDP when the plan's memory estimate fits one GPU (gpu_memory_gib), FSDP beyond.
   */
  parallel: z.enum(["auto", "ddp", "fsdp"]).default("auto"),
  /** Memory of one GPU, GiB, for the estimate behind parallel: auto (80: A100/H100 80GB). */
  gpu_memory_gib: z.number().positive().default(80),
  /** FSDP's sharding when FSDP is used: full_shard or shard_grad_op (auto_wrap is accepted: every decoder layer is its own unit); "" keeps auto on DDP. */
  fsdp: z.string().default("full_shard auto_wrap"),
  /** The unit FSDP wraps, named as Hugging Face does; xalign's runner always wraps each decoder layer. */
  fsdp_wrap: z.string().default("LlamaDecoderLayer"),
  gradient_checkpointing: z.boolean().default(false),
  /** The torchrun executable on the GPU machines (e.g. .venv-torch/bin/torchrun). */
  torchrun: z.string().default("torchrun"),
  slurm: z
    .strictObject({
      partition: z.string().optional(),
      account: z.string().optional(),
      time: z.string().default("24:00:00"),
      cpus_per_task: positiveInt.default(16),
      mem: z.string().optional(),
      port: positiveInt.default(29500),
    })
    .optional(),
});

/**
 * How `engine: torch` trains (src/train/torch-engine.ts, python/xalign_torch.py): every stage on
 * PyTorch (CPU or CUDA), the rest of the run (data, tokenizer, evaluation) in TypeScript.
 */
export const TorchEngineSchema = z.strictObject({
  /** An interpreter that can import torch (default: $XALIGN_PYTHON, python3, /usr/bin/python3). */
  python: z.string().optional(),
  device: z.enum(["auto", "cpu", "cuda"]).default("auto"),
  /** bf16 autocast (CUDA only); fp32 by default. */
  precision: z.enum(["fp32", "bf16"]).default("fp32"),
  /** TF32 matmuls on CUDA. */
  tf32: z.boolean().default(false),
  /** Local processes under torch.distributed.run (DDP); each micro-batch's rows are split over them. */
  nproc: positiveInt.default(1),
  /** torch CPU threads per process (default: torch's). */
  threads: positiveInt.optional(),
});

export const ExperimentSchema = z
  .strictObject({
    /** The run folder's name under output: (one path component). */
    name: z.string().regex(SAFE_NAME, `an experiment name uses ${SAFE_NAME_RULE}`),
    seed: nonNegativeInt.default(0),
    /** tfjs: TensorFlow.js here; torch: each stage on PyTorch through python/xalign_torch.py; torch-fsdp: `xalign launch` (the same runner under torchrun, DDP or FSDP). */
    engine: z.enum(["tfjs", "torch", "torch-fsdp"]).default("tfjs"),
    backend: z.enum(["auto", "tensorflow", "webgpu", "wasm", "cpu"]).default("auto"),
    /** Where runs go: <output>/<name>/. */
    output: z.string().default("runs"),
    /** A synthetic world to generate first (`xalign synth build` options). */
    synth: z
      .strictObject({
        preset: z.string(),
        seed: nonNegativeInt.default(0),
        /** Where the world is written (reused when its manifest.json exists). */
        out: z.string(),
        /** Overrides of the generator's sizes (people, parallel, instructions, qa, pretrain, dev, devtest...). */
        sizes: z.record(z.string(), positiveInt).optional(),
      })
      .optional(),
    tokenizer: TokenizerSchema,
    model: ModelSchema,
    stages: z.array(StageSchema).min(1),
    launch: LaunchSchema.optional(),
    /** Options of `engine: torch`. */
    torch: TorchEngineSchema.optional(),
  })
  .superRefine((e, ctx) => {
    if (e.tokenizer.path === undefined && e.tokenizer.train_on === undefined) {
      ctx.addIssue({ code: "custom", message: "set tokenizer.path or tokenizer.train_on", path: ["tokenizer"] });
    }
    const names = new Set<string>();
    e.stages.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: "custom", message: `duplicate stage name "${s.name}"`, path: ["stages", i, "name"] });
      names.add(s.name);
    });
  });

export type LoraConfig = z.infer<typeof LoraSchema>;
export type TrainConfig = z.infer<typeof TrainSchema>;
export type StageConfig = z.infer<typeof StageSchema>;
export type ModelSpec = z.infer<typeof ModelSchema>;
export type ExperimentConfig = z.infer<typeof ExperimentSchema>;
export type LaunchConfig = z.infer<typeof LaunchSchema>;
export type TorchEngineConfig = z.infer<typeof TorchEngineSchema>;
