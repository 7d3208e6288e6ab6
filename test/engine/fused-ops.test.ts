// Every fused op (src/engine/fused.ts) through its one definition: native and fallback paths agree, a native
// kernel (forward or gradient) that throws frees what it allocated, and the fallbacks compute what they did
// before defineFused (the cross-entropy's without a one-hot, to 1e-6; rotary's matMul exactly as split/concat).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  adamWStep,
  decoderLayer,
  embeddingLookup,
  lmHeadLoss,
  rmsNormalize,
  rotaryEmbedding,
  softmaxCrossEntropy,
  swiglu,
} from "../../src/engine/fused.js";
import { initEngine, nativeFusedOn, nativeStatus, tf, useNativeFused, useNativeMatMul } from "../../src/engine/index.js";
import type { NativeAddon } from "../../src/engine/native.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { RotaryTables } from "../../src/model/rope.js";
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

/** A small LLaMA with grouped-query heads (4 query heads over 2 key/value heads), untied head. */
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

/** The model's loss (decoder layers and the LM head loss: both layer-level fused ops) on a padded batch, and every weight's gradient. */
function modelRun(): OpRun {
  const model = LlamaModel.init(GQA_CONFIG, new Rng(5), { initializerRange: 0.1 });
  const rng = new Rng(6);
  const ids = tf.tensor2d(
    Int32Array.from({ length: 2 * 10 }, () => rng.int(97)),
    [2, 10],
    "int32",
  );
  const maskRows = [Array(10).fill(1), [...Array(3).fill(0), ...Array(7).fill(1)]];
  const mask = tf.tensor2d(maskRows, [2, 10], "int32");
  const labels = tf.tensor2d(
    maskRows.flatMap((row) => row.map((m) => (m ? rng.int(97) : -100))),
    [2, 10],
    "int32",
  );
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

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    assert.ok(d <= tol * Math.max(1, Math.abs(b[i] as number)), `${what}[${i}]: ${a[i]} vs ${b[i]} (|diff| ${d})`);
  }
}

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
