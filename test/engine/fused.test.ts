// Fused native kernels (src/engine/fused.ts) against the unfused TF.js ops they replace, and the trainer's
// losses with every native kernel on against plain wasm over 20 steps on both benchmark models. Every fused op
// through its one definition: native and fallback paths agree, a native kernel (forward or gradient) that throws
// frees what it allocated, and the fallbacks compute what they did before defineFused (the cross-entropy's
// without a one-hot, to 1e-6; rotary's matMul exactly as split/concat).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { TrainSchema } from "../../src/config/schema.js";
import {
  adamWStep,
  decoderLayer,
  embeddingLookup,
  fusedSumOfSquares,
  lmHeadLoss,
  rmsNormalize,
  rotaryEmbedding,
  softmaxCrossEntropy,
  swiglu,
  useFusedLayers,
} from "../../src/engine/fused.js";
import { initEngine, nativeFusedOn, nativeStatus, tf, useNativeFused, useNativeMatMul } from "../../src/engine/index.js";
import type { NativeAddon } from "../../src/engine/native.js";
import { BENCHMARK_MODELS, benchmarkConfig } from "../../src/model/benchmarks.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { causalLmLoss } from "../../src/model/loss.js";
import { RotaryTables } from "../../src/model/rope.js";
import { AdamW, globalNorm } from "../../src/train/adamw.js";
import { packedBatches } from "../../src/train/batches.js";
import { train } from "../../src/train/trainer.js";
import { modelPersistence } from "../../src/train/weights.js";
import { Rng } from "../../src/util/rng.js";

const status = nativeStatus();
const skipNative = status.available ? false : `native addon not built here: ${status.reason}`;

function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale),
    shape,
  );
}

function setNative(on: boolean, addon: NativeAddon | undefined = status.addon): void {
  useNativeMatMul(on ? status.addon : undefined);
  useNativeFused(on ? addon : undefined);
  assert.equal(nativeFusedOn(), on);
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    assert.ok(d <= tol * Math.max(1, Math.abs(b[i] as number)), `${what}[${i}]: ${a[i]} vs ${b[i]} (|diff| ${d})`);
  }
}

/** Value and the gradients of sum(f(xs) * w) with respect to every input, fused or not. */
function valueAndGrads(native: boolean, f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], w: tf.Tensor): Float32Array[] {
  setNative(native);
  const y = f(...xs);
  const grads = tf.grads((...ins: tf.Tensor[]) =>
    f(...ins)
      .mul(w)
      .sum(),
  )(xs);
  const out = [y, ...grads].map((t) => t.dataSync() as Float32Array);
  tf.dispose([y, ...grads]);
  return out;
}

test("fused RMSNorm: value and gradient equal the unfused ops", { skip: skipNative }, async () => {
  await initEngine({ backend: "wasm" });
  // 300 rows x 160: large enough that the kernel splits its rows over threads when they are on.
  for (const [rows, d] of [
    [5, 8],
    [300, 160],
  ] as const) {
    const x = randomTensor([rows, d], 1, 3);
    const w = randomTensor([rows, d], 2);
    const f = (v: tf.Tensor) => rmsNormalize(v as tf.Tensor2D, 1e-5);
    for (const threads of [1, 2]) {
      status.addon?.setElementwiseThreads(threads);
      const plain = valueAndGrads(false, f, [x], w);
      const fused = valueAndGrads(true, f, [x], w);
      assertClose(fused[0] as Float32Array, plain[0] as Float32Array, 1e-5, `y ${rows}x${d} ${threads}t`);
      assertClose(fused[1] as Float32Array, plain[1] as Float32Array, 1e-5, `dx ${rows}x${d} ${threads}t`);
    }
    status.addon?.setElementwiseThreads(1);
    tf.dispose([x, w]);
  }
});

test("fused SwiGLU: value and both gradients equal silu(gate) * up from TF.js ops", { skip: skipNative }, async () => {
  await initEngine({ backend: "wasm" });
  for (const shape of [
    [7, 9],
    [256, 200],
  ]) {
    const gate = randomTensor(shape, 3, 4);
    const up = randomTensor(shape, 4);
    const w = randomTensor(shape, 5);
    for (const threads of [1, 2]) {
      status.addon?.setElementwiseThreads(threads);
      const plain = valueAndGrads(false, swiglu, [gate, up], w);
      const fused = valueAndGrads(true, swiglu, [gate, up], w);
      assertClose(fused[0] as Float32Array, plain[0] as Float32Array, 1e-5, "y");
      assertClose(fused[1] as Float32Array, plain[1] as Float32Array, 1e-5, "dgate");
      assertClose(fused[2] as Float32Array, plain[2] as Float32Array, 1e-5, "dup");
    }
    status.addon?.setElementwiseThreads(1);
    tf.dispose([gate, up, w]);
  }
});

test("the LM loss through the fused cross-entropy equals the unfused loss, with its gradient (ignored labels included)", {
  skip: skipNative,
}, async () => {
  await initEngine({ backend: "wasm" });
  const logits = randomTensor([2, 5, 37], 6, 3);
  const labels = tf.tensor2d([3, -100, 0, 36, 7, -100, 1, 2, 30, -100], [2, 5], "int32");
  const run = (native: boolean): Float32Array[] => {
    setNative(native);
    const value = causalLmLoss(logits, labels);
    const loss = value.dataSync() as Float32Array;
    const grad = tf.grad((x: tf.Tensor) => causalLmLoss(x, labels))(logits);
    const out = [loss, grad.dataSync() as Float32Array];
    tf.dispose([value, grad]);
    return out;
  };
  const plain = run(false);
  const fused = run(true);
  assertClose(fused[0] as Float32Array, plain[0] as Float32Array, 1e-6, "loss");
  assertClose(fused[1] as Float32Array, plain[1] as Float32Array, 1e-6, "dlogits");
  tf.dispose([logits, labels]);
});

test("fused AdamW gives bit-identical parameters and moments to the TF.js update (decay on and off, gradient scale, 3 steps)", {
  skip: skipNative,
}, async () => {
  await initEngine({ backend: "wasm" });
  const shapes: Record<string, number[]> = { "layers.0.q_proj.weight": [40, 30], "layers.0.input_layernorm.weight": [30], big: [70000] };
  const run = async (native: boolean, threads: number, gradScale: number) => {
    setNative(native);
    status.addon?.setElementwiseThreads(threads);
    const params = new Map(Object.entries(shapes).map(([n, s], i) => [n, tf.variable(randomTensor(s, 10 + i), true)]));
    const opt = new AdamW({ weightDecay: 0.1, decay: (n) => !n.includes("norm") });
    for (let step = 0; step < 3; step++) {
      const grads = Object.fromEntries(Object.entries(shapes).map(([n, s], i) => [n, randomTensor(s, 100 * step + i)]));
      opt.apply(params, grads, 1e-3 * (step + 1), gradScale);
      tf.dispose(Object.values(grads));
    }
    const state = await opt.getState();
    const values = Object.fromEntries([...params].map(([n, p]) => [n, p.dataSync() as Float32Array]));
    opt.dispose();
    for (const p of params.values()) p.dispose();
    status.addon?.setElementwiseThreads(1);
    return { state, values };
  };
  for (const gradScale of [1, 0.37]) {
    const plain = await run(false, 1, gradScale);
    for (const threads of [1, 2]) {
      const fused = await run(true, threads, gradScale);
      for (const name of Object.keys(shapes)) {
        const what = `${name} (${threads} threads, gradient scale ${gradScale})`;
        assert.deepEqual(fused.values[name], plain.values[name], what);
        assert.deepEqual(fused.state.moments[name]?.m, plain.state.moments[name]?.m, `${what} m`);
        assert.deepEqual(fused.state.moments[name]?.v, plain.state.moments[name]?.v, `${what} v`);
      }
    }
  }
});

/** A small LLaMA with grouped-query heads (4 query heads over 2 key/value heads) and untied head. */
const GQA_CONFIG = {
  ...CONFIG_DEFAULTS,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 97,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 32,
} as LlamaConfig;

/** The seeded GQA model and a batch: row 0 unpadded, row 1 right-padded, row 2 left-padded (its first query rows see no real key). */
function gqaBatch(): { model: LlamaModel; ids: tf.Tensor2D; mask: tf.Tensor2D; labels: tf.Tensor2D } {
  const model = LlamaModel.init(GQA_CONFIG, new Rng(5), { initializerRange: 0.1 });
  const rng = new Rng(6);
  const ids = tf.tensor2d(
    Int32Array.from({ length: 3 * 12 }, () => rng.int(97)),
    [3, 12],
    "int32",
  );
  const maskRows = [Array(12).fill(1), [...Array(8).fill(1), ...Array(4).fill(0)], [...Array(5).fill(0), ...Array(7).fill(1)]];
  const mask = tf.tensor2d(maskRows, [3, 12], "int32");
  const labels = tf.tensor2d(
    maskRows.flatMap((row) => row.map((m) => (m ? rng.int(97) : -100))),
    [3, 12],
    "int32",
  );
  return { model, ids, mask, labels };
}

/** Loss, logits and every weight's gradient of a seeded GQA model on a padded batch, and the kernels that ran. */
async function lossAndGrads(mode: "plain" | "per-op" | "layer"): Promise<{ values: Float32Array[]; kernels: string[] }> {
  setNative(mode !== "plain");
  useFusedLayers(mode === "layer");
  const { model, ids, mask, labels } = gqaBatch();
  try {
    let out: Float32Array[] = [];
    const profile = await tf.profile(() => {
      const logits = model.forward(ids, { attentionMask: mask });
      const { value, grads } = tf.variableGrads(() => model.loss(ids, labels, mask));
      out = [value, logits, ...[...model.variables.values()].map((v) => grads[v.name] as tf.Tensor)].map(
        (t) => t.dataSync() as Float32Array,
      );
      tf.dispose([value, logits, ...Object.values(grads)]);
    });
    return { values: out, kernels: profile.kernels.map((k) => k.name) };
  } finally {
    useFusedLayers(true);
    model.dispose();
    tf.dispose([ids, mask, labels]);
  }
}

test("fused decoder layer: loss, logits and every weight's gradient equal the per-op kernels and plain wasm (GQA, left and right padding)", {
  skip: skipNative,
}, async () => {
  await initEngine({ backend: "wasm" });
  const plain = await lossAndGrads("plain");
  const perOp = await lossAndGrads("per-op");
  const layer = await lossAndGrads("layer");
  assert.ok(layer.kernels.includes("XalignDecoderLayer") && layer.kernels.includes("XalignDecoderLayerGrad"), "the layer kernel ran");
  assert.ok(!perOp.kernels.includes("XalignDecoderLayer"), "the per-op path ran without it");
  assert.equal(layer.values.length, 3 + 2 * 9 + 2);
  for (let i = 0; i < layer.values.length; i++) {
    const what = i === 0 ? "loss" : i === 1 ? "logits" : `gradient ${i - 2}`;
    const scale = Math.max(...Array.from(plain.values[i] as Float32Array, Math.abs));
    assertClose(layer.values[i] as Float32Array, plain.values[i] as Float32Array, 2e-5 * Math.max(1, scale), `${what} vs plain`);
    assertClose(layer.values[i] as Float32Array, perOp.values[i] as Float32Array, 2e-5 * Math.max(1, scale), `${what} vs per-op`);
  }
});

test("native embedding: rows and their gradient equal tf.gather's; an id outside the vocabulary is a RangeError naming it", {
  skip: skipNative,
}, async () => {
  await initEngine({ backend: "wasm" });
  const table = randomTensor([11, 6], 21) as tf.Tensor2D;
  const ids = tf.tensor2d(
    [
      [3, 0, 10],
      [3, 3, 7],
    ],
    [2, 3],
    "int32",
  );
  const w = randomTensor([6, 6], 22);
  const run = (native: boolean) => valueAndGrads(native, (t) => embeddingLookup(t as tf.Tensor2D, ids), [table], w);
  const plain = run(false);
  const fused = run(true);
  assert.deepEqual(fused[0], plain[0], "rows");
  assertClose(fused[1] as Float32Array, plain[1] as Float32Array, 1e-6, "gradient (id 3 three times)");
  const bad = tf.tensor1d([2, 11], "int32");
  const before = tf.memory().numBytes;
  assert.throws(() => embeddingLookup(table, bad), /token id 11 at position 1 is outside the vocabulary \[0, 11\)/);
  assert.equal(tf.memory().numBytes, before, "the rejected call leaks no tensor memory");
  tf.dispose([table, ids, w, bad]);
});

test("a label outside the vocabulary is a RangeError naming it on the native loss paths, and leaks nothing", {
  skip: skipNative,
}, async () => {
  await initEngine({ backend: "wasm" });
  setNative(true);
  const model = LlamaModel.init(GQA_CONFIG, new Rng(8));
  const ids = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
  const labels = tf.tensor2d([[2, 3, 97, -100]], [1, 4], "int32");
  const logits = tf.zeros([1, 4, 97]);
  const before = tf.memory().numTensors;
  assert.throws(() => model.loss(ids, labels), /label 97 at position 2 is outside the vocabulary \[0, 97\)/);
  assert.throws(
    () => causalLmLoss(logits, labels),
    /label 97 at position 2 is outside the vocabulary/,
    "the per-op fused cross-entropy says the same",
  );
  assert.equal(tf.memory().numTensors, before, "nothing is left behind");
  model.dispose();
  tf.dispose([ids, labels, logits]);
});

test("the fused layer's attention split over two worker threads gives the same bits as one thread", { skip: skipNative }, async () => {
  await initEngine({ backend: "wasm" });
  setNative(true);
  // Enough (batch x kv head) work to cross the threading threshold: 2 x 2 pairs of 2 query heads, 128 x 128 x 32.
  const config = {
    ...GQA_CONFIG,
    hidden_size: 128,
    intermediate_size: 64,
    num_hidden_layers: 1,
    max_position_embeddings: 128,
  } as LlamaConfig;
  const run = (threads: number): Float32Array[] => {
    status.addon?.setElementwiseThreads(threads);
    const model = LlamaModel.init(config, new Rng(9), { initializerRange: 0.1 });
    const rng = new Rng(10);
    const ids = tf.tensor2d(
      Int32Array.from({ length: 2 * 128 }, () => rng.int(97)),
      [2, 128],
      "int32",
    );
    const labels = tf.tensor2d(
      Int32Array.from({ length: 2 * 128 }, () => rng.int(97)),
      [2, 128],
      "int32",
    );
    const { value, grads } = tf.variableGrads(() => model.loss(ids, labels));
    const out = [value, ...[...model.variables.values()].map((v) => grads[v.name] as tf.Tensor)].map((t) => t.dataSync() as Float32Array);
    tf.dispose([value, ids, labels, ...Object.values(grads)]);
    model.dispose();
    return out;
  };
  try {
    const one = run(1);
    const two = run(2);
    assert.equal(two.length, one.length);
    for (let i = 0; i < one.length; i++) assert.deepEqual(two[i], one[i], i === 0 ? "loss" : `gradient ${i - 1}`);
  } finally {
    status.addon?.setElementwiseThreads(1);
  }
});

test("global gradient norm: the native pass equals the host's double sum bit for bit, and TF.js's float32 sum to 1e-3", {
  skip: skipNative,
}, async () => {
  await initEngine({ backend: "wasm" });
  const grads = { a: randomTensor([300, 301], 31), b: randomTensor([7], 32), c: randomTensor([65, 3], 33, 10) };
  setNative(true);
  const native = globalNorm(grads);
  assert.ok(fusedSumOfSquares(Object.values(grads)) !== undefined);
  setNative(false);
  const host = globalNorm(grads);
  const viaOps = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => g.square().sum()))).dataSync()[0] as number);
  assert.equal(native, host);
  assert.ok(Math.abs(native - viaOps) / native < 1e-3, `${native} vs ${viaOps}`);
  let exact = 0;
  for (const g of Object.values(grads)) for (const x of g.dataSync()) exact += x * x;
  assert.ok(Math.abs(native - Math.sqrt(exact)) / native < 1e-12, `${native} vs ${Math.sqrt(exact)}`);
  tf.dispose(Object.values(grads));
});

/** Losses of the trainer's own loop (src/train: AdamW, clipping) on a benchmark model's shapes. */
async function trainerLosses(
  m: { vocab: number; dim: number; layers: number; heads: number; ffn: number },
  seq: number,
  batch: number,
  steps: number,
): Promise<number[]> {
  const config = benchmarkConfig(m, seq);
  const model = LlamaModel.init(config, new Rng(1));
  const rng = new Rng(2);
  // A learnable stream: a fixed random sequence repeated, so the loss falls.
  const period = Array.from({ length: 97 }, () => rng.int(m.vocab));
  const tokens = Int32Array.from({ length: batch * seq * steps + 1 }, (_, i) => period[i % period.length] as number);
  const out = mkdtempSync(join(tmpdir(), "xalign-fused-parity-"));
  try {
    const result = await train({
      model,
      params: model.variables,
      train: packedBatches(tokens, { maxLength: seq, batchSize: batch, seed: 1 }),
      config: TrainSchema.parse({
        max_steps: steps,
        batch_size: batch,
        max_length: seq,
        lr: 1e-3,
        warmup_steps: 2,
        clip_norm: 1,
        weight_decay: 0.01,
      }),
      seed: 1,
      outDir: out,
      ...modelPersistence(model),
      progress: false,
      checkpoints: false,
    });
    return result.history.map((h) => h.loss);
  } finally {
    model.dispose();
    rmSync(out, { recursive: true, force: true });
  }
}

async function assertParity(m: (typeof BENCHMARK_MODELS)[keyof typeof BENCHMARK_MODELS], seq: number, batch: number): Promise<void> {
  await initEngine({ backend: "wasm" });
  setNative(false);
  const plain = await trainerLosses(m, seq, batch, 20);
  setNative(true);
  const native = await trainerLosses(m, seq, batch, 20);
  assert.equal(plain.length, 20);
  for (let i = 0; i < 20; i++) {
    const d = Math.abs((plain[i] as number) - (native[i] as number));
    assert.ok(d <= 1e-4, `step ${i + 1}: native ${native[i]} vs plain wasm ${plain[i]} (|diff| ${d})`);
  }
  assert.ok((native[19] as number) < (native[0] as number), `loss did not fall: ${native.join(", ")}`);
}

test("trainer parity, tiny benchmark model (real sizes): 20 steps with every native kernel equal plain wasm to 1e-4", {
  skip: skipNative,
}, async () => {
  await assertParity(BENCHMARK_MODELS.tiny, BENCHMARK_MODELS.tiny.seq, BENCHMARK_MODELS.tiny.batch);
});

test("trainer parity, larger benchmark model's weights at sequence 32 x batch 2: 20 steps equal plain wasm to 1e-4", {
  skip: skipNative,
}, async () => {
  // The real larger sizes (256 x 4 tokens) take ~30 s a step on plain wasm here; every weight shape is the real one.
  await assertParity(BENCHMARK_MODELS.larger, 32, 2);
});

/** One use of an op on fresh seeded inputs: its value(s), and the gradients of a weighted sum of them. */
interface OpRun {
  value(): tf.Tensor[];
  grads?(): tf.Tensor[];
  dispose(): void;
}

interface OpCase {
  name: string;
  /** The addon functions its forward and gradient kernels call. */
  forward: keyof NativeAddon;
  backward?: keyof NativeAddon;
  make(): OpRun;
}

/** value() and grads() of sum(f(xs) * w) for a differentiable op of `xs`. */
function differentiable(xs: tf.Tensor[], w: tf.Tensor, f: (...xs: tf.Tensor[]) => tf.Tensor, keep: tf.Tensor[] = []): OpRun {
  return {
    value: () => [f(...xs)],
    grads: () => tf.grads((...ins: tf.Tensor[]) => tf.sum(tf.mul(f(...ins), w)))(xs),
    dispose: () => tf.dispose([...xs, w, ...keep]),
  };
}

/** The model's loss (decoder layers and the LM head loss: both layer-level fused ops) on a padded batch, and every weight's gradient. */
function modelRun(): OpRun {
  const { model, ids, mask, labels } = gqaBatch();
  return {
    value: () => [model.loss(ids, labels, mask)],
    grads: () => {
      const { value, grads } = tf.variableGrads(() => model.loss(ids, labels, mask));
      value.dispose();
      return [...model.variables.values()].map((v) => grads[v.name] as tf.Tensor);
    },
    dispose: () => {
      model.dispose();
      tf.dispose([ids, mask, labels]);
    },
  };
}

const CASES: OpCase[] = [
  {
    name: "softmaxCrossEntropy",
    forward: "softmaxXent",
    backward: "softmaxXentGrad",
    make: () => {
      const labels = tf.tensor1d([3, -1, 0, 10, 7, -1], "int32");
      return differentiable([randomTensor([6, 11], 40, 3)], randomTensor([6], 41), (x) => softmaxCrossEntropy(x as tf.Tensor2D, labels), [
        labels,
      ]);
    },
  },
  {
    name: "rotaryEmbedding",
    forward: "rotary",
    backward: "rotary",
    make: () => {
      const [t, d] = [5, 8];
      const { cos, sin } = new RotaryTables(d, 10000).rows([0, 1, 2, 3, 4], [0.7]);
      const f = (x: tf.Tensor) => rotaryEmbedding(x, cos, sin);
      return differentiable([randomTensor([2, 3, t, d], 50)], randomTensor([2, 3, t, d], 51), f, [cos, sin]);
    },
  },
  {
    name: "rmsNormalize",
    forward: "rmsNorm",
    backward: "rmsNormGrad",
    make: () => differentiable([randomTensor([7, 12], 1, 3)], randomTensor([7, 12], 2), (x) => rmsNormalize(x as tf.Tensor2D, 1e-5)),
  },
  {
    name: "swiglu",
    forward: "swiglu",
    backward: "swigluGrad",
    make: () =>
      differentiable([randomTensor([7, 9], 3, 4), randomTensor([7, 9], 4)], randomTensor([7, 9], 5), (g, u) =>
        swiglu(g as tf.Tensor, u as tf.Tensor),
      ),
  },
  {
    name: "embeddingLookup",
    forward: "embedding",
    backward: "embeddingGrad",
    make: () => {
      const ids = tf.tensor2d(
        [
          [3, 0, 10],
          [3, 3, 7],
        ],
        [2, 3],
        "int32",
      );
      return differentiable([randomTensor([11, 6], 21)], randomTensor([6, 6], 22), (t) => embeddingLookup(t as tf.Tensor2D, ids), [ids]);
    },
  },
  { name: "decoderLayer (through the model's loss)", forward: "decoderLayer", backward: "decoderLayerGrad", make: modelRun },
  { name: "lmHeadLoss (through the model's loss)", forward: "lmHeadLoss", backward: "lmHeadLossGrad", make: modelRun },
  {
    name: "adamWStep",
    forward: "adamwAll",
    make: () => {
      const shapes = [[40, 30], [30], [7]];
      const variable = (s: number[], seed: number, f = (t: tf.Tensor) => t) => tf.tidy(() => tf.variable(f(randomTensor(s, seed)), true));
      const entries = shapes.map((s, i) => ({
        p: variable(s, 10 + i),
        g: randomTensor(s, 20 + i),
        m: variable(s, 30 + i),
        v: variable(s, 40 + i, tf.abs),
        decay: i !== 1,
      }));
      const options = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, gradScale: 0.37, lr: 1e-2, bc1: 0.19, bc2: 0.002 };
      return {
        value: () => {
          adamWStep(entries, options);
          return entries.flatMap((e) => [e.p, e.m, e.v].map((t) => tf.clone(t)));
        },
        dispose: () => tf.dispose(entries.flatMap((e) => [e.p, e.g, e.m, e.v])),
      };
    },
  },
];

function read(ts: tf.Tensor[]): Float32Array[] {
  const out = ts.map((t) => t.dataSync() as Float32Array);
  tf.dispose(ts);
  return out;
}

test("every fused op: the native path and the fallback agree (values and every gradient)", { skip: skipNative }, async () => {
  await initEngine({ backend: "wasm" });
  try {
    for (const c of CASES) {
      const outputs = (native: boolean) => {
        setNative(native);
        const run = c.make();
        try {
          return [...read(run.value()), ...read(run.grads?.() ?? [])];
        } finally {
          run.dispose();
        }
      };
      const fallback = outputs(false);
      const native = outputs(true);
      assert.equal(native.length, fallback.length, c.name);
      native.forEach((n, i) => {
        const scale = Math.max(1, ...Array.from(fallback[i] as Float32Array, Math.abs));
        assertClose(n, fallback[i] as Float32Array, 2e-5 * scale, `${c.name} output ${i}`);
      });
    }
  } finally {
    setNative(true);
  }
});

/** The addon with `fn` given a heap too small for its operands from its (okCalls + 1)-th call on, so the C bounds check throws. */
function failingAddon(addon: NativeAddon, fn: keyof NativeAddon, okCalls: number): NativeAddon {
  const real = addon[fn] as (heap: Uint8Array, ...rest: unknown[]) => unknown;
  let calls = 0;
  // The addon's functions are non-enumerable and read-only: the copy inherits them and defines its own `fn`.
  const failing: NativeAddon = Object.create(addon);
  Object.defineProperty(failing, fn, {
    value: (heap: Uint8Array, ...rest: unknown[]) => real(calls++ < okCalls ? heap : new Uint8Array(8), ...rest),
  });
  return failing;
}

/** Tensors and backend buffers alive now. */
function live(): { tensors: number; buffers: number } {
  return { tensors: tf.memory().numTensors, buffers: tf.backend().numDataIds() };
}

/**
 * TF.js itself keeps the tape's saved tensors when a gradient computation throws (its cleanup runs only on
 * success); dispose them as that cleanup would, so what is left is what the kernels left.
 */
function dropTape(): void {
  const state = tf.engine().state;
  for (const node of state.activeTape ?? []) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = [];
}

test("every fused kernel, forward and gradient, that throws (the C bounds check) frees its outputs", { skip: skipNative }, async () => {
  await initEngine({ backend: "wasm" });
  const addon = status.addon as NativeAddon;
  try {
    for (const c of CASES) {
      const phases: [keyof NativeAddon, "value" | "grads", number][] = [[c.forward, "value", 0]];
      // Rotary's gradient calls the forward's function: the forward inside tf.grads passes, the backward fails.
      if (c.backward) phases.push([c.backward, "grads", c.backward === c.forward ? 1 : 0]);
      for (const [fn, phase, okCalls] of phases) {
        setNative(true);
        const run = c.make();
        setNative(true, failingAddon(addon, fn, okCalls));
        const before = live();
        assert.throws(
          () => tf.tidy(() => (phase === "value" ? run.value() : (run.grads?.() ?? []))),
          /operands outside the heap/,
          `${c.name} ${phase}: ${fn} throws`,
        );
        dropTape();
        assert.deepEqual(live(), before, `${c.name} ${phase}: nothing left behind when ${fn} throws`);
        // The engine goes on: the same op runs on the real kernels.
        setNative(true);
        tf.dispose(run.value());
        assert.deepEqual(live(), before, `${c.name}: a later call leaks nothing`);
        run.dispose();
      }
    }
  } finally {
    setNative(true);
  }
});

test("layer-level fused ops run their caller's unfused maths when the kernels are off", async () => {
  await initEngine({ backend: "cpu" });
  const h = randomTensor([3, 4], 1) as tf.Tensor2D;
  const w = randomTensor([4], 2);
  const head = randomTensor([4, 5], 3) as tf.Tensor2D;
  const labels = tf.tensor1d([1, -100, 4], "int32");
  const unfusedLoss = tf.scalar(1.5);
  const unfusedRows = tf.zeros([3, 4]) as tf.Tensor2D;
  assert.equal(
    lmHeadLoss(h, w, head, labels, { eps: 1e-5, tied: false }, () => unfusedLoss),
    unfusedLoss,
  );
  const weights = { inputNorm: w, q: w, k: w, v: w, o: w, postNorm: w, gate: w, up: w, down: w };
  const tables = () => assert.fail("the tables are made only for the layer kernel");
  const dims = { batch: 1, t: 3, heads: 1, kvHeads: 1, headDim: 4, eps: 1e-5 };
  assert.equal(
    decoderLayer(h, weights, { ...dims, tables }, () => unfusedRows),
    unfusedRows,
  );
  tf.dispose([h, w, head, labels, unfusedLoss, unfusedRows]);
});

/** The cross-entropy fallback before defineFused: log-softmax times a one-hot [rows, vocab]. */
function oneHotCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const mask = labels.greaterEqual(0).toFloat();
    const safe = labels.maximum(tf.scalar(0, "int32")) as tf.Tensor1D;
    const picked = tf.logSoftmax(logits).mul(tf.oneHot(safe, logits.shape[1])).sum(-1);
    return picked.neg().mul(mask) as tf.Tensor1D;
  });
}

for (const backend of ["cpu", "wasm"] as const) {
  test(`${backend}: the cross-entropy fallback (a gather, no one-hot) equals the old one-hot loss and gradient to 1e-6`, async () => {
    await initEngine({ backend });
    useNativeFused(undefined);
    try {
      const logits = randomTensor([9, 37], 60, 4) as tf.Tensor2D;
      const labels = tf.tensor1d([3, -100, 0, 36, 7, -1, 1, 2, 30], "int32");
      const weights = randomTensor([9], 61);
      const valueAndGrad = (f: typeof softmaxCrossEntropy): Float32Array[] =>
        read([f(logits, labels), tf.grad((x: tf.Tensor) => tf.sum(tf.mul(f(x as tf.Tensor2D, labels), weights)))(logits)]);
      const [value, grad] = valueAndGrad(softmaxCrossEntropy);
      const [oldValue, oldGrad] = valueAndGrad(oneHotCrossEntropy);
      assertClose(value as Float32Array, oldValue as Float32Array, 1e-6, "loss");
      assertClose(grad as Float32Array, oldGrad as Float32Array, 1e-6, "dlogits");
      assert.equal(value?.[1], 0, "a negative label carries no loss");
      tf.dispose([logits, labels, weights]);
    } finally {
      useNativeFused(status.addon);
    }
  });

  test(`${backend}: the rotary fallback (rotate_half as a matMul) gives the old split/concat values and gradient bit for bit`, async () => {
    await initEngine({ backend });
    useNativeFused(undefined);
    try {
      const { cos, sin } = new RotaryTables(8, 10000).rows([0, 1, 2, 3, 4], [0.35]);
      const splitConcat = (x: tf.Tensor) =>
        tf.tidy(() => {
          const [a, b] = tf.split(x, 2, -1) as [tf.Tensor, tf.Tensor];
          return x.mul(cos).add(tf.concat([b.neg(), a], -1).mul(sin));
        });
      for (const shape of [
        [5, 8],
        [2, 3, 5, 8],
      ]) {
        const x = randomTensor(shape, 70, 3);
        const w = randomTensor(shape, 71);
        const run = (f: (x: tf.Tensor) => tf.Tensor) => read([f(x), tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), w)))(x)]);
        assert.deepEqual(
          run((v) => rotaryEmbedding(v, cos, sin)),
          run(splitConcat),
          `[${shape}]`,
        );
        tf.dispose([x, w]);
      }
      tf.dispose([cos, sin]);
    } finally {
      useNativeFused(status.addon);
    }
  });
}
