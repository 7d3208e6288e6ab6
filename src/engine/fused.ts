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
const RMSNORM = "XalignRmsNorm";
const RMSNORM_GRAD = "XalignRmsNormGrad";
const SWIGLU = "XalignSwiglu";
const SWIGLU_GRAD = "XalignSwigluGrad";
const LAYER = "XalignDecoderLayer";
const LAYER_GRAD = "XalignDecoderLayerGrad";
const EMBED = "XalignEmbedding";
const EMBED_GRAD = "XalignEmbeddingGrad";
const ADAMW_ALL = "XalignAdamWAll";
const HEAD_LOSS = "XalignLmHeadLoss";
const HEAD_LOSS_GRAD = "XalignLmHeadLossGrad";
const ALL = [
  HEAD_LOSS,
  HEAD_LOSS_GRAD,
  XENT,
  XENT_GRAD,
  ROTARY,
  RMSNORM,
  RMSNORM_GRAD,
  SWIGLU,
  SWIGLU_GRAD,
  LAYER,
  LAYER_GRAD,
  EMBED,
  EMBED_GRAD,
  ADAMW_ALL,
];
/** A decoder layer's weights in the order the native kernels take them. */
const LAYER_WEIGHTS = ["inputNorm", "q", "k", "v", "o", "postNorm", "gate", "up", "down"] as const;
/** What the fused layer's forward keeps for its backward, in kernel order (after y). */
const LAYER_SAVED = ["r1", "xn1", "qkv", "p", "ctx", "h", "r2", "xn2", "gu", "act"] as const;

interface WasmBackend extends tf.KernelBackend {
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
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
let layersOn = true;
let nativeAddon: NativeAddon | undefined;

/**
 * Whether models may run a whole decoder layer as one fused kernel when the
 * native kernels are on (default true). Off, they use the per-op fused kernels:
 * for gradient checks of the layer kernel and for measuring what it gains.
 */
export function useFusedLayers(on: boolean): void {
  layersOn = on;
}
let copyingIdentity: tf.KernelConfig | undefined;

/**
 * tfjs-backend-wasm's Identity copies its input (every clone, and every
 * tensor the tape saves for a backward pass); tensors are immutable, so on the
 * native path it shares the data instead, as the cpu backend does. (The only
 * kernel that writes an input in place, fused AdamW, writes optimiser moments
 * that no other tensor shares.)
 */
function useSharingIdentity(on: boolean): void {
  const current = tf.getKernel("Identity", "wasm");
  if (!current) return;
  copyingIdentity ??= current;
  tf.unregisterKernel("Identity", "wasm");
  if (!on) {
    tf.registerKernel(copyingIdentity);
    return;
  }
  const copy = copyingIdentity.kernelFunc as (args: KernelArgs) => tf.TensorInfo;
  tf.registerKernel({
    ...copyingIdentity,
    kernelFunc: ((args: KernelArgs) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === "string") return copy(args);
      (args.backend as unknown as { incRef(id: tf.DataId): void }).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }) as tf.KernelConfig["kernelFunc"],
  });
}

/**
 * Runs a native call that fills `outputs`; when it throws (a bad token id or
 * label, a bounds check), the outputs' heap memory is freed before the error
 * goes on, so a rejected batch leaks nothing.
 */
function filling<T>(b: WasmBackend, outputs: tf.TensorInfo[], call: () => void, result: T): T {
  try {
    call();
  } catch (err) {
    for (const o of outputs) b.disposeData(o.dataId, true);
    throw err;
  }
  return result;
}

/** Registers (or, with `undefined`, switches off) the native fused kernels on the wasm backend. */
export function useNativeFused(addon: NativeAddon | undefined): boolean {
  for (const name of ALL) if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  fusedOn = false;
  nativeAddon = addon;
  useSharingIdentity(addon !== undefined);
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
      return filling(
        b,
        [loss, lse],
        () => addon.softmaxXent(b.wasm.HEAPU8, offset(b, logits), offset(b, labels), offset(b, loss), offset(b, lse), rows, vocab),
        [loss, lse],
      );
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
      return filling(
        b,
        [dx],
        () =>
          addon.softmaxXentGrad(
            b.wasm.HEAPU8,
            offset(b, logits),
            offset(b, labels),
            offset(b, lse),
            offset(b, dy),
            offset(b, dx),
            rows,
            vocab,
          ),
        dx,
      );
    }) as tf.KernelConfig["kernelFunc"],
  });
  tf.registerKernel({
    kernelName: ROTARY,
    backendName: "wasm",
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs) => {
      const b = backend as WasmBackend;
      const { x, cos, sin } = inputs as Record<"x" | "cos" | "sin", tf.TensorInfo>;
      const out = b.makeOutput(x.shape, "float32");
      const d = x.shape[x.shape.length - 1] as number;
      const t = x.shape[x.shape.length - 2] as number;
      const sign = (attrs?.sign as number | undefined) ?? 1;
      addon.rotary(b.wasm.HEAPU8, offset(b, x), offset(b, cos), offset(b, sin), offset(b, out), sizeOf(x) / d, t, d, sign);
      return out;
    }) as tf.KernelConfig["kernelFunc"],
  });
  const register = (
    kernelName: string,
    fn: (b: WasmBackend, inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown>) => unknown,
  ) =>
    tf.registerKernel({
      kernelName,
      backendName: "wasm",
      kernelFunc: (({ inputs, backend, attrs }: KernelArgs) =>
        fn(backend as WasmBackend, inputs, attrs ?? {})) as tf.KernelConfig["kernelFunc"],
    });
  register(RMSNORM, (b, { x }, a) => {
    const t = x as tf.TensorInfo;
    const [rows, d] = t.shape as [number, number];
    const y = b.makeOutput([rows, d], "float32");
    const r = b.makeOutput([rows], "float32");
    addon.rmsNorm(b.wasm.HEAPU8, offset(b, t), offset(b, y), offset(b, r), rows, d, a.eps as number);
    return [y, r];
  });
  register(RMSNORM_GRAD, (b, { x, r, dy }) => {
    const t = x as tf.TensorInfo;
    const [rows, d] = t.shape as [number, number];
    const dx = b.makeOutput([rows, d], "float32");
    addon.rmsNormGrad(b.wasm.HEAPU8, offset(b, t), offset(b, r as tf.TensorInfo), offset(b, dy as tf.TensorInfo), offset(b, dx), rows, d);
    return dx;
  });
  register(SWIGLU, (b, { gate, up }) => {
    const g = gate as tf.TensorInfo;
    const y = b.makeOutput(g.shape, "float32");
    addon.swiglu(b.wasm.HEAPU8, offset(b, g), offset(b, up as tf.TensorInfo), offset(b, y), sizeOf(g));
    return y;
  });
  register(SWIGLU_GRAD, (b, { gate, up, dy }) => {
    const g = gate as tf.TensorInfo;
    const dgate = b.makeOutput(g.shape, "float32");
    const dup = b.makeOutput(g.shape, "float32");
    const o = (t: tf.TensorInfo | undefined) => offset(b, t as tf.TensorInfo);
    addon.swigluGrad(b.wasm.HEAPU8, o(g), o(up), o(dy), o(dgate), o(dup), sizeOf(g));
    return [dgate, dup];
  });
  register(ADAMW_ALL, (b, inputs, a) => {
    const n = a.count as number;
    const decay = a.decay as boolean[];
    const outs = Array.from({ length: n }, (_, i) => b.makeOutput((inputs[`p${i}`] as tf.TensorInfo).shape, "float32"));
    const o = (t: tf.TensorInfo | undefined) => offset(b, t as tf.TensorInfo);
    const num = (k: string) => a[k] as number;
    const table = new Float64Array(12 + 6 * n);
    table.set([
      n,
      num("beta1"),
      1 - num("beta1"),
      num("beta2"),
      1 - num("beta2"),
      num("bc1"),
      num("bc2"),
      num("epsilon"),
      num("lr"),
      num("lr") * num("weightDecay"),
      num("gradScale"),
      num("gradScale") === 1 ? 0 : 1,
    ]);
    for (let i = 0; i < n; i++) {
      const p = inputs[`p${i}`] as tf.TensorInfo;
      table.set(
        [
          o(p),
          o(inputs[`g${i}`]),
          o(inputs[`m${i}`]),
          o(inputs[`v${i}`]),
          o(outs[i]),
          sizeOf(p) * 2 + (decay[i] && num("weightDecay") > 0 ? 1 : 0),
        ],
        12 + 6 * i,
      );
    }
    return filling(b, outs, () => addon.adamwAll(b.wasm.HEAPU8, table), outs);
  });
  register(HEAD_LOSS, (b, { h, w, head, labels }, a) => {
    const [rows, d] = (h as tf.TensorInfo).shape as [number, number];
    const vocab = a.vocab as number;
    const outs = [
      b.makeOutput([], "float32"),
      b.makeOutput([rows], "float32"),
      b.makeOutput([rows, d], "float32"),
      b.makeOutput([rows, vocab], "float32"),
      b.makeOutput([rows], "float32"),
    ];
    const o = (t: tf.TensorInfo | undefined) => offset(b, t as tf.TensorInfo);
    const table = new Float64Array([o(h), o(w), o(head), o(labels), ...outs.map(o), rows, d, vocab, a.eps as number, a.tied ? 1 : 0]);
    return filling(b, outs, () => addon.lmHeadLoss(b.wasm.HEAPU8, table), outs);
  });
  register(HEAD_LOSS_GRAD, (b, inputs, a) => {
    const [rows, d] = (inputs.h as tf.TensorInfo).shape as [number, number];
    const vocab = a.vocab as number;
    const outs = [
      b.makeOutput([rows, d], "float32"),
      b.makeOutput([d], "float32"),
      b.makeOutput((inputs.head as tf.TensorInfo).shape, "float32"),
    ];
    const o = (t: tf.TensorInfo | undefined) => offset(b, t as tf.TensorInfo);
    const names = ["dy", "h", "w", "head", "labels", "r", "xn", "logits", "lse"];
    const table = new Float64Array([...names.map((n) => o(inputs[n])), ...outs.map(o), rows, d, vocab, a.tied ? 1 : 0]);
    return filling(b, outs, () => addon.lmHeadLossGrad(b.wasm.HEAPU8, table), outs);
  });
  register(EMBED, (b, { table, ids }) => {
    const [vocab, d] = (table as tf.TensorInfo).shape as [number, number];
    const rows = sizeOf(ids as tf.TensorInfo);
    const out = b.makeOutput([rows, d], "float32");
    const args = new Float64Array([offset(b, table as tf.TensorInfo), offset(b, ids as tf.TensorInfo), offset(b, out), rows, vocab, d]);
    return filling(b, [out], () => addon.embedding(b.wasm.HEAPU8, args), out);
  });
  register(EMBED_GRAD, (b, { ids, dy }, a) => {
    const [rows, d] = (dy as tf.TensorInfo).shape as [number, number];
    const vocab = a.vocab as number;
    const out = b.makeOutput([vocab, d], "float32");
    const args = new Float64Array([offset(b, ids as tf.TensorInfo), offset(b, dy as tf.TensorInfo), offset(b, out), rows, vocab, d]);
    return filling(b, [out], () => addon.embeddingGrad(b.wasm.HEAPU8, args), out);
  });
  register(LAYER, (b, inputs, a) => {
    const x = inputs.x as tf.TensorInfo;
    const dims = a.dims as number[];
    const [batch, t, d, nh, nkv, hd, f] = dims as [number, number, number, number, number, number, number];
    const rows = batch * t;
    const shapes: Record<(typeof LAYER_SAVED)[number], number[]> = {
      r1: [rows],
      xn1: [rows, d],
      qkv: [rows, (nh + 2 * nkv) * hd],
      p: [batch, nh, t, t],
      ctx: [rows, nh * hd],
      h: [rows, d],
      r2: [rows],
      xn2: [rows, d],
      gu: [rows, 2 * f],
      act: [rows, f],
    };
    // Every output is allocated before the heap view is taken: an allocation can grow (and replace) the heap.
    const outs = [b.makeOutput([rows, d], "float32"), ...LAYER_SAVED.map((name) => b.makeOutput(shapes[name], "float32"))];
    const o = (t: tf.TensorInfo) => offset(b, t);
    const table = new Float64Array([
      o(x),
      ...LAYER_WEIGHTS.map((name) => o(inputs[name] as tf.TensorInfo)),
      ...(["qcos", "qsin", "kcos", "ksin"] as const).map((name) => o(inputs[name] as tf.TensorInfo)),
      inputs.mask ? o(inputs.mask) : -1,
      ...outs.map(o),
      ...dims,
      a.eps as number,
    ]);
    return filling(b, outs, () => addon.decoderLayer(b.wasm.HEAPU8, table), outs);
  });
  register(LAYER_GRAD, (b, inputs, a) => {
    const dims = a.dims as number[];
    const [batch, t, d, nh, nkv, hd, f] = dims as [number, number, number, number, number, number, number];
    const shapes = [[batch * t, d], [d], [d, nh * hd], [d, nkv * hd], [d, nkv * hd], [nh * hd, d], [d], [d, f], [d, f], [f, d]];
    const outs = shapes.map((shape) => b.makeOutput(shape, "float32"));
    const o = (t: tf.TensorInfo) => offset(b, t);
    const table = new Float64Array([
      o(inputs.dy as tf.TensorInfo),
      o(inputs.x as tf.TensorInfo),
      ...LAYER_WEIGHTS.map((name) => o(inputs[name] as tf.TensorInfo)),
      ...(["qcos", "qsin", "kcos", "ksin"] as const).map((name) => o(inputs[name] as tf.TensorInfo)),
      ...LAYER_SAVED.map((name) => o(inputs[`saved_${name}`] as tf.TensorInfo)),
      ...outs.map(o),
      ...dims,
    ]);
    return filling(b, outs, () => addon.decoderLayerGrad(b.wasm.HEAPU8, table), outs);
  });
  fusedOn = true;
  return true;
}

/*
 * Rotary (XalignRotary): y = x * cos + rotate_half(x) * sign * sin over the last
 * axis. With sign -1 it is the gradient: rotate-half tables repeat each
 * frequency in both halves, so the transpose of the rotation is the rotation
 * by -angle.
 */

function sizeOf(t: tf.TensorInfo): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/**
 * The wasm heap and the byte offsets of `tensors` on it, for a native call that reads them in place;
 * undefined unless the fused kernels run natively and every tensor is float32. Take it right before
 * the call: a later allocation can grow the heap and replace the view.
 */
export function wasmHeapOffsets(tensors: tf.Tensor[]): { heap: Uint8Array; offsets: number[] } | undefined {
  if (!nativeFusedOn() || tensors.some((t) => t.dtype !== "float32" || t.isDisposed)) return undefined;
  const b = tf.backend() as unknown as WasmBackend;
  return { heap: b.wasm.HEAPU8, offsets: tensors.map((t) => b.dataIdMap.get(t.dataId).memoryOffset) };
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
    // Labels are saved too: the caller's tidy may dispose them before the backward pass runs.
    save([x, lse, labels]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLogits, savedLse, savedLabels] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        return tf.engine().runKernel(XENT_GRAD, { logits: savedLogits, labels: savedLabels, lse: savedLse, dy }) as tf.Tensor;
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
  const op = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    // The tables are saved: the caller's tidy may dispose them before the backward pass runs.
    save([cos, sin]);
    return {
      value: tf.engine().runKernel(ROTARY, { x: input, cos, sin }, { sign: 1 }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [c, s] = saved as [tf.Tensor2D, tf.Tensor2D];
        return tf.engine().runKernel(ROTARY, { x: dy, cos: c, sin: s }, { sign: -1 }) as tf.Tensor;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as T;
}

/**
 * x / sqrt(mean(x^2) + eps) per row of x [rows, d] (RMSNorm without its
 * weight, which callers fold into the next projection).
 */
export function rmsNormalize(x: tf.Tensor2D, eps: number): tf.Tensor2D {
  if (!nativeFusedOn() || x.dtype !== "float32" || x.rank !== 2) {
    return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), 1, true), eps))) as tf.Tensor2D);
  }
  const op = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, r] = tf.engine().runKernel(RMSNORM, { x: input }, { eps }) as unknown as [tf.Tensor2D, tf.Tensor1D];
    save([input, r]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sr] = saved as [tf.Tensor2D, tf.Tensor1D];
        return tf.engine().runKernel(RMSNORM_GRAD, { x: sx, r: sr, dy }) as tf.Tensor;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as tf.Tensor2D;
}

/** SwiGLU's gating: silu(gate) * up, elementwise over two tensors of one shape. */
export function swiglu<T extends tf.Tensor>(gate: T, up: T): T {
  if (!nativeFusedOn() || gate.dtype !== "float32" || up.dtype !== "float32" || !tf.util.arraysEqual(gate.shape, up.shape)) {
    return tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as T);
  }
  const op = tf.customGrad(((g: tf.Tensor, u: tf.Tensor, save: tf.GradSaveFunc) => {
    save([g, u]);
    return {
      value: tf.engine().runKernel(SWIGLU, { gate: g, up: u }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sg, su] = saved as [tf.Tensor, tf.Tensor];
        return tf.engine().runKernel(SWIGLU_GRAD, { gate: sg, up: su, dy }) as unknown as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(gate, up) as T;
}

/** One variable's part of {@link fusedAdamWAll}: parameter, gradient, moments, and whether it decays. */
export interface AdamWEntry {
  p: tf.Tensor;
  g: tf.Tensor;
  m: tf.Tensor;
  v: tf.Tensor;
  decay: boolean;
}

/**
 * One AdamW step over every variable in a single native call (PyTorch's
 * "fused"/"foreach" optimisers in spirit), when the fused kernels are on; else
 * undefined. The gradient used is g * gradScale (clipping and accumulation
 * folded in, multiplied first as the TF.js path does); moments are updated in
 * place and the new parameters are returned in order.
 */
export function fusedAdamWAll(entries: AdamWEntry[], options: AdamWStepOptions): tf.Tensor[] | undefined {
  if (!nativeFusedOn()) return undefined;
  for (const { p, g, m, v } of entries) {
    if ([p, g, m, v].some((t) => t.dtype !== "float32" || !tf.util.arraysEqual(t.shape, p.shape))) return undefined;
  }
  const inputs: tf.NamedTensorMap = {};
  entries.forEach((e, i) => {
    inputs[`p${i}`] = e.p;
    inputs[`g${i}`] = e.g;
    inputs[`m${i}`] = e.m;
    inputs[`v${i}`] = e.v;
  });
  const attrs = { ...options, count: entries.length, decay: entries.map((e) => e.decay) };
  return tf.engine().runKernel(ADAMW_ALL, inputs, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
}

/**
 * The sum of squares of every element of `tensors` (accumulated in double),
 * read straight from the wasm heap in one native call, when the fused kernels
 * are on; else undefined.
 */
export function fusedSumOfSquares(tensors: tf.Tensor[]): number | undefined {
  if (!nativeFusedOn() || !nativeAddon || tensors.some((t) => t.dtype !== "float32")) return undefined;
  const b = tf.backend() as unknown as WasmBackend;
  const table = new Float64Array(1 + 2 * tensors.length);
  table[0] = tensors.length;
  tensors.forEach((t, i) => {
    table[1 + 2 * i] = b.dataIdMap.get(t.dataId).memoryOffset;
    table[2 + 2 * i] = t.size;
  });
  return nativeAddon.sumSquares(b.wasm.HEAPU8, table);
}

export interface AdamWStepOptions {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** Decoupled weight decay (0: none) for the entries whose `decay` is set. */
  weightDecay: number;
  /** The gradient used is g * gradScale. */
  gradScale: number;
  lr: number;
  /** 1 - beta1^t and 1 - beta2^t. */
  bc1: number;
  bc2: number;
}

/** A pre-norm LLaMA decoder layer's weights (projections in [in, out] layout, norms [hidden]). */
export type DecoderLayerWeights = Record<(typeof LAYER_WEIGHTS)[number], tf.Tensor>;

export interface DecoderLayerInputs {
  batch: number;
  t: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  /** Rotary tables [batch * t, headDim] per row: the queries' with the attention scale folded in, the keys' without. */
  query: { cos: tf.Tensor2D; sin: tf.Tensor2D };
  key: { cos: tf.Tensor2D; sin: tf.Tensor2D };
  /** int32 [batch, t], 1 for real tokens: padded keys get the -1e9 bias as well as future ones. Undefined: none padded. */
  keyMask?: tf.Tensor2D;
}

/**
 * One whole decoder layer (RMSNorm, attention with rotary positions and
 * grouped-query heads, residual, RMSNorm, SwiGLU, residual) as one native
 * kernel forward and one backward, with the gradients of the input and all
 * nine weights, when the fused kernels are on; else undefined (the caller runs
 * the unfused ops, which compute the same maths). Rows [batch * t, hidden].
 */
export function fusedDecoderLayer(x: tf.Tensor2D, weights: DecoderLayerWeights, inputs: DecoderLayerInputs): tf.Tensor2D | undefined {
  const ws = LAYER_WEIGHTS.map((name) => weights[name]);
  if (!layersOn || !nativeFusedOn() || x.dtype !== "float32" || ws.some((w) => w.dtype !== "float32")) return undefined;
  const { batch, t, heads, kvHeads, headDim, eps } = inputs;
  const d = x.shape[1];
  const f = weights.gate.shape[1] as number;
  const dims = [batch, t, d, heads, kvHeads, headDim, f];
  const named = (list: tf.Tensor[], names: readonly string[], prefix = "") =>
    Object.fromEntries(names.map((name, i) => [`${prefix}${name}`, list[i] as tf.Tensor]));
  const tables = { qcos: inputs.query.cos, qsin: inputs.query.sin, kcos: inputs.key.cos, ksin: inputs.key.sin };
  const op = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [input, ...w] = args as tf.Tensor[];
    const kernelInputs: tf.NamedTensorMap = { x: input as tf.Tensor, ...named(w, LAYER_WEIGHTS), ...tables };
    if (inputs.keyMask) kernelInputs.mask = inputs.keyMask;
    const [y, ...saved] = tf.engine().runKernel(LAYER, kernelInputs, { dims, eps }) as unknown as tf.Tensor[];
    // The tables are saved too: the caller's tidy may dispose them before the backward pass runs.
    save([input as tf.Tensor, ...w, tables.qcos, tables.qsin, tables.kcos, tables.ksin, ...saved]);
    return {
      value: y as tf.Tensor,
      gradFunc: (dy: tf.Tensor, kept: tf.Tensor[]) => {
        const [sx, ...rest] = kept;
        const sw = rest.slice(0, 9);
        const [qcos, qsin, kcos, ksin] = rest.slice(9, 13) as tf.Tensor[];
        const gradInputs: tf.NamedTensorMap = {
          dy,
          x: sx as tf.Tensor,
          ...named(sw, LAYER_WEIGHTS),
          qcos: qcos as tf.Tensor,
          qsin: qsin as tf.Tensor,
          kcos: kcos as tf.Tensor,
          ksin: ksin as tf.Tensor,
          ...named(rest.slice(13), LAYER_SAVED, "saved_"),
        };
        return tf.engine().runKernel(LAYER_GRAD, gradInputs, { dims }) as unknown as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (...t: tf.Tensor[]) => tf.Tensor)(x, ...ws) as tf.Tensor2D;
}

/**
 * Rows of `table` [vocab, d] for int32 `ids` (any shape): [ids.size, d].
 * Native when the fused kernels are on (a row copy each way; the gradient is
 * the dense [vocab, d] sum of the rows' gradients per id); else tf.gather.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => nativeEmbedding(table, tf.reshape(ids, [ids.size])));
}

function nativeEmbedding(table: tf.Tensor2D, flat: tf.Tensor): tf.Tensor2D {
  if (!nativeFusedOn() || table.dtype !== "float32" || flat.dtype !== "int32") return tf.gather(table, flat) as tf.Tensor2D;
  const vocab = table.shape[0];
  const op = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([flat]);
    return {
      value: tf.engine().runKernel(EMBED, { table: t, ids: flat }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.engine().runKernel(EMBED_GRAD, { ids: saved[0] as tf.Tensor, dy }, { vocab }) as tf.Tensor,
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(table) as tf.Tensor2D;
}

/**
 * The final RMSNorm (times `normWeight`), the LM head and the mean
 * cross-entropy over labels >= 0 (0 when none), as one native kernel each way,
 * when the fused kernels are on; else undefined. h [rows, d], labels int32
 * [rows]; `head` is [d, vocab], or the embedding [vocab, d] when `tied`.
 */
export function fusedLmHeadLoss(
  h: tf.Tensor2D,
  normWeight: tf.Tensor,
  head: tf.Tensor2D,
  labels: tf.Tensor1D,
  options: { eps: number; tied: boolean },
): tf.Scalar | undefined {
  if (!nativeFusedOn() || [h, normWeight, head].some((t) => t.dtype !== "float32") || labels.dtype !== "int32") return undefined;
  const vocab = options.tied ? head.shape[0] : head.shape[1];
  const attrs = { eps: options.eps, tied: options.tied, vocab };
  const op = tf.customGrad(((x: tf.Tensor, w: tf.Tensor, hw: tf.Tensor, save: tf.GradSaveFunc) => {
    const [loss, r, xn, logits, lse] = tf.engine().runKernel(HEAD_LOSS, { h: x, w, head: hw, labels }, attrs) as unknown as tf.Tensor[];
    // Labels are saved too: the caller's tidy may dispose them before the backward pass runs.
    save([x, w, hw, labels, r, xn, logits, lse] as tf.Tensor[]);
    return {
      value: loss as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const names = ["h", "w", "head", "labels", "r", "xn", "logits", "lse"];
        const inputs: tf.NamedTensorMap = { dy };
        names.forEach((n, i) => {
          inputs[n] = saved[i] as tf.Tensor;
        });
        return tf.engine().runKernel(HEAD_LOSS_GRAD, inputs, attrs) as unknown as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (op as unknown as (...t: tf.Tensor[]) => tf.Tensor)(h, normWeight, head) as tf.Scalar;
}
