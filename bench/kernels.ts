/**
 * Micro-benchmarks of single native kernels against what they replace, in one
 * process (medians of 5 batches): the embedding lookup vs tf.gather, the
 * AdamW step over the tiny model's variables (one native call vs TF.js ops),
 * and one sgemm of the tiny model's gate|up shape with the OpenBLAS kernels in
 * use (`OPENBLAS_CORETYPE` chooses them; run it twice to compare).
 *
 *   node --import tsx bench/kernels.ts
 */
import { embeddingLookup, useNativeFused } from "../src/engine/fused.js";
import { initEngine, nativeStatus, tf } from "../src/engine/index.js";
import { openBlasCoreName } from "../src/engine/native.js";
import { BENCHMARK_MODELS, benchmarkConfig } from "../src/model/benchmarks.js";
import { LlamaModel } from "../src/model/llama.js";
import { AdamW } from "../src/train/adamw.js";
import { Rng } from "../src/util/rng.js";

await initEngine({ backend: "wasm" });
const status = nativeStatus();
if (!status.addon) throw new Error(`bench/kernels.ts needs the native addon: ${status.reason}`);
const addon = status.addon;

/** Median ms per call of `fn` over 5 batches of `reps` calls, after one warm-up batch. */
function time(fn: () => void, reps: number): number {
  const batches: number[] = [];
  for (let b = 0; b < 6; b++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) fn();
    if (b > 0) batches.push((performance.now() - start) / reps);
  }
  return batches.sort((x, y) => x - y)[2] as number;
}

const rows: [string, number, number][] = [];
const m = BENCHMARK_MODELS.tiny;

// Embedding: 512 rows of 128 (the tiny model's batch).
const table = tf.randomNormal([m.vocab, m.dim]) as tf.Tensor2D;
const ids = tf.tensor2d(
  Int32Array.from({ length: m.batch * m.seq }, (_, i) => (i * 7) % m.vocab),
  [m.batch, m.seq],
  "int32",
);
const lookup = () => tf.dispose(embeddingLookup(table, ids));
useNativeFused(undefined);
const gather = time(lookup, 100);
useNativeFused(addon);
rows.push(["embedding lookup, 512 x 128 rows", gather, time(lookup, 100)]);

// AdamW over every variable of the tiny model, gradient scale 0.5.
const model = LlamaModel.init(benchmarkConfig(m, m.seq), new Rng(1));
const grads = Object.fromEntries([...model.variables].map(([n, v]) => [n, tf.randomNormal(v.shape)]));
const adamw = (native: boolean) => {
  useNativeFused(native ? addon : undefined);
  const opt = new AdamW({ weightDecay: 0.01 });
  const ms = time(() => opt.apply(model.variables, grads, 1e-3, 0.5), 20);
  opt.dispose();
  return ms;
};
rows.push([`AdamW step, all ${model.numParameters().toLocaleString("en")} parameters`, adamw(false), adamw(true)]);

// sgemm 512x128 @ 128x768 (the tiny layer's gate|up projection), through the addon on the wasm heap.
const b = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array }; dataIdMap: { get(id: tf.DataId): { memoryOffset: number } } };
const [x, w, y] = [tf.randomNormal([512, 128]), tf.randomNormal([128, 768]), tf.zeros([512, 768])];
const at = (t: tf.Tensor) => b.dataIdMap.get(t.dataId).memoryOffset;
const gemm = time(() => addon.sgemm(b.wasm.HEAPU8, at(x), at(w), at(y), 1, 1, 512, 768, 128, false, false), 200);

console.log(`engine: ${status.reason}`);
console.log(`node ${process.version}, ${new Date().toISOString()}`);
console.log("| kernel | TF.js ms | native ms | speed-up |\n|---|---:|---:|---:|");
for (const [name, plain, native] of rows)
  console.log(`| ${name} | ${plain.toFixed(3)} | ${native.toFixed(3)} | ${(plain / native).toFixed(1)}x |`);
console.log(
  `\nsgemm 512x768x128 (${openBlasCoreName(status.blas ?? "")} kernels): ${gemm.toFixed(3)} ms, ${((2 * 512 * 768 * 128) / gemm / 1e6).toFixed(0)} GFLOP/s`,
);
