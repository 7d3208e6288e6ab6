/**
 * The optional native addon (src/engine/native, built at `npm install` by
 * src/engine/native/build.mjs): sgemm through the platform BLAS, registered
 * as the wasm backend's BatchMatMul, reading and writing the wasm heap in
 * place. When it is absent or disabled (XALIGN_NATIVE=0) the wasm backend
 * runs as it ships, and {@link nativeStatus} says why and how to enable it.
 *
 * @example
 * const status = nativeStatus();
 * console.log(status.available ? status.blas : status.reason);
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface NativeAddon {
  sgemm(
    heap: Uint8Array,
    aOffset: number,
    bOffset: number,
    cOffset: number,
    batchA: number,
    batchB: number,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
  ): void;
  softmaxXent(heap: Uint8Array, logits: number, labels: number, loss: number, lse: number, rows: number, vocab: number): void;
  softmaxXentGrad(heap: Uint8Array, logits: number, labels: number, lse: number, dy: number, dx: number, rows: number, vocab: number): void;
  rmsNorm(heap: Uint8Array, x: number, y: number, r: number, rows: number, d: number, eps: number): void;
  rmsNormGrad(heap: Uint8Array, x: number, r: number, dy: number, dx: number, rows: number, d: number): void;
  swiglu(heap: Uint8Array, gate: number, up: number, y: number, n: number): void;
  swigluGrad(heap: Uint8Array, gate: number, up: number, dy: number, dgate: number, dup: number, n: number): void;
  rotary(heap: Uint8Array, x: number, cos: number, sin: number, y: number, rows: number, t: number, d: number, sign: number): void;
  /** A whole decoder layer forward; `args` lists heap offsets and dimensions (src/engine/native/layer.c). */
  decoderLayer(heap: Uint8Array, args: Float64Array): void;
  /** Its backward: the input's and the nine weights' gradients. */
  decoderLayerGrad(heap: Uint8Array, args: Float64Array): void;
  /** Rows of a table by int32 id, and the rows' gradient summed per id (a dense [vocab, d] gradient). */
  embedding(heap: Uint8Array, args: Float64Array): void;
  embeddingGrad(heap: Uint8Array, args: Float64Array): void;
  /** Final norm, LM head and mean cross-entropy, forward and backward (layout in src/engine/native/head_loss.c). */
  lmHeadLoss(heap: Uint8Array, args: Float64Array): void;
  lmHeadLossGrad(heap: Uint8Array, args: Float64Array): void;
  /** One AdamW step over many variables (layout in src/engine/native/optimizer.c). */
  adamwAll(heap: Uint8Array, args: Float64Array): void;
  /** Sum of squares over many tensors, in double: [n, offset0, size0, ...]. */
  sumSquares(heap: Uint8Array, args: Float64Array): number;
  /**
   * A native decoding session (KV cache in native memory) for
   * [layers, hidden, heads, kvHeads, headDim, intermediate, vocab, canonWidth, batch, capacity, eps],
   * with rotary tables cos/sin [capacity, headDim]; see src/model/nativedecode.ts.
   */
  decodeCreate(dims: Float64Array, cos: Float32Array, sin: Float32Array): NativeDecodeSession;
  /** t new positions per row through every layer; the logits of each row's last new position (layout in src/engine/native/decode.c). */
  decodeStep(session: NativeDecodeSession, heap: Uint8Array, args: Float64Array, logits: Float32Array): void;
  /** Keeps only the given (ascending) rows of the session. */
  decodeSelectRows(session: NativeDecodeSession, rows: Float64Array): void;
  /** Positions cached in the session. */
  decodeLength(session: NativeDecodeSession): number;
  /** Frees the session's memory now (the garbage collector frees it otherwise); later calls on it throw. */
  decodeFree(session: NativeDecodeSession): void;
  /** Threads for the fused elementwise kernels (AdamW, RMSNorm, SwiGLU); 1 by default. */
  setElementwiseThreads(n: number): void;
  setThreads(n: number): void;
  getThreads(): number;
  blas(): string;
}

/** An opaque handle to native decoding state (an N-API external). */
export type NativeDecodeSession = { readonly __nativeDecodeSession: unique symbol };

export interface NativeStatus {
  available: boolean;
  /** Why it is on or off, in words, with the command that enables it when off. */
  reason: string;
  /** The BLAS build the addon links, when available. */
  blas?: string;
  addon?: NativeAddon;
}

export const NATIVE_BUILD_COMMAND = "apt-get install -y build-essential python3 libopenblas-dev && npm run build:native";

const require = createRequire(import.meta.url);
/** Every function this version calls; an addon built from older sources lacks some. */
const REQUIRED = [
  "sgemm",
  "softmaxXent",
  "softmaxXentGrad",
  "rmsNorm",
  "rmsNormGrad",
  "swiglu",
  "swigluGrad",
  "decoderLayer",
  "decoderLayerGrad",
  "embedding",
  "embeddingGrad",
  "adamwAll",
  "sumSquares",
  "lmHeadLoss",
  "lmHeadLossGrad",
  "setElementwiseThreads",
  "decodeCreate",
  "decodeStep",
  "decodeSelectRows",
  "decodeLength",
  "decodeFree",
];
let cached: NativeStatus | undefined;

/** src/engine/native from this file, whether it runs from src/ (tsx) or dist/src/ (compiled). */
function nativeDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "src", "engine", "native");
    if (existsSync(join(candidate, "binding.gyp"))) return candidate;
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), "native");
}

/** Loads the addon once; never throws. */
export function nativeStatus(): NativeStatus {
  if (cached) return cached;
  if (process.env.XALIGN_NATIVE === "0") {
    cached = { available: false, reason: "native BLAS acceleration is off: XALIGN_NATIVE=0" };
    return cached;
  }
  const file = join(nativeDir(), "build", "Release", "xalign_native.node");
  if (!existsSync(file)) {
    cached = { available: false, reason: `native BLAS acceleration is off: the addon is not built (enable: ${NATIVE_BUILD_COMMAND})` };
    return cached;
  }
  try {
    const addon = require(file) as NativeAddon;
    const missing = REQUIRED.filter((f) => typeof (addon as unknown as Record<string, unknown>)[f] !== "function");
    if (missing.length) {
      cached = {
        available: false,
        reason: `native BLAS acceleration is off: the built addon is out of date (no ${missing.join(", ")}; rebuild: npm run build:native)`,
      };
      return cached;
    }
    const blas = addon.blas();
    cached = {
      available: true,
      reason: `native sgemm through ${blas.split(" ").slice(0, 2).join(" ")} (${openBlasCoreName(blas)} kernels${process.env.OPENBLAS_CORETYPE ? `, as OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE} asks` : ""}), fused decoder-layer, native decoding, LM-head loss, embedding, cross-entropy, rotary, RMSNorm, SwiGLU and AdamW kernels`,
      blas,
      addon,
    };
  } catch (err) {
    const why = String(err instanceof Error ? err.message : err).split("\n")[0];
    cached = {
      available: false,
      reason: `native BLAS acceleration is off: the addon failed to load: ${why} (rebuild: ${NATIVE_BUILD_COMMAND})`,
    };
  }
  return cached;
}

/** The kernel family in OpenBLAS's config string ("OpenBLAS 0.3.21 ... Haswell MAX_THREADS=64" -> "Haswell"). */
export function openBlasCoreName(config: string): string {
  const words = config.split(" ");
  const at = words.findIndex((w) => w.startsWith("MAX_THREADS"));
  return (at > 0 ? words[at - 1] : words.at(-1)) ?? "unknown";
}
