/**
 * AdamW with decoupled weight decay (Loshchilov & Hutter), written over named
 * tf.Variables so that its state is ours to save and restore exactly, and so
 * that decay can be switched off per parameter (norms and embeddings).
 *
 * Per parameter p with gradient g at step t (1-based):
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= lr * ( (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * p )
 * which is PyTorch's torch.optim.AdamW.
 */
import * as tf from "@tensorflow/tfjs";
import { adamWStep, fusedSumOfSquares } from "../engine/fused.js";

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
  /** Which parameters get weight decay (default: all). */
  decay?: (name: string) => boolean;
}

export interface AdamWState {
  step: number;
  /** First and second moments by parameter name. */
  moments: Record<string, { m: Float32Array; v: Float32Array; shape: number[] }>;
}

/** Parameters excluded from weight decay by default: norms, biases and embeddings. */
export function defaultDecay(name: string): boolean {
  return !/(norm|bias|embed_tokens)/.test(name);
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  private readonly decay: (name: string) => boolean;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  /** Updates applied so far. */
  step = 0;

  constructor(options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.decay = options.decay ?? defaultDecay;
  }

  /**
   * Applies one update with learning rate `lr` to each named variable that has
   * a gradient; the gradient used is `grads[name] * gradScale` (clipping and
   * accumulation folded in: the product is the first operation either way).
   */
  apply(params: ReadonlyMap<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number, gradScale = 1): void {
    this.step++;
    const t = this.step;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    const hyper = { beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon, lr, bc1, bc2 };
    const todo = [...params].filter(([name]) => grads[name]);
    const entries = todo.map(([name, p]) => ({
      p,
      g: grads[name] as tf.Tensor,
      m: this.slot(this.m, name, p),
      v: this.slot(this.v, name, p),
      decay: this.decay(name),
    }));
    // Every variable in one native call on wasm with the addon, else TF.js ops (same float32 operations, same order).
    adamWStep(entries, { ...hyper, weightDecay: this.weightDecay, gradScale });
  }

  private slot(slots: Map<string, tf.Variable>, name: string, p: tf.Variable): tf.Variable {
    let s = slots.get(name);
    if (!s) {
      // Unnamed: TF.js variable names are global, and two optimisers may hold the same parameter names.
      s = tf.tidy(() => tf.variable(tf.zerosLike(p), false));
      slots.set(name, s);
    }
    return s;
  }

  /** A copy of the optimiser state (moments read back to the host). */
  async getState(): Promise<AdamWState> {
    const moments: AdamWState["moments"] = {};
    for (const [name, m] of this.m) {
      const v = this.v.get(name) as tf.Variable;
      moments[name] = { m: (await m.data()) as Float32Array, v: (await v.data()) as Float32Array, shape: m.shape };
    }
    return { step: this.step, moments };
  }

  /** Restores a state from {@link getState}, replacing any current moments. */
  setState(state: AdamWState): void {
    this.dispose();
    this.step = state.step;
    for (const [name, { m, v, shape }] of Object.entries(state.moments)) {
      this.m.set(
        name,
        tf.tidy(() => tf.variable(tf.tensor(m, shape), false)),
      );
      this.v.set(
        name,
        tf.tidy(() => tf.variable(tf.tensor(v, shape), false)),
      );
    }
  }

  /** Frees the moment tensors. */
  dispose(): void {
    for (const s of [...this.m.values(), ...this.v.values()]) s.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/**
 * The global L2 norm of `grads`, its squares accumulated in double: in one
 * native pass on wasm with the addon, on the host on the other CPU backends
 * (the same order of additions, so both give the same bits), with TF.js ops on
 * GPU backends. (TF.js's float32 Sum drifts by ~1e-4 relative over a million
 * elements, enough to move a clipped run off its native twin.)
 */
export function globalNorm(grads: Record<string, tf.Tensor>): number {
  const list = Object.values(grads);
  const native = fusedSumOfSquares(list);
  if (native !== undefined) return Math.sqrt(native);
  if (["cpu", "wasm"].includes(tf.getBackend())) {
    let total = 0;
    for (const g of list) total += sumOfSquares(g.dataSync() as Float32Array);
    return Math.sqrt(total);
  }
  return tf.tidy(() => tf.sqrt(tf.addN(list.map((g) => g.square().sum()))).dataSync()[0] as number);
}

/** Sum of x^2 in double, in eight interleaved partial sums: the native kernel's order (src/engine/native). */
function sumOfSquares(x: Float32Array): number {
  const part = new Float64Array(8);
  const n = x.length;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    for (let k = 0; k < 8; k++) {
      const v = x[i + k] as number;
      part[k] = (part[k] as number) + v * v;
    }
  }
  let total = 0;
  for (; i < n; i++) total += (x[i] as number) * (x[i] as number);
  for (let k = 0; k < 8; k++) total += part[k] as number;
  return total;
}

/**
 * The factor that brings a gradient of global norm `norm` to at most
 * `maxNorm` (torch.nn.utils.clip_grad_norm_: maxNorm / (norm + 1e-6)), or 1
 * when no clipping applies (no maxNorm, a non-finite norm, or norm <= maxNorm).
 */
export function clipScale(norm: number, maxNorm: number | undefined): number {
  if (maxNorm === undefined || !(maxNorm > 0) || !Number.isFinite(norm) || norm <= maxNorm) return 1;
  return maxNorm / (norm + 1e-6);
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_); returns the norm before clipping. The
 * inputs are disposed when scaled copies replace them.
 */
export function clipByGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number | undefined,
): { norm: number; grads: Record<string, tf.Tensor> } {
  const norm = globalNorm(grads);
  const scale = clipScale(norm, maxNorm);
  if (scale === 1) return { norm, grads };
  const out: Record<string, tf.Tensor> = {};
  for (const [name, g] of Object.entries(grads)) {
    out[name] = g.mul(scale);
    g.dispose();
  }
  return { norm, grads: out };
}
