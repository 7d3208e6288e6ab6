/**
 * How much GPU memory one training process needs, roughly, under DDP (each
 * process holds the whole model, its gradient and AdamW's moments) and under
 * FSDP (those sharded over the processes): what `xalign launch` uses to pick
 * DDP for a model that fits one GPU and FSDP beyond. The figures are
 * estimates in GiB, meant to be on the safe side of the real peak, not
 * measurements.
 *
 * @example
 * estimateMemory(MODEL_PRESETS["llama-7b"], { batchSize: 4, maxLength: 512, worldSize: 8, bf16: true, gpuGiB: 80 });
 * // { parameters: 6738415616, ddpGiB: ~149, fsdpGiB: ~31, fitsDdp: false, ... }
 */

/** The fields of a LLaMA config the estimate reads. */
export interface ModelShape {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number | undefined;
  vocab_size?: number | undefined;
  tie_word_embeddings?: boolean | undefined;
  canon_width?: number | undefined;
}

export interface MemoryOptions {
  /** Rows per GPU per micro-batch. */
  batchSize: number;
  maxLength: number;
  worldSize: number;
  bf16: boolean;
  gradientCheckpointing?: boolean;
  /** Memory of one GPU, GiB. */
  gpuGiB: number;
}

export interface MemoryEstimate {
  parameters: number;
  /** Parameters of one decoder layer (an FSDP unit). */
  layerParameters: number;
  /** Estimated peak per GPU under DDP, GiB. */
  ddpGiB: number;
  /** Estimated peak per GPU under FSDP (full shard over worldSize), GiB. */
  fsdpGiB: number;
  /** Of which activations and logits, GiB (the same in both). */
  activationGiB: number;
  gpuGiB: number;
  /** Whether DDP fits in 90% of one GPU. */
  fitsDdp: boolean;
  fitsFsdp: boolean;
  /** The vocabulary size was not known (no tokenizer yet) and 32000 was assumed. */
  vocabAssumed: boolean;
}

const GIB = 2 ** 30;
/** CUDA context, allocator slack and workspaces. */
const OVERHEAD_GIB = 1.5;
/** The share of a GPU a plan may count on. */
const USABLE = 0.9;

/** Parameters of a LLaMA with this shape (embedding, head unless tied, layers, norms, canon taps). */
export function parameterCount(shape: ModelShape): { total: number; layer: number; root: number; vocabAssumed: boolean } {
  const h = shape.hidden_size;
  const heads = shape.num_attention_heads;
  const kv = shape.num_key_value_heads ?? heads;
  const kvDim = (h / heads) * kv;
  const vocabAssumed = shape.vocab_size === undefined;
  const vocab = shape.vocab_size ?? 32000;
  const layer = 2 * h * h + 2 * h * kvDim + 3 * h * shape.intermediate_size + 2 * h + (shape.canon_width ?? 0) * h;
  const root = vocab * h * (shape.tie_word_embeddings ? 1 : 2) + h;
  return { total: root + shape.num_hidden_layers * layer, layer, root, vocabAssumed };
}

/**
 * The estimate: fp32 master weights, fp32 gradients and AdamW's two fp32
 * moments (16 bytes a parameter); DDP adds its gradient buckets (4) and,
 * under bf16 autocast, the cached bf16 weight copies (2); FSDP holds 16/world
 * bytes a parameter plus the unsharded units in flight (two layers gathered
 * and one layer's full gradient) and the root unit (embedding, head). Saved
 * activations per token and layer ~ 8·hidden + 4·intermediate values (2 bytes
 * in bf16, 4 in fp32; with gradient checkpointing only each layer's input
 * plus one layer), and the logits with their gradient in fp32.
 */
export function estimateMemory(shape: ModelShape, options: MemoryOptions): MemoryEstimate {
  const { total, layer, root, vocabAssumed } = parameterCount(shape);
  const vocab = shape.vocab_size ?? 32000;
  const h = shape.hidden_size;
  const tokens = options.batchSize * options.maxLength;
  const act = options.bf16 ? 2 : 4;
  const perLayer = tokens * (8 * h + 4 * shape.intermediate_size) * act;
  const layers = shape.num_hidden_layers;
  const activations = options.gradientCheckpointing ? layers * tokens * h * act + perLayer : layers * perLayer;
  const logits = tokens * vocab * 12;
  const activationBytes = activations + logits;
  const ddp = total * (16 + 4 + (options.bf16 ? 2 : 0)) + activationBytes;
  const paramBytes = options.bf16 ? 2 : 4;
  const fsdp = (total * 16) / options.worldSize + layer * (2 * paramBytes + 4) + root * paramBytes + activationBytes;
  const ddpGiB = ddp / GIB + OVERHEAD_GIB;
  const fsdpGiB = fsdp / GIB + OVERHEAD_GIB;
  return {
    parameters: total,
    layerParameters: layer,
    ddpGiB,
    fsdpGiB,
    activationGiB: activationBytes / GIB,
    gpuGiB: options.gpuGiB,
    fitsDdp: ddpGiB <= USABLE * options.gpuGiB,
    fitsFsdp: fsdpGiB <= USABLE * options.gpuGiB,
    vocabAssumed,
  };
}

/** "6.74B", "1.2M": a parameter count for people. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}
