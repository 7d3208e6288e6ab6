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
import { fusedAdamWStep } from "../engine/fused.js";

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

  /** Applies one update with learning rate `lr` to each named variable that has a gradient. */
  apply(params: ReadonlyMap<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr: number): void {
    this.step++;
    const t = this.step;
    const bc1 = 1 - this.beta1 ** t;
    const bc2 = 1 - this.beta2 ** t;
    for (const [name, p] of params) {
      const g = grads[name];
      if (!g) continue;
      const m = this.slot(this.m, name, p);
      const v = this.slot(this.v, name, p);
      const wd = this.decay(name) ? this.weightDecay : 0;
      // One native pass per variable on wasm with the addon (same float32 operations, same order).
      const fused = fusedAdamWStep(p, g, m, v, {
        beta1: this.beta1,
        beta2: this.beta2,
        epsilon: this.epsilon,
        weightDecay: wd,
        lr,
        bc1,
        bc2,
      });
      if (fused) {
        p.assign(fused);
        fused.dispose();
        continue;
      }
      tf.tidy(() => {
        const mNew = m.mul(this.beta1).add(g.mul(1 - this.beta1));
        const vNew = v.mul(this.beta2).add(g.square().mul(1 - this.beta2));
        const update = mNew.div(bc1).div(vNew.div(bc2).sqrt().add(this.epsilon));
        const decayed = wd > 0 ? p.sub(p.mul(lr * wd)) : p;
        m.assign(mNew);
        v.assign(vNew);
        p.assign(decayed.sub(update.mul(lr)));
      });
    }
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
 * Scales gradients in place so their global L2 norm is at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
 */
export function clipByGlobalNorm(
  grads: Record<string, tf.Tensor>,
  maxNorm: number | undefined,
): { norm: number; grads: Record<string, tf.Tensor> } {
  const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => g.square().sum()))).dataSync()[0] as number);
  if (maxNorm === undefined || !(maxNorm > 0) || !Number.isFinite(norm) || norm <= maxNorm) return { norm, grads };
  const scale = maxNorm / (norm + 1e-6);
  const out: Record<string, tf.Tensor> = {};
  for (const [name, g] of Object.entries(grads)) {
    out[name] = g.mul(scale);
    g.dispose();
  }
  return { norm, grads: out };
}
