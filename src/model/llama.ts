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
import type { Rng } from "../util/rng.js";
import { headDim, type LlamaConfig, validateConfig } from "./config.js";
import type { KvCache } from "./kvcache.js";
import { causalLmLoss } from "./loss.js";

/** A LoRA-style adapter: given the module's input [rows, in], the delta [rows, out] added to `x @ W`. */
export type LinearAdapter = (x: tf.Tensor2D) => tf.Tensor2D;

export interface ForwardOptions {
  /** [batch, past + t]: 1 for real tokens, 0 for padding (left or right). Covers cached positions too. */
  attentionMask?: tf.Tensor2D | number[][];
  /** [batch, t] absolute positions. Default: from the mask (cumsum - 1) or past + 0..t-1. */
  positionIds?: tf.Tensor2D;
  /** Append keys/values to this cache and attend to everything in it. */
  cache?: KvCache;
  /** "last": logits only for the last position ([batch, 1, vocab]); skips the head for the prefix. */
  logits?: "all" | "last";
  /** The head as [hidden, vocab], when the caller already holds it (generation keeps one for a tied head). */
  headWeight?: tf.Tensor2D;
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

/** Rotary tables for positions 0..n-1: cos and sign-folded sin, each [n, head_dim]. */
function rotaryTables(n: number, dim: number, theta: number): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
  const half = dim / 2;
  const cos = new Float32Array(n * dim);
  const sin = new Float32Array(n * dim);
  for (let i = 0; i < half; i++) {
    // HF computes inv_freq in float32; round the same way.
    const invFreq = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / dim)));
    for (let p = 0; p < n; p++) {
      const angle = Math.fround(p * invFreq);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * dim + i] = c;
      cos[p * dim + half + i] = c;
      // rotate_half(x) = [-x2, x1]: with the halves swapped (a reverse), the first half takes -sin.
      sin[p * dim + i] = -s;
      sin[p * dim + half + i] = s;
    }
  }
  return { cos: tf.tensor2d(cos, [n, dim]), sin: tf.tensor2d(sin, [n, dim]) };
}

export class LlamaModel {
  readonly config: LlamaConfig;
  /** Weights by Hugging Face name; projections in [in, out] layout (see the module comment). */
  readonly variables: Map<string, tf.Variable>;
  private readonly adapters = new Map<string, LinearAdapter>();
  private rope: { cos: tf.Tensor2D; sin: tf.Tensor2D; length: number } | undefined;
  private disposed = false;

  private constructor(config: LlamaConfig, variables: Map<string, tf.Variable>) {
    this.config = config;
    this.variables = variables;
    this.ensureRope(config.max_position_embeddings);
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
      else for (let i = 0; i < size; i++) data[i] = rng.normal() * std;
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
    if (!this.variables.has(`${module}.weight`) || !isTransposedInMemory(`${module}.weight`)) {
      throw new Error(`LlamaModel.setAdapter: ${module} is not a projection module of this model`);
    }
    if (adapter) this.adapters.set(module, adapter);
    else this.adapters.delete(module);
  }

  /** Names of the projection modules (where adapters can go). */
  projectionModules(): string[] {
    return [...this.variables.keys()].filter((n) => n.endsWith("_proj.weight")).map((n) => n.slice(0, -".weight".length));
  }

  /** `x @ W` for projection `module` (x: [rows, in]), plus the module's adapter delta. The one place projections happen. */
  linear(module: string, x: tf.Tensor2D): tf.Tensor2D {
    const base = tf.matMul(x, this.weight(`${module}.weight`) as tf.Tensor2D) as tf.Tensor2D;
    const adapter = this.adapters.get(module);
    return adapter ? (tf.add(base, adapter(x)) as tf.Tensor2D) : base;
  }

  /** Logits [batch, t, vocab] (or [batch, 1, vocab] with `logits: "last"`) for int32 ids [batch, t]. */
  forward(inputIds: tf.Tensor2D, options: ForwardOptions = {}): tf.Tensor3D {
    this.assertAlive();
    const [batch, t] = inputIds.shape;
    const cache = options.cache;
    const past = cache?.length ?? 0;
    const total = past + t;
    const maskRows = options.attentionMask ? readMask(options.attentionMask, batch, total) : undefined;
    const positions = options.positionIds ? Array.from(options.positionIds.dataSync()) : defaultPositions(maskRows, batch, past, t);
    this.ensureRope(Math.max(total, ...positions) + 1);
    const out = tf.tidy(() => {
      const cfg = this.config;
      const bias = attentionBias(maskRows, batch, past, t);
      const pos = tf.tensor2d(positions, [batch, t], "int32");
      const rope = this.rope!;
      const cos = tf.gather(rope.cos, pos);
      const sin = tf.gather(rope.sin, pos);
      let h = tf.gather(this.weight("model.embed_tokens.weight"), inputIds.toInt()) as tf.Tensor3D;
      for (let l = 0; l < cfg.num_hidden_layers; l++) {
        const p = `model.layers.${l}`;
        const attn = this.attention(l, this.rmsNorm(h, `${p}.input_layernorm.weight`), cos, sin, bias, cache);
        h = tf.add(h, attn);
        h = tf.add(h, this.feedForward(p, this.rmsNorm(h, `${p}.post_attention_layernorm.weight`)));
      }
      if (options.logits === "last") h = tf.slice(h, [0, t - 1, 0], [batch, 1, cfg.hidden_size]);
      const rows = h.shape[1];
      const x = tf.reshape(this.rmsNorm(h, "model.norm.weight"), [batch * rows, cfg.hidden_size]) as tf.Tensor2D;
      const logits = tf.matMul(x, options.headWeight ?? this.headWeight());
      return tf.reshape(logits, [batch, rows, cfg.vocab_size]) as tf.Tensor3D;
    });
    if (cache) cache.length = total;
    return out;
  }

  /**
   * Mean next-token cross-entropy. `labels` [batch, t] are the targets already
   * aligned with positions (the label at t is the token after position t);
   * negative labels (HF's -100) are ignored.
   */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D, attentionMask?: tf.Tensor2D | number[][]): tf.Scalar {
    return tf.tidy(() => causalLmLoss(this.forward(inputIds, attentionMask ? { attentionMask } : {}), labels));
  }

  /** The head as [hidden, vocab]: lm_head, or the transposed embedding when tied (a new tensor then). */
  headWeight(): tf.Tensor2D {
    if (this.config.tie_word_embeddings) return tf.transpose(this.weight("model.embed_tokens.weight")) as tf.Tensor2D;
    return this.weight("lm_head.weight") as tf.Tensor2D;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variables.values()) v.dispose();
    this.rope?.cos.dispose();
    this.rope?.sin.dispose();
    this.rope = undefined;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error("LlamaModel: used after dispose()");
  }

  private ensureRope(n: number): void {
    if (this.rope && this.rope.length >= n) return;
    const length = Math.max(n, this.config.max_position_embeddings, (this.rope?.length ?? 0) * 2);
    this.rope?.cos.dispose();
    this.rope?.sin.dispose();
    this.rope = { ...rotaryTables(length, headDim(this.config), this.config.rope_theta), length };
  }

  /** RMSNorm: x / sqrt(mean(x^2) + eps) * weight, over the hidden axis. */
  private rmsNorm(x: tf.Tensor3D, weightName: string): tf.Tensor3D {
    const variance = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, this.config.rms_norm_eps))), this.weight(weightName));
  }

  /** SwiGLU: down(silu(gate(x)) * up(x)). */
  private feedForward(prefix: string, x: tf.Tensor3D): tf.Tensor3D {
    const [b, t, d] = x.shape;
    const x2 = tf.reshape(x, [b * t, d]) as tf.Tensor2D;
    const gate = this.linear(`${prefix}.mlp.gate_proj`, x2);
    const up = this.linear(`${prefix}.mlp.up_proj`, x2);
    const hidden = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D;
    return tf.reshape(this.linear(`${prefix}.mlp.down_proj`, hidden), [b, t, d]);
  }

  /**
   * Causal self-attention with rotary positions and grouped-query heads. The
   * query heads sharing a key/value head are stacked along the time axis, so
   * grouped-query attention is one batched matMul with no repeated keys.
   */
  private attention(
    layer: number,
    x: tf.Tensor3D,
    cos: tf.Tensor,
    sin: tf.Tensor,
    bias: tf.Tensor,
    cache: KvCache | undefined,
  ): tf.Tensor3D {
    const cfg = this.config;
    const [b, t, d] = x.shape;
    const hd = headDim(cfg);
    const nh = cfg.num_attention_heads;
    const nkv = cfg.num_key_value_heads;
    const group = nh / nkv;
    const p = `model.layers.${layer}.self_attn`;
    const x2 = tf.reshape(x, [b * t, d]) as tf.Tensor2D;
    const q = applyRotary(tf.reshape(tf.mul(this.linear(`${p}.q_proj`, x2), 1 / Math.sqrt(hd)), [b, t, nh, hd]), cos, sin);
    const k = applyRotary(tf.reshape(this.linear(`${p}.k_proj`, x2), [b, t, nkv, hd]), cos, sin);
    const v = tf.reshape(this.linear(`${p}.v_proj`, x2), [b, t, nkv, hd]);
    // Keys transposed to [b, kv, hd, t] once here, so scores need no transposed matMul.
    let keysT = tf.transpose(k, [0, 2, 3, 1]) as tf.Tensor4D;
    let values = tf.transpose(v, [0, 2, 1, 3]) as tf.Tensor4D;
    if (cache) ({ keysT, values } = cache.append(layer, keysT, values));
    const total = keysT.shape[3];
    // [b, t, nh, hd] -> [b, nh, t, hd] -> [b, kv, group * t, hd] (head h uses kv head h / group, as HF's repeat_kv).
    const queries = tf.reshape(tf.transpose(q, [0, 2, 1, 3]), [b, nkv, group * t, hd]);
    const scores = tf.reshape(tf.matMul(queries, keysT), [b, nkv, group, t, total]);
    const probs = tf.softmax(tf.add(scores, bias));
    const context = tf.matMul(tf.reshape(probs, [b, nkv, group * t, total]), values);
    const merged = tf.reshape(tf.transpose(tf.reshape(context, [b, nh, t, hd]), [0, 2, 1, 3]), [b * t, d]) as tf.Tensor2D;
    return tf.reshape(this.linear(`${p}.o_proj`, merged), [b, t, d]);
  }
}

/** In-memory shape of a weight: HF's, transposed for projections. */
export function memoryShape(cfg: LlamaConfig, name: string): number[] {
  const s = hfShape(cfg, name);
  return isTransposedInMemory(name) ? [s[1] as number, s[0] as number] : s;
}

/**
 * Rotary embedding, rotate-half convention: x * cos + rotate_half(x) * sin.
 * rotate_half is a reverse of the two halves with the sign folded into the sin
 * table, so it costs one op. x: [b, t, heads, hd]; cos/sin: [b, t, hd].
 */
function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  const [b, t, heads, hd] = x.shape as [number, number, number, number];
  const halves = tf.reshape(x, [b, t, heads, 2, hd / 2]);
  const c = tf.reshape(cos, [b, t, 1, 2, hd / 2]);
  const s = tf.reshape(sin, [b, t, 1, 2, hd / 2]);
  return tf.reshape(tf.add(tf.mul(halves, c), tf.mul(tf.reverse(halves, 3), s)), [b, t, heads, hd]);
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

/** Additive bias [b, 1, 1, t, total]: 0 where query i may see key j (causal and not padding), -1e9 elsewhere. */
function attentionBias(mask: Int32Array | undefined, batch: number, past: number, t: number): tf.Tensor {
  const total = past + t;
  const data = new Float32Array(batch * t * total);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < t; i++) {
      const row = (b * t + i) * total;
      for (let j = 0; j < total; j++) {
        const visible = j <= past + i && (!mask || mask[b * total + j] === 1);
        if (!visible) data[row + j] = -1e9;
      }
    }
  }
  return tf.tensor(data, [batch, 1, 1, t, total], "float32");
}
