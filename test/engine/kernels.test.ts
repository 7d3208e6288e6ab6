import assert from "node:assert/strict";
import { test } from "node:test";
import { type BackendName, initEngine, tf, useNativeFused, useNativeMatMul } from "../../src/engine/index.js";
import { Rng } from "../../src/util/rng.js";

/** These tests pin TF.js's own kernels plus xalign's fixes: the native addon (tested in native.test.ts) stays off. */
async function plainEngine(backend: BackendName): Promise<void> {
  await initEngine({ backend, native: false });
  if (backend === "wasm") {
    useNativeMatMul(undefined);
    useNativeFused(undefined);
  }
}

function randomValues(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs((actual[i] as number) - (expected[i] as number));
    assert.ok(diff <= tol * (1 + Math.abs(expected[i] as number)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/** d/dx sum(gather(x, ids) * w): row r of the gradient sums the rows of w whose id is r. */
function expectedGatherGrad(w: Float32Array, ids: number[], rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  ids.forEach((id, i) => {
    for (let c = 0; c < cols; c++) out[id * cols + c] += w[i * cols + c] as number;
  });
  return out;
}

for (const backend of ["wasm", "cpu"] as const) {
  test(`${backend}: the gradient of gather (embedding lookup) sums repeated rows`, async () => {
    await plainEngine(backend);
    const rows = 7;
    const cols = 5;
    const ids = [3, 0, 3, 6, 3, 1];
    const x = tf.tensor2d(randomValues(rows * cols, 1), [rows, cols]);
    const wValues = randomValues(ids.length * cols, 2);
    const w = tf.tensor2d(wValues, [ids.length, cols]);
    const idx = tf.tensor1d(ids, "int32");
    const grad = tf.grad((t: tf.Tensor) => tf.gather(t, idx).mul(w).sum())(x);
    assertClose(grad.dataSync(), expectedGatherGrad(wValues, ids, rows, cols), 1e-6, "grad");
    // Row 2 and row 4 were never looked up: their gradient is exactly zero.
    assert.deepEqual(Array.from(grad.dataSync().slice(2 * cols, 3 * cols)), [0, 0, 0, 0, 0]);
    tf.dispose([x, w, idx, grad]);
  });

  test(`${backend}: unsortedSegmentSum over rank-2 ids matches a direct sum`, async () => {
    await plainEngine(backend);
    const ids = [
      [2, 0],
      [2, 1],
    ];
    const xValues = randomValues(2 * 2 * 3, 3);
    const out = tf.unsortedSegmentSum(tf.tensor3d(xValues, [2, 2, 3]), tf.tensor2d(ids, [2, 2], "int32") as unknown as tf.Tensor1D, 4);
    assert.deepEqual(out.shape, [4, 3]);
    assertClose(out.dataSync(), expectedGatherGrad(xValues, ids.flat(), 4, 3), 1e-6, "segment sum");
    out.dispose();
  });
}

test("wasm: matMul with transpose flags equals the plain matMul of explicit transposes", async () => {
  await plainEngine("wasm");
  const cases: [number[], number[]][] = [
    [
      [6, 4],
      [4, 5],
    ],
    [
      [3, 6, 4],
      [3, 4, 5],
    ],
    [
      [2, 3, 17, 9],
      [2, 3, 9, 11],
    ],
  ];
  let seed = 10;
  for (const [aShape, bShape] of cases) {
    const a = tf.tensor(
      randomValues(
        aShape.reduce((x, y) => x * y),
        seed++,
      ),
      aShape,
    );
    const b = tf.tensor(
      randomValues(
        bShape.reduce((x, y) => x * y),
        seed++,
      ),
      bShape,
    );
    const swap = (t: tf.Tensor): tf.Tensor => {
      const perm = [...t.shape.keys()];
      perm.splice(-2, 2, perm.length - 1, perm.length - 2);
      return t.transpose(perm);
    };
    const plain = tf.matMul(a, b).dataSync();
    for (const [ta, tb] of [
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const aIn = ta ? swap(a) : a;
      const bIn = tb ? swap(b) : b;
      const flagged = tf.matMul(aIn, bIn, ta, tb);
      assert.deepEqual(flagged.shape, [...aShape.slice(0, -1), bShape.at(-1)]);
      assertClose(flagged.dataSync(), plain, 1e-5, `${aShape} x ${bShape} transposeA=${ta} transposeB=${tb}`);
      tf.dispose([flagged, ...(ta ? [aIn] : []), ...(tb ? [bIn] : [])]);
    }
    tf.dispose([a, b]);
  }
});

test("wasm: matMul gradients (which use the transpose flags) match the cpu backend", async () => {
  const aValues = randomValues(8 * 6, 20);
  const bValues = randomValues(6 * 4, 21);
  const gradsOn = async (backend: "cpu" | "wasm") => {
    await plainEngine(backend);
    const a = tf.tensor2d(aValues, [8, 6]);
    const b = tf.tensor2d(bValues, [6, 4]);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y).square().sum())([a, b]);
    const out = [ga?.dataSync() as Float32Array, gb?.dataSync() as Float32Array];
    tf.dispose([a, b, ga, gb] as tf.Tensor[]);
    return out;
  };
  const cpu = await gradsOn("cpu");
  const wasm = await gradsOn("wasm");
  assertClose(wasm[0] as Float32Array, cpu[0] as Float32Array, 1e-5, "dA");
  assertClose(wasm[1] as Float32Array, cpu[1] as Float32Array, 1e-5, "dB");
});

test("the kernel fixes leak no tensors", async () => {
  await plainEngine("wasm");
  const x = tf.variable(tf.tensor2d(randomValues(20, 30), [5, 4]));
  const idx = tf.tensor1d([1, 1, 4], "int32");
  const step = () =>
    tf.tidy(() =>
      tf
        .grad((t: tf.Tensor) => tf.matMul(tf.gather(t, idx), t, false, true).sum())(x)
        .dispose(),
    );
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) step();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([x, idx]);
});
