// Fused native kernels (src/engine/fused.ts) against the unfused TF.js ops they replace, and the trainer's
// losses with every native kernel on against plain wasm over 20 steps on both benchmark models.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { TrainSchema } from "../../src/config/schema.js";
import { embeddingLookup, fusedSumOfSquares, rmsNormalize, swiglu, useFusedLayers } from "../../src/engine/fused.js";
import { initEngine, nativeFusedOn, nativeStatus, tf, useNativeFused, useNativeMatMul } from "../../src/engine/index.js";
import { BENCHMARK_MODELS, benchmarkConfig } from "../../src/model/benchmarks.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { causalLmLoss } from "../../src/model/loss.js";
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

function setNative(on: boolean): void {
  useNativeMatMul(on ? status.addon : undefined);
  useNativeFused(on ? status.addon : undefined);
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

/** Loss, logits and every weight's gradient of a seeded GQA model on a padded batch, and the kernels that ran. */
async function lossAndGrads(mode: "plain" | "per-op" | "layer"): Promise<{ values: Float32Array[]; kernels: string[] }> {
  setNative(mode !== "plain");
  useFusedLayers(mode === "layer");
  const model = LlamaModel.init(GQA_CONFIG, new Rng(5), { initializerRange: 0.1 });
  const rng = new Rng(6);
  const ids = tf.tensor2d(
    Int32Array.from({ length: 3 * 12 }, () => rng.int(97)),
    [3, 12],
    "int32",
  );
  // Row 0 unpadded, row 1 right-padded, row 2 left-padded (its first query rows see no real key).
  const maskRows = [Array(12).fill(1), [...Array(8).fill(1), ...Array(4).fill(0)], [...Array(5).fill(0), ...Array(7).fill(1)]];
  const mask = tf.tensor2d(maskRows, [3, 12], "int32");
  const labels = tf.tensor2d(
    maskRows.flatMap((row) => row.map((m) => (m ? rng.int(97) : -100))),
    [3, 12],
    "int32",
  );
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
