/**
 * LLaMA, as the paper and Hugging Face's `modeling_llama.py` define it:
 * token embedding -> N x [RMSNorm -> attention with rotary positions
 * (rotate-half convention) and grouped-query heads -> residual -> RMSNorm ->
 * SwiGLU feed-forward -> residual] -> RMSNorm -> head (optionally tied to the
 * embedding).
 *
 * Weights are named `tf.Variable`s keyed by their Hugging Face tensor names,
 * so a trainer can differentiate with `tf.variableGrads` / optimizers and mark
 * any of them untrainable. One layout difference, for speed: projection
 * weights (`*_proj.weight`, `lm_head.weight`) are held as [in, out] (we compute
 * `x @ W`), the transpose of HF's [out, in]; checkpoints transpose on load and
 * save ({@link toHfLayout}/{@link fromHfLayout}). On the wasm backend a
 * matMul against a transposed operand costs a full copy of the weight, which
 * would dominate decoding.
 *
 * Every projection goes through {@link LlamaModel.linear}, the hook LoRA uses:
 * an adapter registered for a module name (e.g.
 * "model.layers.0.self_attn.q_proj") returns a delta added to `x @ W`.
 *
 * @example
 * await initEngine({ backend: "wasm" });
 * const model = LlamaModel.init(config, new Rng(1));
 * const ids = tf.tensor2d([[1, 5, 9]], undefined, "int32");
 * const logits = model.forward(ids);           // [1, 3, vocab]
 * const loss = model.loss(ids, tf.tensor2d([[5, 9, -100]], undefined, "int32"));
 */
import * as tf from "@tensorflow/tfjs";
import {
  type DecoderLayerTables,
  decoderLayer,
  embeddingLookup,
  lmHeadLoss,
  rmsNormalize,
  rotaryEmbedding,
  swiglu,
} from "../engine/fused.js";
import type { Rng } from "../util/rng.js";
import { canonWidth, headDim, type LlamaConfig, validateConfig } from "./config.js";
import type { KvCache } from "./kvcache.js";
import { causalLmLoss } from "./loss.js";
import { RotaryTables } from "./rope.js";

/** A LoRA-style adapter: given the module's input [rows, in], the delta [rows, out] added to `x @ W`. */
export type LinearAdapter = (x: tf.Tensor2D) => tf.Tensor2D;

export interface ForwardOptions {
  /**
   * [batch, past + t]: 1 for real tokens, 0 for padding (left or right). Covers cached positions too.
   * Masks and positions are read on the JS side (they shape the bias and rotary tables); pass arrays
   * on webgpu, where a tensor's dataSync is not available in Node.
   */
  attentionMask?: tf.Tensor2D | number[][];
  /** [batch, t] absolute positions. Default: from the mask (cumsum - 1) or past + 0..t-1. */
  positionIds?: tf.Tensor2D | number[][];
  /** Append keys/values to this cache and attend to everything in it. */
  cache?: KvCache;
  /** "last": logits only for the last position ([batch, 1, vocab]); skips the head for the prefix. */
  logits?: "all" | "last";
  /** The head as [hidden, vocab] with the final norm folded in, when the caller already holds it. */
  headWeight?: tf.Tensor2D;
  /** Fused weights from {@link LlamaModel.prepareInference} (what generate() uses). */
  inferenceWeights?: InferenceWeights;
  /**
   * [batch * t] document number per position for rows that pack several documents (0: padding): each
   * position attends only within its document (and the canon convolution reads only its document), and
   * positions restart at 0 at each document. Not with a cache.
   */
  segments?: Int32Array;
}

/** Names of the weights Hugging Face stores for `cfg`, in checkpoint order. */
export function weightNames(cfg: LlamaConfig): string[] {
  const names = ["model.embed_tokens.weight"];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    names.push(
      `${p}.self_attn.q_proj.weight`,
      `${p}.self_attn.k_proj.weight`,
      `${p}.self_attn.v_proj.weight`,
      `${p}.self_attn.o_proj.weight`,
      `${p}.mlp.gate_proj.weight`,
      `${p}.mlp.up_proj.weight`,
      `${p}.mlp.down_proj.weight`,
      `${p}.input_layernorm.weight`,
      `${p}.post_attention_layernorm.weight`,
    );
    if (canonWidth(cfg) > 0) names.push(`${p}.self_attn.canon.weight`);
  }
  names.push("model.norm.weight");
  if (!cfg.tie_word_embeddings) names.push("lm_head.weight");
  return names;
}

/** The shape Hugging Face stores for weight `name` ([out, in] for projections). */
export function hfShape(cfg: LlamaConfig, name: string): number[] {
  const d = cfg.hidden_size;
  const kv = cfg.num_key_value_heads * headDim(cfg);
  if (name === "model.embed_tokens.weight") return [cfg.vocab_size, d];
  if (name === "lm_head.weight") return [cfg.vocab_size, d];
  if (name === "model.norm.weight" || name.endsWith("layernorm.weight")) return [d];
  if (name.endsWith("q_proj.weight") || name.endsWith("o_proj.weight")) return [d, d];
  if (name.endsWith("k_proj.weight") || name.endsWith("v_proj.weight")) return [kv, d];
  if (name.endsWith("gate_proj.weight") || name.endsWith("up_proj.weight")) return [cfg.intermediate_size, d];
  if (name.endsWith("down_proj.weight")) return [d, cfg.intermediate_size];
  // Row k weighs the input k positions back (k = 0 is the current token), per channel.
  if (name.endsWith("self_attn.canon.weight") && canonWidth(cfg) > 0) return [canonWidth(cfg), d];
  throw new Error(`hfShape: unknown LLaMA weight ${name}`);
}

/** True for weights held transposed in memory ([in, out]) relative to HF's files. */
export function isTransposedInMemory(name: string): boolean {
  return name.endsWith("_proj.weight") || name === "lm_head.weight";
}

/** A weight in HF layout from its in-memory tensor (new tensor; the caller disposes). */
export function toHfLayout(name: string, t: tf.Tensor): tf.Tensor {
  return isTransposedInMemory(name) ? tf.transpose(t) : t.clone();
}

/** The in-memory layout of a weight read in HF layout (new tensor; the caller disposes). */
export function fromHfLayout(name: string, t: tf.Tensor): tf.Tensor {
  return isTransposedInMemory(name) ? tf.transpose(t) : t.clone();
}

let modelCounter = 0;

/**
 * Weights prepared for inference by {@link LlamaModel.prepareInference}: the
 * projections that follow an RMSNorm (q, k, v, gate, up) with the norm weight
 * folded in, by module name, and the head with the final norm folded in, so a
 * decoding step does not redo those weight-sized products. Valid until the
 * weights change; dispose() when done.
 */
export interface InferenceWeights {
  folded: Map<string, tf.Tensor2D>;
  head: tf.Tensor2D;
  dispose(): void;
}

/** What every layer of one forward shares: rotary tables, attention bias, shapes. */
interface ForwardContext {
  batch: number;
  t: number;
  /** What the per-op attention reads, built on first use (a forward of fused layers never needs it). */
  attention(): AttentionInputs;
  cache: KvCache | undefined;
  plan: InferenceWeights | undefined;
  /** Without a plan: normalized rows times each norm's weight, computed once per norm and forward. */
  scaled: Map<string, tf.Tensor2D>;
  /** Absolute position of each row, and the attention mask [batch, past + t] when one was given. */
  positions: ArrayLike<number>;
  mask: Int32Array | undefined;
  /** Positions already in the cache. */
  past: number;
  /** Document number per position ([batch * t]) when rows pack isolated documents. */
  segments: Int32Array | undefined;
  /** The canon convolution's masks, built on first use and shared by every layer. */
  canonMasks?: CanonMasks;
  /** What the fused decoder-layer kernel reads, built on first use. */
  fused?: DecoderLayerTables;
}

/** Per-(row, head) rotary tables and the attention bias of the per-op attention. */
interface AttentionInputs {
  /** Rotary tables for the query rows (attention scale folded in) and the key rows. */
  query: { cos: tf.Tensor2D; sin: tf.Tensor2D };
  key: { cos: tf.Tensor2D; sin: tf.Tensor2D };
  /** [b, kv, group * t, total], or undefined when every key is visible to every query. */
  bias: tf.Tensor4D | undefined;
}

export class LlamaModel {
  readonly config: LlamaConfig;
  /** Weights by Hugging Face name; projections in [in, out] layout (see the module comment). */
  readonly variables: Map<string, tf.Variable>;
  private readonly adapters = new Map<string, LinearAdapter>();
  private readonly rope: RotaryTables;
  private disposed = false;
  private inferenceCache: { weights: InferenceWeights; dataIds: object[] } | undefined;

  private constructor(config: LlamaConfig, variables: Map<string, tf.Variable>) {
    this.config = config;
    this.variables = variables;
    this.rope = new RotaryTables(headDim(config), config.rope_theta);
  }

  /**
   * A model with Hugging Face's initialisation (normal(0, initializerRange) for
   * embeddings and projections, ones for norms), drawn from `rng`: the same
   * seed gives the same weights on every backend.
   */
  static init(config: LlamaConfig, rng: Rng, options: { initializerRange?: number } = {}): LlamaModel {
    validateConfig(config);
    const std = options.initializerRange ?? 0.02;
    const tensors = new Map<string, tf.Tensor>();
    for (const name of weightNames(config)) {
      const shape = memoryShape(config, name);
      const size = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      if (shape.length === 1) data.fill(1);
      else if (isCanon(name)) {
        // Zero: the convolution starts as the identity (the residual alone), as in Allen-Zhu's canon layers.
      } else for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
      tensors.set(name, tf.tensor(data, shape, "float32"));
    }
    return LlamaModel.fromTensors(config, tensors);
  }

  /**
   * A model that takes ownership of `tensors` (in-memory layout, keyed by HF
   * name). Every weight of the config must be there with its shape.
   */
  static fromTensors(config: LlamaConfig, tensors: Map<string, tf.Tensor>): LlamaModel {
    validateConfig(config);
    const id = ++modelCounter;
    const variables = new Map<string, tf.Variable>();
    try {
      for (const name of weightNames(config)) {
        const t = tensors.get(name);
        if (!t) throw new Error(`LlamaModel.fromTensors: missing weight ${name}`);
        const want = memoryShape(config, name);
        if (!tf.util.arraysEqual(t.shape, want))
          throw new Error(`LlamaModel.fromTensors: ${name} has shape [${t.shape}], expected [${want}]`);
        variables.set(name, tf.variable(t, true, `llama${id}/${name}`, "float32"));
      }
    } catch (err) {
      for (const v of variables.values()) v.dispose();
      throw err;
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
    return new LlamaModel(config, variables);
  }

  /** The variable for HF weight `name` (in-memory layout). */
  weight(name: string): tf.Variable {
    const v = this.variables.get(name);
    if (!v) throw new Error(`LlamaModel: no weight named ${name}`);
    return v;
  }

  /** Number of parameters (tied embeddings counted once). */
  numParameters(): number {
    let n = 0;
    for (const v of this.variables.values()) n += v.size;
    return n;
  }

  /** Variables whose `trainable` flag is set, for optimizer.minimize / variableGrads. */
  trainableVariables(): tf.Variable[] {
    return [...this.variables.values()].filter((v) => v.trainable);
  }

  /** Marks each weight trainable or frozen by name. */
  setTrainable(predicate: (name: string) => boolean): void {
    for (const [name, v] of this.variables) v.trainable = predicate(name);
  }

  /**
   * Registers (or with `undefined` removes) an adapter on a projection module,
   * e.g. "model.layers.3.self_attn.v_proj". Its output is added to the base projection.
   */
  setAdapter(module: string, adapter: LinearAdapter | undefined): void {
    if (!this.variables.has(`${module}.weight`) || !module.endsWith("_proj")) {
      throw new Error(`LlamaModel.setAdapter: ${module} is not a projection module of this model`);
    }
    if (adapter) this.adapters.set(module, adapter);
    else this.adapters.delete(module);
  }

  /** Whether any projection has an adapter (native decoding runs only the base weights). */
  hasAdapters(): boolean {
    return this.adapters.size > 0;
  }

  /** Names of the projection modules (where adapters can go). */
  projectionModules(): string[] {
    return [...this.variables.keys()].filter((n) => n.endsWith("_proj.weight")).map((n) => n.slice(0, -".weight".length));
  }

  /** `x @ W` for projection `module` (x: [rows, in]), plus the module's adapter delta. */
  linear(module: string, x: tf.Tensor2D): tf.Tensor2D {
    const base = tf.matMul(x, this.weight(`${module}.weight`) as tf.Tensor2D) as tf.Tensor2D;
    const adapter = this.adapters.get(module);
    return adapter ? (tf.add(base, adapter(x)) as tf.Tensor2D) : base;
  }

  /** Logits [batch, t, vocab] (or [batch, 1, vocab] with `logits: "last"`) for int32 ids [batch, t]. */
  forward(inputIds: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    return this.run(inputIds, options, (h, ctx) => this.logitsOf(h, ctx, options));
  }

  /**
   * Mean next-token cross-entropy. `labels` [batch, t] are the targets already
   * aligned with positions (the label at t is the token after position t);
   * negative labels (HF's -100) are ignored. With the native kernels on, the
   * final norm, head and loss are one kernel each way (no logits tensor).
   */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, attentionMask?: tf.Tensor2D | number[][], segments?: Int32Array): tf.Scalar {
    const options = { ...(attentionMask ? { attentionMask } : {}), ...(segments ? { segments } : {}) };
    // causalLmLoss names a label count that does not match the positions.
    if (labels.size !== inputIds.size) return tf.tidy(() => causalLmLoss(this.forward(inputIds, options), labels));
    return this.run(inputIds, options, (h, ctx) => {
      const cfg = this.config;
      const tied = cfg.tie_word_embeddings;
      const head = this.weight(tied ? "model.embed_tokens.weight" : "lm_head.weight") as tf.Tensor2D;
      const flat = tf.reshape(labels, [labels.size]).toInt() as tf.Tensor1D;
      // Unfused: the same hidden rows through the head, then the loss.
      return lmHeadLoss(h, this.weight("model.norm.weight"), head, flat, { eps: cfg.rms_norm_eps, tied }, () =>
        causalLmLoss(this.logitsOf(h, ctx, options), labels),
      );
    });
  }

  /** Logits [batch, rows, vocab] from the hidden rows (all, or the last per sequence with `logits: "last"`). */
  private logitsOf(h: tf.Tensor2D, ctx: ForwardContext, options: ForwardOptions): tf.Tensor3D {
    const cfg = this.config;
    const { batch, t } = ctx;
    const rowsIn = options.logits === "last" ? lastRows(h, batch, t) : h;
    const rows = rowsIn.shape[0] / batch;
    const head = options.headWeight ?? ctx.plan?.head;
    const logits = head
      ? tf.matMul(rmsNormalize(rowsIn, cfg.rms_norm_eps), head)
      : // Scaling the rows by the final norm's weight costs rows x hidden; folding it into the head, hidden x vocab.
        tf.matMul(tf.mul(rmsNormalize(rowsIn, cfg.rms_norm_eps), this.weight("model.norm.weight")), this.headWeight());
    return tf.reshape(logits, [batch, rows, cfg.vocab_size]) as tf.Tensor3D;
  }

  /** Embedding and decoder layers, then `finish` on the hidden rows [batch * t, hidden], all in one tidy. */
  private run<T extends tf.Tensor>(inputIds: tf.Tensor2D, options: ForwardOptions, finish: (h: tf.Tensor2D, ctx: ForwardContext) => T): T {
    this.assertAlive();
    const cfg = this.config;
    const [batch, t] = inputIds.shape;
    const cache = options.cache;
    const past = cache?.length ?? 0;
    const mask = options.attentionMask ? readMask(options.attentionMask, batch, past + t) : undefined;
    const given = options.positionIds;
    const segments = options.segments;
    if (segments && (cache || segments.length !== batch * t))
      throw new Error(
        `LlamaModel.forward: segments need ${batch * t} entries and no KV cache (got ${segments.length}${cache ? ", a cache" : ""})`,
      );
    const positions = given
      ? Array.isArray(given)
        ? given.flat()
        : given.dataSync()
      : segments
        ? segmentPositions(segments, t)
        : defaultPositions(mask, batch, past, t);
    if (positions.length !== batch * t)
      throw new Error(`LlamaModel.forward: positionIds has ${positions.length} entries, expected ${batch * t}`);
    const out = tf.tidy(() => {
      let attention: AttentionInputs | undefined;
      const ctx: ForwardContext = {
        batch,
        t,
        // The attention scale 1/sqrt(head_dim) rides on the query's rotary tables.
        attention: () => {
          attention ??= {
            query: this.rope.rows(positions, new Array(cfg.num_attention_heads).fill(1 / Math.sqrt(headDim(cfg)))),
            key: this.rope.rows(positions, new Array(cfg.num_key_value_heads).fill(1)),
            bias: attentionBias(mask, batch, past, t, cfg.num_key_value_heads, cfg.num_attention_heads / cfg.num_key_value_heads, segments),
          };
          return attention;
        },
        cache,
        plan: options.inferenceWeights,
        scaled: new Map(),
        positions,
        mask,
        past,
        segments,
      };
      let h = embeddingLookup(this.weight("model.embed_tokens.weight") as tf.Tensor2D, inputIds.toInt());
      for (let l = 0; l < cfg.num_hidden_layers; l++) h = this.layer(l, h, ctx);
      return finish(h, ctx);
    });
    if (cache) cache.length = past + t;
    return out;
  }

  /** The head as [hidden, vocab]: lm_head, or the transposed embedding when tied (a new tensor then). */
  headWeight(): tf.Tensor2D {
    if (this.config.tie_word_embeddings) return tf.transpose(this.weight("model.embed_tokens.weight")) as tf.Tensor2D;
    return this.weight("lm_head.weight") as tf.Tensor2D;
  }

  /**
   * Fused, norm-folded weights for fast decoding (see {@link InferenceWeights}),
   * built once and reused until a weight changes (a variable's assign() gives it
   * new data, which this notices); the model owns and disposes them.
   */
  inferenceWeights(): InferenceWeights {
    const ids = [...this.variables.values()].map((v) => v.dataId);
    const cached = this.inferenceCache;
    if (cached && cached.dataIds.length === ids.length && cached.dataIds.every((id, i) => id === ids[i])) return cached.weights;
    cached?.weights.dispose();
    const weights = this.prepareInference();
    this.inferenceCache = { weights, dataIds: ids };
    return weights;
  }

  /** Builds new {@link InferenceWeights} that the caller owns (prefer {@link inferenceWeights}, which caches). */
  prepareInference(): InferenceWeights {
    const folded = new Map<string, tf.Tensor2D>();
    for (let l = 0; l < this.config.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      for (const m of ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]) {
        folded.set(
          `${p}.${m}`,
          tf.tidy(() => this.folded(`${p}.input_layernorm.weight`, `${p}.${m}`)),
        );
      }
      for (const m of ["mlp.gate_proj", "mlp.up_proj"]) {
        folded.set(
          `${p}.${m}`,
          tf.tidy(() => this.folded(`${p}.post_attention_layernorm.weight`, `${p}.${m}`)),
        );
      }
    }
    const head = tf.tidy(() => this.foldedHead());
    return {
      folded,
      head,
      dispose: () => {
        tf.dispose([...folded.values(), head]);
        folded.clear();
      },
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variables.values()) v.dispose();
    this.inferenceCache?.weights.dispose();
    this.inferenceCache = undefined;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error("LlamaModel: used after dispose()");
  }

  /**
   * A projection's weight with the preceding RMSNorm weight folded into its
   * rows: (x * w) @ W = x @ (w[:, None] * W). A column broadcast over W is fast
   * where the row broadcast x * w is not, and the gradient still reaches both.
   */
  private folded(normWeight: string, module: string): tf.Tensor2D {
    return tf.mul(this.weight(`${module}.weight`), tf.reshape(this.weight(normWeight), [-1, 1])) as tf.Tensor2D;
  }

  /** The head [hidden, vocab] with the final norm weight folded into its rows. */
  private foldedHead(): tf.Tensor2D {
    return tf.tidy(() => tf.mul(this.headWeight(), tf.reshape(this.weight("model.norm.weight"), [-1, 1])) as tf.Tensor2D);
  }

  /**
   * A projection of normalized rows `x` (the RMSNorm without its weight): with
   * an inference plan through its norm-folded weight, otherwise through
   * {@link linear} on the norm-weighted rows. (One matMul
   * per module: splitting a fused q|k|v output by columns costs more on wasm
   * than the matMuls it saves.)
   */
  private project(x: tf.Tensor2D, normWeight: string, module: string, ctx: ForwardContext): tf.Tensor2D {
    const folded = this.adapters.has(module) ? undefined : ctx.plan?.folded.get(module);
    if (folded) return tf.matMul(x, folded);
    // Training and plan-less forwards: scale the rows by the norm weight once and share them between the
    // norm's projections (folding the weight into every projection costs a weight-sized multiply each,
    // forward and backward).
    let scaled = ctx.scaled.get(normWeight);
    if (!scaled) {
      scaled = tf.mul(x, this.weight(normWeight)) as tf.Tensor2D;
      ctx.scaled.set(normWeight, scaled);
    }
    return this.linear(module, scaled);
  }

  /**
   * Decoder layer `layer` on the hidden rows: one native kernel each way
   * (src/engine/fused.ts) when the fused kernels are on and nothing needs the
   * per-op path (no KV cache, inference plan, packed segments, canon
   * convolution or adapter on the layer's projections); else per op.
   */
  private layer(layer: number, h: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const cfg = this.config;
    const perOp = () => {
      const x = tf.add(h, this.attention(layer, this.canon(layer, rmsNormalize(h, cfg.rms_norm_eps), ctx), ctx)) as tf.Tensor2D;
      return tf.add(x, this.feedForward(layer, rmsNormalize(x, cfg.rms_norm_eps), ctx)) as tf.Tensor2D;
    };
    // The layer kernel has no canon convolution: such models run the per-op layer (with the per-op native kernels).
    if (ctx.cache || ctx.plan || ctx.segments || canonWidth(cfg) > 0) return perOp();
    const p = `model.layers.${layer}`;
    for (const module of this.adapters.keys()) if (module.startsWith(`${p}.`)) return perOp();
    const w = (name: string) => this.weight(`${p}.${name}.weight`);
    const weights = {
      inputNorm: w("input_layernorm"),
      q: w("self_attn.q_proj"),
      k: w("self_attn.k_proj"),
      v: w("self_attn.v_proj"),
      o: w("self_attn.o_proj"),
      postNorm: w("post_attention_layernorm"),
      gate: w("mlp.gate_proj"),
      up: w("mlp.up_proj"),
      down: w("mlp.down_proj"),
    };
    const tables = (): DecoderLayerTables => {
      const { batch, t, mask } = ctx;
      ctx.fused ??= {
        // Per row (not per head): the kernel rotates every head of a row with the row's table.
        query: this.rope.rows(ctx.positions, [1 / Math.sqrt(headDim(cfg))]),
        key: this.rope.rows(ctx.positions, [1]),
        ...(mask?.some((m) => m !== 1) ? { keyMask: tf.tensor2d(mask, [batch, t], "int32") } : {}),
      };
      return ctx.fused;
    };
    const dims = { batch: ctx.batch, t: ctx.t, heads: cfg.num_attention_heads, kvHeads: cfg.num_key_value_heads, headDim: headDim(cfg) };
    return decoderLayer(h, weights, { ...dims, eps: cfg.rms_norm_eps, tables }, perOp);
  }

  /**
   * The canon convolution of layer `layer` on normalized rows x [b * t, hidden]:
   * x + sum_k W[k] * x[t - k] per channel, causal, with padded positions (mask 0)
   * and positions before the sequence read as zeros, so a left-padded row gives
   * what the unpadded row gives. With a KV cache the last width-1 inputs of each
   * layer ride in the cache. The identity when the config has no canon_width.
   */
  private canon(layer: number, x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const w = canonWidth(this.config);
    if (w === 0) return x;
    const { batch: b, t } = ctx;
    const d = x.shape[1];
    const rows = tf.reshape(x, [b, t, d]) as tf.Tensor3D;
    const masks = canonMasks(ctx, w);
    const input = masks.keep ? (tf.mul(rows, masks.keep) as tf.Tensor3D) : rows;
    const before = ctx.cache?.canonState(layer) ?? tf.zeros([b, w - 1, d]);
    const padded = w > 1 ? (tf.concat([before, input], 1) as tf.Tensor3D) : input;
    if (ctx.cache && w > 1) ctx.cache.setCanonState(layer, tf.slice(padded, [0, t, 0], [b, w - 1, d]) as tf.Tensor3D);
    const taps = tf.unstack(this.weight(`model.layers.${layer}.self_attn.canon.weight`));
    let out: tf.Tensor3D = rows;
    for (let k = 0; k < w; k++) {
      const shifted = tf.slice(padded, [0, w - 1 - k, 0], [b, t, d]) as tf.Tensor3D;
      const tap = masks.taps[k];
      out = tf.add(out, tf.mul(tap ? tf.mul(shifted, tap) : shifted, taps[k] as tf.Tensor1D));
    }
    return tf.reshape(out, [b * t, d]) as tf.Tensor2D;
  }

  /** SwiGLU feed-forward on normalized rows: down(silu(gate(x)) * up(x)). */
  private feedForward(layer: number, x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const p = `model.layers.${layer}`;
    const norm = `${p}.post_attention_layernorm.weight`;
    const gate = this.project(x, norm, `${p}.mlp.gate_proj`, ctx);
    const up = this.project(x, norm, `${p}.mlp.up_proj`, ctx);
    return this.linear(`${p}.mlp.down_proj`, swiglu(gate, up));
  }

  /**
   * Causal self-attention on normalized rows [b * t, hidden], with rotary
   * positions and grouped-query heads. The query heads sharing a key/value
   * head are stacked along the time axis, so grouped-query attention is one
   * batched matMul with no repeated keys.
   */
  private attention(layer: number, x: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const cfg = this.config;
    const { batch: b, t } = ctx;
    const hd = headDim(cfg);
    const nh = cfg.num_attention_heads;
    const nkv = cfg.num_key_value_heads;
    const group = nh / nkv;
    const p = `model.layers.${layer}.self_attn`;
    const norm = `model.layers.${layer}.input_layernorm.weight`;
    const rope = (module: string, heads: number, tables: { cos: tf.Tensor2D; sin: tf.Tensor2D }) => {
      const rows = tf.reshape(this.project(x, norm, module, ctx), [b * t * heads, hd]) as tf.Tensor2D;
      // Tables are per row, so row r uses table row r.
      return tf.reshape(rotaryEmbedding(rows, tables.cos, tables.sin), [b, t, heads, hd]) as tf.Tensor4D;
    };
    const inputs = ctx.attention();
    const q = rope(`${p}.q_proj`, nh, inputs.query);
    const k = rope(`${p}.k_proj`, nkv, inputs.key);
    const v = this.project(x, norm, `${p}.v_proj`, ctx);
    // Keys are kept transposed ([b, kv, hd, t]) so scores need no transposed matMul; for t = 1 every layout change is a reshape.
    const one = t === 1;
    let keysT = (one ? tf.reshape(k, [b, nkv, hd, 1]) : tf.transpose(k, [0, 2, 3, 1])) as tf.Tensor4D;
    let values = (one ? tf.reshape(v, [b, nkv, 1, hd]) : tf.transpose(tf.reshape(v, [b, t, nkv, hd]), [0, 2, 1, 3])) as tf.Tensor4D;
    if (ctx.cache) ({ keysT, values } = ctx.cache.append(layer, keysT, values));
    // [b, t, nh, hd] -> [b, kv, group * t, hd]: head h uses kv head h / group, as HF's repeat_kv.
    const queries = one ? tf.reshape(q, [b, nkv, group, hd]) : tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [b, nkv, group * t, hd]);
    let scores = tf.matMul(queries, keysT);
    if (inputs.bias) scores = tf.add(scores, inputs.bias);
    const context = tf.matMul(tf.softmax(scores), values);
    const merged = one
      ? tf.reshape(context, [b, nh * hd])
      : tf.reshape(tf.transpose(tf.reshape(context, [b, nh, t, hd]), [0, 2, 1, 3]), [b * t, nh * hd]);
    return this.linear(`${p}.o_proj`, merged as tf.Tensor2D);
  }
}

/** The last row of each sequence: [b * t, d] -> [b, d]. */
function lastRows(h: tf.Tensor2D, batch: number, t: number): tf.Tensor2D {
  if (t === 1) return h;
  const d = h.shape[1];
  return tf.reshape(tf.slice(tf.reshape(h, [batch, t, d]), [0, t - 1, 0], [batch, 1, d]), [batch, d]);
}

/** [b, t, 1] masks of the canon convolution: `keep` zeroes padded inputs; `taps[k]` keeps tap k inside a document. */
interface CanonMasks {
  keep: tf.Tensor3D | undefined;
  taps: (tf.Tensor3D | undefined)[];
}

function canonMasks(ctx: ForwardContext, width: number): CanonMasks {
  if (ctx.canonMasks) return ctx.canonMasks;
  const { batch: b, t, past, mask, segments: seg } = ctx;
  let keep: tf.Tensor3D | undefined;
  if (mask?.some((m) => m !== 1)) {
    const total = past + t;
    const data = new Float32Array(b * t);
    for (let r = 0; r < b; r++) for (let i = 0; i < t; i++) data[r * t + i] = mask[r * total + past + i] as number;
    keep = tf.tensor3d(data, [b, t, 1]);
  }
  const taps: (tf.Tensor3D | undefined)[] = [undefined];
  for (let k = 1; k < width; k++) {
    if (!seg) break;
    // Tap k reads position i - k only inside the same document.
    const same = new Float32Array(b * t);
    for (let i = 0; i < b * t; i++) same[i] = i % t >= k && seg[i - k] === seg[i] ? 1 : 0;
    taps.push(tf.tensor3d(same, [b, t, 1]));
  }
  ctx.canonMasks = { keep, taps };
  return ctx.canonMasks;
}

function isCanon(name: string): boolean {
  return name.endsWith("self_attn.canon.weight");
}

/** In-memory shape of a weight: HF's, transposed for projections. */
export function memoryShape(cfg: LlamaConfig, name: string): number[] {
  const s = hfShape(cfg, name);
  return isTransposedInMemory(name) ? [s[1] as number, s[0] as number] : s;
}

function readMask(mask: tf.Tensor2D | number[][], batch: number, total: number): Int32Array {
  const shape = Array.isArray(mask) ? [mask.length, mask[0]?.length ?? 0] : mask.shape;
  if (shape[0] !== batch || shape[1] !== total || (Array.isArray(mask) && mask.some((row) => row.length !== total))) {
    throw new Error(
      `LlamaModel.forward: attentionMask has shape [${shape}], expected [${batch}, ${total}] (batch, cached + new positions)`,
    );
  }
  const values = Array.isArray(mask) ? mask.flat() : mask.dataSync();
  return Int32Array.from(values, (v) => (v > 0 ? 1 : 0));
}

/** Positions of the last t tokens: count of real tokens before each one (so left padding starts at 0). */
function defaultPositions(mask: Int32Array | undefined, batch: number, past: number, t: number): number[] {
  const out: number[] = [];
  const total = past + t;
  for (let b = 0; b < batch; b++) {
    let seen = 0;
    for (let j = 0; j < total; j++) {
      const real = mask ? (mask[b * total + j] as number) : 1;
      if (j >= past) out.push(Math.max(seen + real - 1, 0));
      seen += real;
    }
  }
  return out;
}

/** Position of each entry within its document (restarting at 0 where the document number changes). */
function segmentPositions(segments: Int32Array, t: number): number[] {
  const out: number[] = [];
  let at = 0;
  for (let i = 0; i < segments.length; i++) {
    at = i % t !== 0 && segments[i] === segments[i - 1] ? at + 1 : 0;
    out.push(at);
  }
  return out;
}

/**
 * Additive bias [b, kv, group * t, total] (the scores' shape, so the add needs
 * no broadcasting): 0 where query i may see key j (causal, not padding),
 * -1e9 elsewhere. Undefined when nothing is hidden (one new token, no padding).
 */
function attentionBias(
  mask: Int32Array | undefined,
  batch: number,
  past: number,
  t: number,
  kv: number,
  group: number,
  segments?: Int32Array,
): tf.Tensor4D | undefined {
  const total = past + t;
  if (t === 1 && (!mask || mask.every((m) => m === 1))) return undefined;
  const rows = new Float32Array(batch * t * total);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < t; i++) {
      const row = (b * t + i) * total;
      for (let j = 0; j < total; j++) {
        if (j > past + i || (mask && mask[b * total + j] !== 1)) rows[row + j] = -1e9;
        else if (segments && segments[b * t + j] !== segments[b * t + i]) rows[row + j] = -1e9;
      }
    }
  }
  const perBatch = t * total;
  const data = new Float32Array(batch * kv * group * perBatch);
  for (let b = 0; b < batch; b++) {
    const src = rows.subarray(b * perBatch, (b + 1) * perBatch);
    for (let c = 0; c < kv * group; c++) data.set(src, (b * kv * group + c) * perBatch);
  }
  return tf.tensor4d(data, [batch, kv, group * t, total]);
}
