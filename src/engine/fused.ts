/**
 * Fused ops with a gradient. Each has one meaning and two implementations:
 * native kernels of the wasm backend (when the addon is on) and the same
 * maths from plain TF.js ops everywhere else, so results agree to float
 * rounding on every backend.
 *
 * @example
 * const perRow = softmaxCrossEntropy(logits, labels); // labels -1: no loss
 * const loss = perRow.sum().div(labels.greaterEqual(0).sum().maximum(1));
 */
import * as tf from "@tensorflow/tfjs";
import type { NativeAddon } from "./native.js";

const XENT = "XalignSoftmaxXent";
const XENT_GRAD = "XalignSoftmaxXentGrad";
const ROTARY = "XalignRotary";

interface WasmBackend extends tf.KernelBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}
interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: tf.KernelBackend;
  attrs?: Record<string, unknown>;
}

let fusedOn = false;

/** Registers (or, with `undefined`, switches off) the native fused kernels on the wasm backend. */
export function useNativeFused(addon: NativeAddon | undefined): boolean {
  for (const name of [XENT, XENT_GRAD, ROTARY]) if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  fusedOn = false;
  if (!addon) return false;
  const offset = (b: WasmBackend, t: tf.TensorInfo): number => b.dataIdMap.get(t.dataId).memoryOffset;
  tf.registerKernel({
    kernelName: XENT,
    backendName: "wasm",
    kernelFunc: (({ inputs, backend }: KernelArgs) => {
      const b = backend as WasmBackend;
      const { logits, labels } = inputs as { logits: tf.TensorInfo; labels: tf.TensorInfo };
      const [rows, vocab] = logits.shape as [number, number];
      const loss = b.makeOutput([rows], "float32");
      const lse = b.makeOutput([rows], "float32");
      addon.softmaxXent(b.wasm.HEAPU8, offset(b, logits), offset(b, labels), offset(b, loss), offset(b, lse), rows, vocab);
      return [loss, lse];
    }) as tf.KernelConfig["kernelFunc"],
  });
  tf.registerKernel({
    kernelName: XENT_GRAD,
    backendName: "wasm",
    kernelFunc: (({ inputs, backend }: KernelArgs) => {
      const b = backend as WasmBackend;
      const { logits, labels, lse, dy } = inputs as Record<"logits" | "labels" | "lse" | "dy", tf.TensorInfo>;
      const [rows, vocab] = logits.shape as [number, number];
      const dx = b.makeOutput([rows, vocab], "float32");
      addon.softmaxXentGrad(b.wasm.HEAPU8, offset(b, logits), offset(b, labels), offset(b, lse), offset(b, dy), offset(b, dx), rows, vocab);
      return dx;
    }) as tf.KernelConfig["kernelFunc"],
  });
  tf.registerKernel({ kernelName: ROTARY, backendName: "wasm", kernelFunc: wasmRotary as tf.KernelConfig["kernelFunc"] });
  fusedOn = true;
  return true;
}

/**
 * y = x * cos + rotate_half(x) * sign * sin over the last axis, in one pass on
 * the wasm heap. With sign -1 it is the gradient: rotate-half tables repeat
 * each frequency in both halves, so the transpose of the rotation is the
 * rotation by -angle.
 */
function wasmRotary({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const b = backend as WasmBackend;
  const { x, cos, sin } = inputs as Record<"x" | "cos" | "sin", tf.TensorInfo>;
  const sign = (attrs?.sign as number | undefined) ?? 1;
  const out = b.makeOutput(x.shape, "float32");
  const heap = b.wasm.HEAPU8.buffer;
  const view = (t: tf.TensorInfo, n: number): Float32Array => new Float32Array(heap, b.dataIdMap.get(t.dataId).memoryOffset, n);
  const d = x.shape[x.shape.length - 1] as number;
  const t = x.shape[x.shape.length - 2] as number;
  const size = x.shape.reduce((p, q) => p * q, 1);
  const xs = view(x, size);
  const ys = view(out, size);
  const cs = view(cos, t * d);
  const ss = view(sin, t * d);
  const half = d / 2;
  for (let row = 0; row < size / d; row++) {
    const base = row * d;
    const tb = (row % t) * d;
    for (let i = 0; i < half; i++) {
      const a = xs[base + i] as number;
      const c = xs[base + i + half] as number;
      ys[base + i] = a * (cs[tb + i] as number) - sign * c * (ss[tb + i] as number);
      ys[base + i + half] = c * (cs[tb + i + half] as number) + sign * a * (ss[tb + i + half] as number);
    }
  }
  return out;
}

/** Whether the fused kernels run natively right now (wasm backend, addon on). */
export function nativeFusedOn(): boolean {
  return fusedOn && tf.getBackend() === "wasm";
}

function composite(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const mask = labels.greaterEqual(0).toFloat();
    const safe = labels.maximum(tf.scalar(0, "int32")) as tf.Tensor1D;
    const picked = tf.logSoftmax(logits).mul(tf.oneHot(safe, logits.shape[1])).sum(-1);
    return picked.neg().mul(mask) as tf.Tensor1D;
  });
}

/**
 * Per-row cross-entropy of softmax(logits) against integer labels, 0 where
 * the label is negative (a position without loss). logits [rows, vocab],
 * labels int32 [rows]. On wasm with the native addon: one pass forward, one
 * pass backward, no [rows, vocab] temporaries besides the gradient.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  if (!nativeFusedOn() || logits.dtype !== "float32" || labels.dtype !== "int32") return composite(logits, labels);
  const op = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const [loss, lse] = tf.engine().runKernel(XENT, { logits: x, labels }) as unknown as [tf.Tensor1D, tf.Tensor1D];
    save([x, lse]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLogits, savedLse] = saved as [tf.Tensor2D, tf.Tensor1D];
        return tf.engine().runKernel(XENT_GRAD, { logits: savedLogits, labels, lse: savedLse, dy }) as tf.Tensor;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(logits) as tf.Tensor1D;
}

/**
 * Rotary position embedding in the rotate-half layout (HF LLaMA):
 * x [..., T, d] * cos + rotate_half(x) * sin, with cos/sin tables [T, d]
 * whose two halves repeat the same frequencies.
 */
export function rotaryEmbedding<T extends tf.Tensor>(x: T, cos: tf.Tensor2D, sin: tf.Tensor2D): T {
  if (!nativeFusedOn() || x.dtype !== "float32") {
    return tf.tidy(() => {
      const half = (x.shape[x.shape.length - 1] as number) / 2;
      const [a, b] = tf.split(x, [half, half], -1) as [tf.Tensor, tf.Tensor];
      return x.mul(cos).add(tf.concat([b.neg(), a], -1).mul(sin)) as T;
    });
  }
  const op = tf.customGrad(((input: tf.Tensor) => ({
    value: tf.engine().runKernel(ROTARY, { x: input, cos, sin }, { sign: 1 }) as tf.Tensor,
    gradFunc: (dy: tf.Tensor) => tf.engine().runKernel(ROTARY, { x: dy, cos, sin }, { sign: -1 }) as tf.Tensor,
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as T;
}
