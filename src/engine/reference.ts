/**
 * A self-contained LLaMA-style training step written from TF.js ops, used to
 * check that backends agree (parity tests) and to measure them (bench/engine.ts).
 * It exercises every op family a real LLaMA step needs: embedding gather,
 * RMSNorm, rotary attention with a causal mask, SwiGLU, masked cross-entropy
 * and Adam. bench/torch_baseline.py builds the same model in PyTorch.
 *
 * It is deliberately independent of src/model so that an engine regression
 * shows up here even while the model code changes.
 *
 * @example
 * const step = ReferenceLlama.init(TINY_LLAMA, 7);
 * const batch = referenceBatch(TINY_LLAMA, 8, 7);
 * const loss = await step.trainStep(batch); // one Adam step, returns the loss before it
 * step.dispose(); batch.dispose();
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../util/rng.js";
import { rotaryEmbedding, softmaxCrossEntropy } from "./fused.js";

export interface ReferenceConfig {
  vocabSize: number;
  dim: number;
  nLayers: number;
  nHeads: number;
  /** SwiGLU hidden size. */
  hiddenDim: number;
  seqLen: number;
  normEps: number;
}

/** The tiny benchmark model of issue 2 (vocab 512, d 128, 2 layers, 4 heads, seq 64, SwiGLU 384). */
export const TINY_LLAMA: ReferenceConfig = { vocabSize: 512, dim: 128, nLayers: 2, nHeads: 4, hiddenDim: 384, seqLen: 64, normEps: 1e-5 };
/** The larger benchmark model (vocab 8192, d 512, 8 layers, 8 heads, seq 256, SwiGLU 1376). */
export const LARGER_LLAMA: ReferenceConfig = {
  vocabSize: 8192,
  dim: 512,
  nLayers: 8,
  nHeads: 8,
  hiddenDim: 1376,
  seqLen: 256,
  normEps: 1e-5,
};
/** A model small enough for a test on the slow cpu backend. */
export const TEST_LLAMA: ReferenceConfig = { vocabSize: 64, dim: 32, nLayers: 2, nHeads: 2, hiddenDim: 96, seqLen: 16, normEps: 1e-5 };

/** Token ids and next-token labels; label -1 marks a position without loss (the prompt). */
export interface ReferenceBatch {
  inputIds: tf.Tensor2D;
  labels: tf.Tensor2D;
  dispose(): void;
}

/**
 * A seeded batch: random tokens, labels shifted by one, the first quarter of
 * each row masked out as if it were the instruction.
 */
export function referenceBatch(config: ReferenceConfig, batchSize: number, seed: number): ReferenceBatch {
  const rng = new Rng(seed).fork("batch");
  const t = config.seqLen;
  const tokens = new Int32Array(batchSize * (t + 1));
  for (let i = 0; i < tokens.length; i++) tokens[i] = rng.int(config.vocabSize);
  const ids = new Int32Array(batchSize * t);
  const labels = new Int32Array(batchSize * t);
  for (let b = 0; b < batchSize; b++) {
    for (let i = 0; i < t; i++) {
      ids[b * t + i] = tokens[b * (t + 1) + i] as number;
      labels[b * t + i] = i < t / 4 ? -1 : (tokens[b * (t + 1) + i + 1] as number);
    }
  }
  const inputIds = tf.tensor2d(ids, [batchSize, t], "int32");
  const labelTensor = tf.tensor2d(labels, [batchSize, t], "int32");
  return {
    inputIds,
    labels: labelTensor,
    dispose: () => {
      inputIds.dispose();
      labelTensor.dispose();
    },
  };
}

function gaussian(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * std;
  return out;
}

/** Parameter names and shapes in a fixed order (the order PyTorch's baseline uses too). */
export function referenceParamShapes(c: ReferenceConfig): [string, number[]][] {
  const shapes: [string, number[]][] = [["embed", [c.vocabSize, c.dim]]];
  for (let l = 0; l < c.nLayers; l++) {
    shapes.push(
      [`l${l}.attn_norm`, [c.dim]],
      [`l${l}.wq`, [c.dim, c.dim]],
      [`l${l}.wk`, [c.dim, c.dim]],
      [`l${l}.wv`, [c.dim, c.dim]],
      [`l${l}.wo`, [c.dim, c.dim]],
      [`l${l}.ffn_norm`, [c.dim]],
      [`l${l}.w1`, [c.dim, c.hiddenDim]],
      [`l${l}.w3`, [c.dim, c.hiddenDim]],
      [`l${l}.w2`, [c.hiddenDim, c.dim]],
    );
  }
  shapes.push(["norm", [c.dim]], ["lm_head", [c.dim, c.vocabSize]]);
  return shapes;
}

export class ReferenceLlama {
  readonly config: ReferenceConfig;
  readonly params: Map<string, tf.Variable>;
  private readonly optimizer: tf.Optimizer;
  private readonly cos: tf.Tensor2D;
  private readonly sin: tf.Tensor2D;
  private readonly causalMask: tf.Tensor2D;

  private constructor(config: ReferenceConfig, params: Map<string, tf.Variable>, learningRate: number) {
    this.config = config;
    this.params = params;
    this.optimizer = tf.train.adam(learningRate);
    const half = config.dim / config.nHeads / 2;
    const cos = new Float32Array(config.seqLen * half * 2);
    const sin = new Float32Array(config.seqLen * half * 2);
    for (let p = 0; p < config.seqLen; p++) {
      for (let i = 0; i < half; i++) {
        const angle = p / 10000 ** ((2 * i) / (2 * half));
        // rotate-half layout (as in HF LLaMA): both halves share frequency i.
        for (const j of [i, i + half]) {
          cos[p * 2 * half + j] = Math.cos(angle);
          sin[p * 2 * half + j] = Math.sin(angle);
        }
      }
    }
    this.cos = tf.tensor2d(cos, [config.seqLen, 2 * half]);
    this.sin = tf.tensor2d(sin, [config.seqLen, 2 * half]);
    const mask = new Float32Array(config.seqLen * config.seqLen);
    for (let i = 0; i < config.seqLen; i++) for (let j = i + 1; j < config.seqLen; j++) mask[i * config.seqLen + j] = -1e9;
    this.causalMask = tf.tensor2d(mask, [config.seqLen, config.seqLen]);
  }

  /** Seeded initialisation: N(0, 0.02) weights, unit norm gains; the same on every backend. */
  static init(config: ReferenceConfig, seed: number, learningRate = 1e-3): ReferenceLlama {
    const rng = new Rng(seed).fork("reference-llama");
    const params = new Map<string, tf.Variable>();
    for (const [name, shape] of referenceParamShapes(config)) {
      const size = shape.reduce((a, b) => a * b, 1);
      const values = shape.length === 1 ? new Float32Array(size).fill(1) : gaussian(rng, size, 0.02);
      params.set(name, tf.variable(tf.tensor(values, shape), true, name));
    }
    return new ReferenceLlama(config, params, learningRate);
  }

  private p(name: string): tf.Variable {
    return this.params.get(name) as tf.Variable;
  }

  private rmsNorm(x: tf.Tensor, gain: tf.Tensor): tf.Tensor {
    const ms = x.square().mean(-1, true);
    return x.mul(ms.add(this.config.normEps).rsqrt()).mul(gain);
  }

  private rotary(x: tf.Tensor4D): tf.Tensor4D {
    return rotaryEmbedding(x, this.cos, this.sin);
  }

  private attention(h: tf.Tensor2D, l: number, batch: number): tf.Tensor2D {
    const { nHeads, dim, seqLen } = this.config;
    const hd = dim / nHeads;
    const heads = (w: string): tf.Tensor4D =>
      h
        .matMul(this.p(`l${l}.${w}`))
        .reshape([batch, seqLen, nHeads, hd])
        .transpose([0, 2, 1, 3]) as tf.Tensor4D;
    const q = this.rotary(heads("wq"));
    const k = this.rotary(heads("wk"));
    const v = heads("wv");
    const scores = tf
      .matMul(q, k, false, true)
      .mul(1 / Math.sqrt(hd))
      .add(this.causalMask);
    const out = tf.matMul(tf.softmax(scores), v); // [B, H, T, hd]
    return out
      .transpose([0, 2, 1, 3])
      .reshape([batch * seqLen, dim])
      .matMul(this.p(`l${l}.wo`)) as tf.Tensor2D;
  }

  private feedForward(h: tf.Tensor2D, l: number): tf.Tensor2D {
    const gate = h.matMul(this.p(`l${l}.w1`));
    const up = h.matMul(this.p(`l${l}.w3`));
    return tf
      .mul(gate, tf.sigmoid(gate))
      .mul(up)
      .matMul(this.p(`l${l}.w2`)) as tf.Tensor2D;
  }

  /** Mean cross-entropy over positions whose label is not -1. */
  loss(inputIds: tf.Tensor2D, labels: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => {
      const [batch] = inputIds.shape;
      const n = batch * this.config.seqLen;
      let x = tf.gather(this.p("embed"), inputIds.reshape([n])) as tf.Tensor2D;
      for (let l = 0; l < this.config.nLayers; l++) {
        x = x.add(this.attention(this.rmsNorm(x, this.p(`l${l}.attn_norm`)) as tf.Tensor2D, l, batch));
        x = x.add(this.feedForward(this.rmsNorm(x, this.p(`l${l}.ffn_norm`)) as tf.Tensor2D, l));
      }
      const logits = (this.rmsNorm(x, this.p("norm")) as tf.Tensor2D).matMul(this.p("lm_head"));
      const flat = labels.reshape([n]) as tf.Tensor1D;
      const count = flat.greaterEqual(0).toFloat().sum().maximum(1);
      return softmaxCrossEntropy(logits as tf.Tensor2D, flat)
        .sum()
        .div(count) as tf.Scalar;
    });
  }

  /** One Adam step; returns the loss before the update (read asynchronously: webgpu cannot read synchronously in Node). */
  async trainStep(batch: ReferenceBatch): Promise<number> {
    const loss = this.optimizer.minimize(() => this.loss(batch.inputIds, batch.labels), true) as tf.Scalar;
    const value = (await loss.data())[0] as number;
    loss.dispose();
    return value;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.optimizer.dispose();
    this.cos.dispose();
    this.sin.dispose();
    this.causalMask.dispose();
  }
}
