/**
 * Kernel fixes that make TF.js train LLaMA-style models on the wasm and cpu
 * backends (measured facts in environment.md and BENCHMARKS.md):
 * - wasm has no UnsortedSegmentSum, which the gradient of `gather` (embedding
 *   lookup) needs;
 * - wasm matMul with a transpose flag is 10–30x slower than without, and the
 *   matMul gradients use exactly those flags: transpose explicitly first;
 * - the cpu backend's UnsortedSegmentSum dominates a tiny training step.
 */
import * as tf from "@tensorflow/tfjs";
import type { NativeAddon } from "./native.js";

type KernelFunc = tf.KernelConfig["kernelFunc"];
interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: tf.KernelBackend;
  attrs?: Record<string, unknown>;
}

interface HeapBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

interface WasmBackend extends HeapBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
}

interface CpuBackend extends tf.KernelBackend {
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
  data: { get(dataId: tf.DataId): { values: Float32Array | Int32Array } };
}

const registered = new Set<string>();

/** Adds the kernels a backend lacks or runs too slowly. Idempotent. */
export function registerKernelFixes(backendName: string): void {
  if (registered.has(backendName)) return;
  registered.add(backendName);
  if (backendName === "wasm") {
    tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName, kernelFunc: wasmUnsortedSegmentSum as KernelFunc });
    wrapWasmBatchMatMul();
    const fixed = tf.getKernel("BatchMatMul", "wasm");
    if (fixed) plainWasmBatchMatMul = fixed;
  } else if (backendName === "cpu") {
    if (tf.getKernel("UnsortedSegmentSum", "cpu")) tf.unregisterKernel("UnsortedSegmentSum", "cpu");
    tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName, kernelFunc: cpuUnsortedSegmentSum as KernelFunc });
  }
}

/** out[segmentIds[i], :] += x[i, :] over the first axis of ids. */
function segmentSum(
  x: Float32Array | Int32Array | Uint8Array,
  ids: Float32Array | Int32Array | Uint8Array,
  numSegments: number,
  rowSize: number,
  out: Float32Array,
): void {
  out.fill(0);
  const rows = ids.length;
  for (let r = 0; r < rows; r++) {
    const seg = ids[r] as number;
    if (seg < 0 || seg >= numSegments) continue;
    const src = r * rowSize;
    const dst = seg * rowSize;
    for (let c = 0; c < rowSize; c++) out[dst + c] += x[src + c] as number;
  }
}

function segmentShape(x: tf.TensorInfo, ids: tf.TensorInfo, numSegments: number): { shape: number[]; rowSize: number } {
  const idRank = ids.shape.length;
  const rowShape = x.shape.slice(idRank);
  const rowSize = rowShape.reduce((a, b) => a * b, 1);
  return { shape: [numSegments, ...rowShape], rowSize };
}

function wasmUnsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const b = backend as HeapBackend;
  const x = inputs.x as tf.TensorInfo;
  const ids = inputs.segmentIds as tf.TensorInfo;
  const numSegments = attrs?.numSegments as number;
  const { shape, rowSize } = segmentShape(x, ids, numSegments);
  const out = b.makeOutput(shape, "float32");
  segmentSum(b.typedArrayFromHeap(x), b.typedArrayFromHeap(ids), numSegments, rowSize, b.typedArrayFromHeap(out) as Float32Array);
  return out;
}

function cpuUnsortedSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const b = backend as CpuBackend;
  const x = inputs.x as tf.TensorInfo;
  const ids = inputs.segmentIds as tf.TensorInfo;
  const numSegments = attrs?.numSegments as number;
  const { shape, rowSize } = segmentShape(x, ids, numSegments);
  const out = new Float32Array(shape.reduce((a, c) => a * c, 1));
  segmentSum(b.data.get(x.dataId).values, b.data.get(ids.dataId).values, numSegments, rowSize, out);
  return b.makeTensorInfo(shape, "float32", out);
}

function wrapWasmBatchMatMul(): void {
  const original = tf.getKernel("BatchMatMul", "wasm");
  const transpose = tf.getKernel("Transpose", "wasm");
  if (!original || !transpose) return;
  const inner = original.kernelFunc as (args: KernelArgs) => tf.TensorInfo;
  const transposeFn = transpose.kernelFunc as (args: KernelArgs) => tf.TensorInfo;
  const swapLast = (t: tf.TensorInfo, backend: tf.KernelBackend): tf.TensorInfo => {
    const rank = t.shape.length;
    const perm = [...Array(rank).keys()];
    perm[rank - 1] = rank - 2;
    perm[rank - 2] = rank - 1;
    return transposeFn({ inputs: { x: t }, backend, attrs: { perm } });
  };
  tf.unregisterKernel("BatchMatMul", "wasm");
  tf.registerKernel({
    kernelName: "BatchMatMul",
    backendName: "wasm",
    setupFunc: original.setupFunc,
    disposeFunc: original.disposeFunc,
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs) => {
      const { transposeA, transposeB } = (attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
      if (!transposeA && !transposeB) return inner({ inputs, backend, attrs });
      const a = transposeA ? swapLast(inputs.a as tf.TensorInfo, backend) : (inputs.a as tf.TensorInfo);
      const bT = transposeB ? swapLast(inputs.b as tf.TensorInfo, backend) : (inputs.b as tf.TensorInfo);
      const out = inner({ inputs: { a, b: bT }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
      if (transposeA) backend.disposeData(a.dataId);
      if (transposeB) backend.disposeData(bT.dataId);
      return out;
    }) as KernelFunc,
  });
}

let plainWasmBatchMatMul: tf.KernelConfig | undefined;
let nativeOn = false;

function product(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/**
 * Switches the wasm backend's BatchMatMul between the native BLAS sgemm
 * (`addon`) and TF.js's own kernel with the transpose fix (`undefined`).
 * Call after the wasm backend started. Returns whether native is now on.
 */
export function useNativeMatMul(addon: NativeAddon | undefined): boolean {
  const plain = plainWasmBatchMatMul;
  if (!plain) return false;
  const plainFn = plain.kernelFunc as (args: KernelArgs) => tf.TensorInfo;
  tf.unregisterKernel("BatchMatMul", "wasm");
  if (!addon) {
    tf.registerKernel(plain);
    nativeOn = false;
    return false;
  }
  tf.registerKernel({
    ...plain,
    kernelFunc: ((args: KernelArgs) => {
      const a = args.inputs.a as tf.TensorInfo;
      const b = args.inputs.b as tf.TensorInfo;
      const { transposeA = false, transposeB = false } = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
      const ra = a.shape.length;
      const rb = b.shape.length;
      if (a.dtype !== "float32" || b.dtype !== "float32" || ra < 2 || rb < 2) return plainFn(args);
      const m = a.shape[transposeA ? ra - 1 : ra - 2] as number;
      const k = a.shape[transposeA ? ra - 2 : ra - 1] as number;
      const kb = b.shape[transposeB ? rb - 1 : rb - 2] as number;
      const n = b.shape[transposeB ? rb - 2 : rb - 1] as number;
      const batchA = product(a.shape.slice(0, -2));
      const batchB = product(b.shape.slice(0, -2));
      if (k !== kb || k === 0 || m === 0 || n === 0 || (batchA !== batchB && batchA !== 1 && batchB !== 1)) return plainFn(args);
      const outer = tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
      if (product(outer) !== Math.max(batchA, batchB)) return plainFn(args);
      const backend = args.backend as WasmBackend;
      const out = backend.makeOutput([...outer, m, n], "float32");
      // Read the heap after makeOutput: an allocation may have grown (and replaced) it.
      const offset = (t: tf.TensorInfo): number => backend.dataIdMap.get(t.dataId).memoryOffset;
      addon.sgemm(backend.wasm.HEAPU8, offset(a), offset(b), offset(out), batchA, batchB, m, n, k, transposeA, transposeB);
      return out;
    }) as KernelFunc,
  });
  nativeOn = true;
  return true;
}

/** Whether the wasm backend's BatchMatMul currently runs through the native addon. */
export function nativeMatMulOn(): boolean {
  return nativeOn;
}
