import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import {
  initEngine,
  NATIVE_BUILD_COMMAND,
  nativeFusedOn,
  nativeMatMulOn,
  nativeStatus,
  rotaryEmbedding,
  softmaxCrossEntropy,
  tf,
  useNativeFused,
  useNativeMatMul,
} from "../../src/engine/index.js";
import { BENCHMARK_MODELS } from "../../src/model/benchmarks.js";
import { Rng } from "../../src/util/rng.js";
import { repoRoot } from "../helpers.js";
import { llamaStepper } from "./llamaStep.js";

const status = nativeStatus();
const skipNative = status.available ? false : `native addon not built here: ${status.reason}`;

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
    shape,
  );
}

test("the install-time build never fails and says how to enable what is off", () => {
  const child = spawnSync(process.execPath, [join(repoRoot(), "src", "engine", "native", "build.mjs")], {
    encoding: "utf8",
    env: { ...process.env, XALIGN_NATIVE: "0" },
  });
  assert.equal(child.status, 0);
  assert.match(child.stdout, /native BLAS acceleration is off \(XALIGN_NATIVE=0\)/);
  assert.match(child.stdout, /to enable it: .*npm run build:native/);
});

test("the native status always says whether acceleration is on, and how to enable it when off", () => {
  if (status.available) assert.match(status.reason, /native sgemm through/);
  else assert.ok(status.reason.includes(NATIVE_BUILD_COMMAND) || /XALIGN_NATIVE=0/.test(status.reason), status.reason);
});

test("native sgemm equals TF.js's matMul for every transpose and batch layout", { skip: skipNative }, async () => {
  await initEngine({ backend: "wasm" });
  const cases: [number[], number[]][] = [
    [
      [7, 5],
      [5, 3],
    ],
    [
      [4, 7, 5],
      [4, 5, 3],
    ],
    [
      [1, 7, 5],
      [4, 5, 3],
    ],
    [
      [4, 7, 5],
      [5, 3],
    ],
    [
      [2, 3, 9, 16],
      [2, 3, 16, 9],
    ],
  ];
  let seed = 1;
  for (const [aShape, bShape] of cases) {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const swap = (s: number[]): number[] => [...s.slice(0, -2), s.at(-1) as number, s.at(-2) as number];
      const a = randomTensor(ta ? swap(aShape) : aShape, seed++);
      const b = randomTensor(tb ? swap(bShape) : bShape, seed++);
      useNativeMatMul(undefined);
      const plain = tf.matMul(a, b, ta, tb);
      useNativeMatMul(status.addon);
      assert.ok(nativeMatMulOn());
      const native = tf.matMul(a, b, ta, tb);
      assert.deepEqual(native.shape, plain.shape);
      const p = plain.dataSync();
      const n = native.dataSync();
      for (let i = 0; i < p.length; i++) {
        assert.ok(
          Math.abs((p[i] as number) - (n[i] as number)) <= 1e-4,
          `${aShape} x ${bShape} tA=${ta} tB=${tb} [${i}]: ${n[i]} vs ${p[i]}`,
        );
      }
      tf.dispose([a, b, plain, native]);
    }
  }
});

test("with the native addon the tiny benchmark model trains to the plain wasm losses over 20 steps (1e-4)", {
  skip: skipNative,
}, async () => {
  await initEngine({ backend: "wasm" });
  const run = async (native: boolean): Promise<number[]> => {
    useNativeMatMul(native ? status.addon : undefined);
    useNativeFused(native ? status.addon : undefined);
    assert.equal(nativeFusedOn(), native);
    const stepper = llamaStepper(BENCHMARK_MODELS.tiny, 3);
    const losses: number[] = [];
    for (let i = 0; i < 20; i++) losses.push(await stepper.step());
    stepper.dispose();
    return losses;
  };
  const plain = await run(false);
  const native = await run(true);
  for (let i = 0; i < 20; i++) {
    assert.ok(Math.abs((plain[i] as number) - (native[i] as number)) <= 1e-4, `step ${i}: native ${native[i]} vs plain ${plain[i]}`);
  }
  assert.ok((native[19] as number) < (native[0] as number));
});

test("fused softmax cross-entropy: values and gradient equal the unfused ops (labels -1 carry no loss)", { skip: skipNative }, async () => {
  await initEngine({ backend: "wasm" });
  const logits = randomTensor([6, 11], 40).mul(3) as tf.Tensor2D;
  const labels = tf.tensor1d([3, -1, 0, 10, 7, -1], "int32");
  const weights = randomTensor([6], 41);
  const lossAndGrad = (native: boolean): [Float32Array, Float32Array] => {
    useNativeFused(native ? status.addon : undefined);
    assert.equal(nativeFusedOn(), native);
    const f = (x: tf.Tensor) =>
      softmaxCrossEntropy(x as tf.Tensor2D, labels)
        .mul(weights)
        .sum();
    const value = softmaxCrossEntropy(logits, labels);
    const grad = tf.grad(f)(logits);
    const out: [Float32Array, Float32Array] = [value.dataSync() as Float32Array, grad.dataSync() as Float32Array];
    tf.dispose([value, grad]);
    return out;
  };
  const [plainLoss, plainGrad] = lossAndGrad(false);
  const [fusedLoss, fusedGrad] = lossAndGrad(true);
  assert.equal(fusedLoss[1], 0);
  assert.equal(fusedLoss[5], 0);
  for (let i = 0; i < plainLoss.length; i++) assert.ok(Math.abs((plainLoss[i] as number) - (fusedLoss[i] as number)) <= 1e-5, `loss[${i}]`);
  for (let i = 0; i < plainGrad.length; i++) assert.ok(Math.abs((plainGrad[i] as number) - (fusedGrad[i] as number)) <= 1e-5, `grad[${i}]`);
  // Row 1 has label -1: no gradient at all.
  assert.ok(Array.from(fusedGrad.slice(11, 22)).every((g) => g === 0));
  tf.dispose([logits, labels, weights]);
});

test("fused rotary embedding: values and gradient equal the split/concat ops", { skip: skipNative }, async () => {
  await initEngine({ backend: "wasm" });
  const [t, d] = [5, 8];
  const angles = Array.from({ length: t * d }, (_, i) => Math.floor(i / d) * 0.3 * ((i % (d / 2)) + 1));
  const cos = tf.tensor2d(angles.map(Math.cos), [t, d]);
  const sin = tf.tensor2d(angles.map(Math.sin), [t, d]);
  const x = randomTensor([2, 3, t, d], 50);
  const w = randomTensor([2, 3, t, d], 51);
  const run = (native: boolean): [Float32Array, Float32Array] => {
    useNativeFused(native ? status.addon : undefined);
    const y = rotaryEmbedding(x, cos, sin);
    const g = tf.grad((v: tf.Tensor) => rotaryEmbedding(v, cos, sin).mul(w).sum())(x);
    const out: [Float32Array, Float32Array] = [y.dataSync() as Float32Array, g.dataSync() as Float32Array];
    tf.dispose([y, g]);
    return out;
  };
  const [plainY, plainG] = run(false);
  const [fusedY, fusedG] = run(true);
  for (let i = 0; i < plainY.length; i++) {
    assert.ok(Math.abs((plainY[i] as number) - (fusedY[i] as number)) <= 1e-5, `y[${i}]`);
    assert.ok(Math.abs((plainG[i] as number) - (fusedG[i] as number)) <= 1e-5, `grad[${i}]`);
  }
  tf.dispose([cos, sin, x, w]);
});

test("the addon's argument readers reject a wrong heap, table or argument count with XA_NATIVE_ARGS", { skip: skipNative }, () => {
  const addon = nativeStatus().addon as unknown as Record<string, (...args: unknown[]) => unknown>;
  const heap = new Uint8Array(1024);
  const rejects = (call: () => unknown, message: RegExp) =>
    assert.throws(call, (e: Error & { code?: string }) => e.code === "XA_NATIVE_ARGS" && message.test(e.message));
  // heap_nums: rmsNorm(heap, x, y, r, rows, d, eps)
  rejects(() => addon.rmsNorm?.(new Float32Array(256), 0, 64, 128, 1, 8, 1e-5), /the heap must be a Uint8Array/);
  rejects(() => addon.rmsNorm?.(heap, 0, 64, 128, 1, 8), /wrong number of arguments/);
  rejects(() => addon.rmsNorm?.(heap, 0, "64", 128, 1, 8, 1e-5), /arguments after the heap must be numbers/);
  // heap_table: lmHeadLoss(heap, Float64Array table)
  rejects(() => addon.lmHeadLoss?.(new Float32Array(256), new Float64Array(14)), /the heap must be a Uint8Array/);
  rejects(() => addon.lmHeadLoss?.(heap, new Float32Array(14)), /the arguments must be a Float64Array/);
  rejects(() => addon.lmHeadLoss?.(heap, new Float64Array(3)), /of the right length/);
  rejects(() => addon.lmHeadLoss?.(heap), /expected \(heap, Float64Array\)/);
});
