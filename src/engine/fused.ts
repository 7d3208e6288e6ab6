/**
 * Fused ops. Each is defined once with {@link defineFused}: a native kernel of
 * the wasm backend (and its gradient kernel) that runs when the addon is on and
 * the kernel takes the arguments, and one fallback from plain TF.js ops that
 * runs everywhere else, with the same maths, so results agree to float
 * rounding on every backend. Callers call the op: the choice is made here.
 *
 * @example
 * const perRow = softmaxCrossEntropy(logits, labels); // labels -1: no loss
 * const loss = perRow.sum().div(labels.greaterEqual(0).sum().maximum(1));
 */
import * as tf from "@tensorflow/tfjs";
import type { NativeAddon } from "./native.js";

/** A decoder layer's weights in the order the native kernels take them. */
const LAYER_WEIGHTS = ["inputNorm", "q", "k", "v", "o", "postNorm", "gate", "up", "down"] as const;
/** The fused layer's rotary tables, in kernel order. */
const LAYER_TABLES = ["qcos", "qsin", "kcos", "ksin"] as const;
/** What the fused layer's forward keeps for its backward, in kernel order (after y). */
const LAYER_SAVED = ["r1", "xn1", "qkv", "p", "ctx", "h", "r2", "xn2", "gu", "act"] as const;

interface WasmBackend extends tf.KernelBackend {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** One call of a native kernel: its inputs and attributes, the outputs it allocates, and the wasm heap they live on. */
export interface KernelCall<A extends tf.NamedAttrMap> {
  readonly addon: NativeAddon;
  readonly attrs: A;
  /** The input called `name` (an error when there is none). */
  input(name: string): tf.TensorInfo;
  /** Whether the call has an input called `name` (for optional ones). */
  has(name: string): boolean;
  /** A new float32 output. When the kernel throws, every output it allocated is freed before the error goes on. */
  out(shape: number[]): tf.TensorInfo;
  /** The byte offset on the heap of an input (by name) or an output. */
  at(tensor: string | tf.TensorInfo): number;
  /** The heap. Read it after the last {@link out}: an allocation can grow (and replace) it. */
  readonly heap: Uint8Array;
}

/** A native kernel: allocates its outputs with `k.out`, calls the addon, returns the outputs. */
export type FusedKernel<A extends tf.NamedAttrMap> = (k: KernelCall<A>) => tf.TensorInfo | tf.TensorInfo[];

/** The gradient of a fused op, as a native kernel registered as `${name}Grad`. */
export interface FusedGradient<A extends tf.NamedAttrMap> {
  /** The inputs the op is differentiated with respect to, in the order the kernel returns their gradients. */
  wrt: readonly string[];
  /** The inputs the kernel reads (kept for it: the caller's tidy may dispose them before the backward pass runs). */
  save: readonly string[];
  /** Names of the forward kernel's outputs after the first (the op's value), in order; the kernel reads them. */
  outputs: readonly string[];
  /** Reads `dy`, the saved inputs and outputs by name and the forward's attributes. */
  kernel: FusedKernel<A>;
}

interface FusedSpec<Args, A extends tf.NamedAttrMap, Out> {
  /** The kernel's name (its gradient's is `${name}Grad`). */
  name: string;
  /**
   * The kernel's named inputs and attributes for `args`, or undefined where the kernel does not take
   * them (a dtype or shape it has no code for): then the fallback runs. Asked only when the addon is on.
   */
  native(args: Args): { inputs: tf.NamedTensorMap; attrs: A } | undefined;
  forward: FusedKernel<A>;
  /** The same maths from TF.js ops, for every other case. */
  fallback(args: Args): Out;
}

/** A fused op with a gradient: its value is the forward kernel's first output. */
export interface FusedOpWithGradient<Args, A extends tf.NamedAttrMap> extends FusedSpec<Args, A, tf.Tensor> {
  backward: FusedGradient<A>;
}

/** A fused op without a gradient: `result` makes its value from the kernel's outputs. */
export interface FusedOpWithoutGradient<Args, A extends tf.NamedAttrMap, Out> extends FusedSpec<Args, A, Out> {
  backward?: undefined;
  result(outputs: tf.Tensor[], args: Args): Out;
}

let fusedOn = false;
let layersOn = true;
let nativeAddon: NativeAddon | undefined;
/** Every defined op's kernel configs for an addon, registered by {@link useNativeFused}. */
const definitions: { names: string[]; configs(addon: NativeAddon): tf.KernelConfig[] }[] = [];

/**
 * Defines a fused op: registers its kernels (now if the addon is on, and on every {@link useNativeFused}),
 * frees the outputs of a kernel call that throws, wraps the kernels in a custom gradient, and makes the one
 * choice between the kernel and the fallback. Returns the op.
 */
export function defineFused<Args, A extends tf.NamedAttrMap>(spec: FusedOpWithGradient<Args, A>): (args: Args) => tf.Tensor;
export function defineFused<Args, A extends tf.NamedAttrMap, Out>(spec: FusedOpWithoutGradient<Args, A, Out>): (args: Args) => Out;
export function defineFused<Args, A extends tf.NamedAttrMap, Out>(
  spec: FusedOpWithGradient<Args, A> | FusedOpWithoutGradient<Args, A, Out>,
): (args: Args) => tf.Tensor | Out {
  const { name, backward } = spec;
  const gradName = `${name}Grad`;
  const definition = {
    names: backward ? [name, gradName] : [name],
    configs: (addon: NativeAddon) => [
      kernelConfig(name, spec.forward, addon),
      ...(backward ? [kernelConfig(gradName, backward.kernel, addon)] : []),
    ],
  };
  definitions.push(definition);
  if (nativeAddon) register(definition, nativeAddon);
  return (args) => {
    const call = nativeFusedOn() ? spec.native(args) : undefined;
    if (!call) return spec.fallback(args);
    const { inputs, attrs } = call;
    if (!spec.backward) return spec.result(runKernel(name, inputs, attrs), args);
    const { wrt, save, outputs } = spec.backward;
    const op = tf.customGrad((...params: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const { tensors: diff, save: keep } = gradArgs(params);
      const named: tf.NamedTensorMap = { ...inputs, ...Object.fromEntries(wrt.map((n, i) => [n, need(diff[i], `${name} argument ${n}`)])) };
      const outs = runKernel(name, named, attrs);
      keep([...save.map((n) => need(named[n], `${name} input ${n}`)), ...outs.slice(1)]);
      return {
        value: need(outs[0], `${name} output`),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const gradInputs: tf.NamedTensorMap = { dy };
          [...save, ...outputs].forEach((n, i) => {
            gradInputs[n] = need(saved[i], `${gradName} input ${n}`);
          });
          return runKernel(gradName, gradInputs, attrs);
        },
      };
    });
    return op(...wrt.map((n) => need(inputs[n], `${name} input ${n}`)));
  };
}

/** Runs a registered kernel; its outputs as a list. */
function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor[] {
  const outputs = tf.engine().runKernel(name, inputs, attrs);
  return Array.isArray(outputs) ? outputs : [outputs];
}

/** A custom gradient's arguments: the tensors, then the function that saves tensors for the backward pass. */
function gradArgs(params: (tf.Tensor | tf.GradSaveFunc)[]): { tensors: tf.Tensor[]; save: tf.GradSaveFunc } {
  const save = params[params.length - 1];
  if (typeof save !== "function") throw new Error("fused ops: a custom gradient without its save function");
  return { tensors: params.filter((p): p is tf.Tensor => p instanceof tf.Tensor), save };
}

/** `found`, which must be there (an internal error naming `what` otherwise). */
function need<T>(found: T | undefined, what: string): T {
  if (found === undefined) throw new Error(`fused ops: no ${what}`);
  return found;
}

function kernelConfig<A extends tf.NamedAttrMap>(kernelName: string, kernel: FusedKernel<A>, addon: NativeAddon): tf.KernelConfig {
  return {
    kernelName,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as WasmBackend;
      const made: tf.TensorInfo[] = [];
      const offset = (t: tf.TensorInfo) => b.dataIdMap.get(t.dataId).memoryOffset;
      const input = (name: string) => need(inputs[name], `${kernelName} input ${name}`);
      const k: KernelCall<A> = {
        addon,
        attrs: (attrs ?? {}) as A,
        input,
        has: (name) => inputs[name] !== undefined,
        out: (shape) => {
          const t = b.makeOutput(shape, "float32");
          made.push(t);
          return t;
        },
        at: (t) => offset(typeof t === "string" ? input(t) : t),
        get heap() {
          return b.wasm.HEAPU8;
        },
      };
      try {
        return kernel(k);
      } catch (err) {
        // A bad token id or label, a bounds check: a rejected call leaks nothing.
        for (const o of made) b.disposeData(o.dataId, true);
        throw err;
      }
    },
  };
}

function register(definition: (typeof definitions)[number], addon: NativeAddon): void {
  for (const config of definition.configs(addon)) tf.registerKernel(config);
}

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
  const copy = copyingIdentity.kernelFunc;
  tf.registerKernel({
    ...copyingIdentity,
    kernelFunc: (args) => {
      const x = need(args.inputs.x, "Identity input x");
      if (x.dtype === "string") return copy(args);
      (args.backend as WasmBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
}

/** Registers (or, with `undefined`, switches off) the native fused kernels on the wasm backend. */
export function useNativeFused(addon: NativeAddon | undefined): boolean {
  for (const { names } of definitions) for (const name of names) if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
  fusedOn = false;
  nativeAddon = addon;
  useSharingIdentity(addon !== undefined);
  if (!addon) return false;
  for (const definition of definitions) register(definition, addon);
  fusedOn = true;
  return true;
}

/** Number of elements of `t`. */
function sizeOf(t: tf.TensorInfo): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

/** [rows, width] of `t` read as rows of its last axis. */
function rowsOf(t: tf.TensorInfo): [number, number] {
  const width = t.shape[t.shape.length - 1] ?? 1;
  return [sizeOf(t) / width, width];
}

/**
 * The wasm heap and the byte offsets of `tensors` on it, for a native call that reads them in place;
 * undefined unless the fused kernels run natively and every tensor is float32. Take it right before
 * the call: a later allocation can grow the heap and replace the view.
 */
export function wasmHeapOffsets(tensors: tf.Tensor[]): { heap: Uint8Array; offsets: number[] } | undefined {
  if (!nativeFusedOn() || tensors.some((t) => t.dtype !== "float32" || t.isDisposed)) return undefined;
  const b = wasmBackend();
  return { heap: b.wasm.HEAPU8, offsets: tensors.map((t) => b.dataIdMap.get(t.dataId).memoryOffset) };
}

/** The current backend, which must be wasm (see {@link nativeFusedOn}). */
function wasmBackend(): WasmBackend {
  return tf.backend() as WasmBackend;
}

/** Whether the fused kernels run natively right now (wasm backend, addon on). */
export function nativeFusedOn(): boolean {
  return fusedOn && tf.getBackend() === "wasm";
}

/**
 * log(sum(exp(x))) per row, with its gradient written out (softmax times the
 * incoming gradient). tf.logSumExp differentiates through its max shift with
 * an Equal over the whole [tokens, vocab] matrix, which on wasm cost more than
 * the rest of the loss; the shift's gradient cancels out anyway.
 */
const rowLogSumExp = tf.customGrad((...params: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const { tensors, save } = gradArgs(params);
  const logits = need(tensors[0], "rowLogSumExp input");
  const max = tf.max(logits, 1, true);
  const value = tf.add(tf.log(tf.sum(tf.exp(tf.sub(logits, max)), 1, true)), max);
  save([logits, value]);
  return {
    value: tf.reshape(value, [logits.shape[0] ?? 0]),
    gradFunc: (dy: tf.Tensor, [input, lse]: tf.Tensor[]) =>
      tf.mul(tf.exp(tf.sub(need(input, "rowLogSumExp logits"), need(lse, "rowLogSumExp lse"))), tf.reshape(dy, [-1, 1])),
  };
});

const crossEntropy = defineFused({
  name: "XalignSoftmaxXent",
  native: ({ logits, labels }: { logits: tf.Tensor2D; labels: tf.Tensor1D }) =>
    logits.dtype === "float32" && labels.dtype === "int32" ? { inputs: { logits, labels }, attrs: {} } : undefined,
  forward: (k) => {
    const [rows, vocab] = rowsOf(k.input("logits"));
    const loss = k.out([rows]);
    const lse = k.out([rows]);
    k.addon.softmaxXent(k.heap, k.at("logits"), k.at("labels"), k.at(loss), k.at(lse), rows, vocab);
    return [loss, lse];
  },
  backward: {
    wrt: ["logits"],
    save: ["logits", "labels"],
    outputs: ["lse"],
    kernel: (k) => {
      const [rows, vocab] = rowsOf(k.input("logits"));
      const dx = k.out([rows, vocab]);
      k.addon.softmaxXentGrad(k.heap, k.at("logits"), k.at("labels"), k.at("lse"), k.at("dy"), k.at(dx), rows, vocab);
      return dx;
    },
  },
  // logsumexp(logits) minus the target's logit, picked with a gather: never a one-hot [rows, vocab] tensor.
  fallback: ({ logits, labels }) =>
    tf.tidy(() => {
      const [n, vocab] = logits.shape;
      const targets = labels.dtype === "int32" ? labels : tf.cast(labels, "int32");
      const valid = tf.greaterEqual(targets, 0);
      const safeTargets = tf.where(valid, targets, tf.zerosLike(targets));
      const offsets = tf.add(tf.mul(tf.range(0, n, 1, "int32"), tf.scalar(vocab, "int32")), safeTargets);
      const picked = tf.gather(tf.reshape(logits, [n * vocab]), offsets);
      return tf.mul(tf.sub(rowLogSumExp(logits), picked), tf.cast(valid, "float32"));
    }),
});

/**
 * Per-row cross-entropy of softmax(logits) against integer labels, 0 where
 * the label is negative (a position without loss). logits [rows, vocab],
 * labels int32 [rows]. On wasm with the native addon: one pass forward, one
 * pass backward, no [rows, vocab] temporaries besides the gradient.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return crossEntropy({ logits, labels }) as tf.Tensor1D;
}

/** The [dim, dim] matrix R with x @ R = rotate_half(x) = [-x2, x1]. */
function rotateHalfMatrix(dim: number): tf.Tensor2D {
  const half = dim / 2;
  const r = new Float32Array(dim * dim);
  for (let i = 0; i < half; i++) {
    r[(i + half) * dim + i] = -1;
    r[i * dim + (i + half)] = 1;
  }
  return tf.tensor2d(r, [dim, dim]);
}

/**
 * y = x * cos + rotate_half(x) * sign * sin over the last axis; with sign -1 it is the gradient: rotate-half
 * tables repeat each frequency in both halves, so the transpose of the rotation is the rotation by -angle.
 */
function rotate<A extends tf.NamedAttrMap>(k: KernelCall<A>, x: tf.TensorInfo, sign: number): tf.TensorInfo {
  const out = k.out(x.shape);
  const [rows, d] = rowsOf(x);
  const t = x.shape[x.shape.length - 2] ?? 1;
  k.addon.rotary(k.heap, k.at(x), k.at("cos"), k.at("sin"), k.at(out), rows, t, d, sign);
  return out;
}

const rotary = defineFused({
  name: "XalignRotary",
  native: ({ x, cos, sin }: { x: tf.Tensor; cos: tf.Tensor2D; sin: tf.Tensor2D }) =>
    x.dtype === "float32" ? { inputs: { x, cos, sin }, attrs: {} } : undefined,
  forward: (k) => rotate(k, k.input("x"), 1),
  backward: { wrt: ["x"], save: ["cos", "sin"], outputs: [], kernel: (k) => rotate(k, k.input("dy"), -1) },
  // rotate_half as one matMul by a signed permutation (exact: one non-zero product per element), on rows of the last axis.
  fallback: ({ x, cos, sin }) =>
    tf.tidy(() => {
      const d = x.shape[x.rank - 1] ?? 1;
      const rows = x.rank === 2 ? x : tf.reshape(x, [-1, d]);
      const rotated = tf.matMul(rows, rotateHalfMatrix(d));
      return tf.add(tf.mul(x, cos), tf.mul(x.rank === 2 ? rotated : tf.reshape(rotated, x.shape), sin));
    }),
});

/**
 * Rotary position embedding in the rotate-half layout (HF LLaMA):
 * x [..., T, d] * cos + rotate_half(x) * sin, with cos/sin tables [T, d]
 * whose two halves repeat the same frequencies.
 */
export function rotaryEmbedding<T extends tf.Tensor>(x: T, cos: tf.Tensor2D, sin: tf.Tensor2D): T {
  return rotary({ x, cos, sin }) as T;
}

const rmsNorm = defineFused({
  name: "XalignRmsNorm",
  native: ({ x, eps }: { x: tf.Tensor2D; eps: number }) =>
    x.dtype === "float32" && x.rank === 2 ? { inputs: { x }, attrs: { eps } } : undefined,
  forward: (k) => {
    const [rows, d] = rowsOf(k.input("x"));
    const y = k.out([rows, d]);
    const r = k.out([rows]);
    k.addon.rmsNorm(k.heap, k.at("x"), k.at(y), k.at(r), rows, d, k.attrs.eps);
    return [y, r];
  },
  backward: {
    wrt: ["x"],
    save: ["x"],
    outputs: ["r"],
    kernel: (k) => {
      const [rows, d] = rowsOf(k.input("x"));
      const dx = k.out([rows, d]);
      k.addon.rmsNormGrad(k.heap, k.at("x"), k.at("r"), k.at("dy"), k.at(dx), rows, d);
      return dx;
    },
  },
  fallback: ({ x, eps }) => tf.tidy(() => tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), 1, true), eps)))),
});

/**
 * x / sqrt(mean(x^2) + eps) per row of x [rows, d] (RMSNorm without its
 * weight, which callers fold into the next projection).
 */
export function rmsNormalize(x: tf.Tensor2D, eps: number): tf.Tensor2D {
  return rmsNorm({ x, eps }) as tf.Tensor2D;
}

const swigluOp = defineFused({
  name: "XalignSwiglu",
  native: ({ gate, up }: { gate: tf.Tensor; up: tf.Tensor }) =>
    gate.dtype === "float32" && up.dtype === "float32" && tf.util.arraysEqual(gate.shape, up.shape)
      ? { inputs: { gate, up }, attrs: {} }
      : undefined,
  forward: (k) => {
    const gate = k.input("gate");
    const y = k.out(gate.shape);
    k.addon.swiglu(k.heap, k.at(gate), k.at("up"), k.at(y), sizeOf(gate));
    return y;
  },
  backward: {
    wrt: ["gate", "up"],
    save: ["gate", "up"],
    outputs: [],
    kernel: (k) => {
      const gate = k.input("gate");
      const dgate = k.out(gate.shape);
      const dup = k.out(gate.shape);
      k.addon.swigluGrad(k.heap, k.at(gate), k.at("up"), k.at("dy"), k.at(dgate), k.at(dup), sizeOf(gate));
      return [dgate, dup];
    },
  },
  fallback: ({ gate, up }) => tf.tidy(() => tf.mul(tf.mul(gate, tf.sigmoid(gate)), up)),
});

/** SwiGLU's gating: silu(gate) * up, elementwise over two tensors of one shape. */
export function swiglu<T extends tf.Tensor>(gate: T, up: T): T {
  return swigluOp({ gate, up }) as T;
}

/** One variable's part of {@link adamWStep}: parameter, gradient, moments, and whether it decays. */
export interface AdamWEntry {
  p: tf.Variable;
  g: tf.Tensor;
  m: tf.Variable;
  v: tf.Variable;
  decay: boolean;
}

export type AdamWStepOptions = {
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
};

const adamW = defineFused({
  name: "XalignAdamWAll",
  native: ({ entries, options }: { entries: AdamWEntry[]; options: AdamWStepOptions }) => {
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
    return { inputs, attrs: { ...options, count: entries.length, decay: entries.map((e) => e.decay) } };
  },
  forward: (k) => {
    const a = k.attrs;
    const n = a.count;
    const outs = Array.from({ length: n }, (_, i) => k.out(k.input(`p${i}`).shape));
    const table = new Float64Array(12 + 6 * n);
    table.set([
      n,
      a.beta1,
      1 - a.beta1,
      a.beta2,
      1 - a.beta2,
      a.bc1,
      a.bc2,
      a.epsilon,
      a.lr,
      a.lr * a.weightDecay,
      a.gradScale,
      a.gradScale === 1 ? 0 : 1,
    ]);
    outs.forEach((out, i) => {
      const p = k.input(`p${i}`);
      const decays = a.decay[i] && a.weightDecay > 0 ? 1 : 0;
      table.set([k.at(p), k.at(`g${i}`), k.at(`m${i}`), k.at(`v${i}`), k.at(out), sizeOf(p) * 2 + decays], 12 + 6 * i);
    });
    k.addon.adamwAll(k.heap, table);
    return outs;
  },
  result: (next, { entries }) => {
    entries.forEach((e, i) => {
      e.p.assign(need(next[i], `XalignAdamWAll output ${i}`));
    });
    tf.dispose(next);
  },
  fallback: ({ entries, options }) => {
    const { beta1, beta2, epsilon, weightDecay, gradScale, lr, bc1, bc2 } = options;
    for (const { p, g: rawGrad, m, v, decay } of entries) {
      const wd = decay ? weightDecay : 0;
      tf.tidy(() => {
        const g = gradScale === 1 ? rawGrad : tf.mul(rawGrad, gradScale);
        const mNew = m.mul(beta1).add(g.mul(1 - beta1));
        const vNew = v.mul(beta2).add(g.square().mul(1 - beta2));
        const update = mNew.div(bc1).div(vNew.div(bc2).sqrt().add(epsilon));
        const decayed = wd > 0 ? p.sub(p.mul(lr * wd)) : p;
        m.assign(mNew);
        v.assign(vNew);
        p.assign(decayed.sub(update.mul(lr)));
      });
    }
  },
});

/**
 * One AdamW step over every variable: parameters and moments are updated in
 * place. With the fused kernels on, in a single native call (PyTorch's
 * "fused"/"foreach" optimisers in spirit), else with TF.js ops; the same
 * float32 operations in the same order either way. The gradient used is
 * g * gradScale (clipping and accumulation folded in, multiplied first).
 */
export function adamWStep(entries: AdamWEntry[], options: AdamWStepOptions): void {
  adamW({ entries, options });
}

/**
 * The sum of squares of every element of `tensors` (accumulated in double),
 * read straight from the wasm heap in one native call, when the fused kernels
 * are on; else undefined.
 */
export function fusedSumOfSquares(tensors: tf.Tensor[]): number | undefined {
  if (!nativeFusedOn() || !nativeAddon || tensors.some((t) => t.dtype !== "float32")) return undefined;
  const b = wasmBackend();
  const table = new Float64Array(1 + 2 * tensors.length);
  table[0] = tensors.length;
  tensors.forEach((t, i) => {
    table[1 + 2 * i] = b.dataIdMap.get(t.dataId).memoryOffset;
    table[2 + 2 * i] = t.size;
  });
  return nativeAddon.sumSquares(b.wasm.HEAPU8, table);
}

/** A pre-norm LLaMA decoder layer's weights (projections in [in, out] layout, norms [hidden]). */
export type DecoderLayerWeights = Record<(typeof LAYER_WEIGHTS)[number], tf.Tensor>;

/** The fused layer's per-row rotary tables and key mask. */
export interface DecoderLayerTables {
  /** Rotary tables [batch * t, headDim] per row: the queries' with the attention scale folded in, the keys' without. */
  query: { cos: tf.Tensor2D; sin: tf.Tensor2D };
  key: { cos: tf.Tensor2D; sin: tf.Tensor2D };
  /** int32 [batch, t], 1 for real tokens: padded keys get the -1e9 bias as well as future ones. Undefined: none padded. */
  keyMask?: tf.Tensor2D;
}

export interface DecoderLayerInputs {
  batch: number;
  t: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  /** The tables, made only when the layer kernel runs. */
  tables: () => DecoderLayerTables;
}

type LayerDims = [batch: number, t: number, d: number, nh: number, nkv: number, hd: number, f: number];

const layer = defineFused({
  name: "XalignDecoderLayer",
  native: ({
    x,
    weights,
    inputs,
  }: {
    x: tf.Tensor2D;
    weights: DecoderLayerWeights;
    inputs: DecoderLayerInputs;
    unfused: () => tf.Tensor2D;
  }) => {
    if (!layersOn || x.dtype !== "float32" || LAYER_WEIGHTS.some((name) => weights[name].dtype !== "float32")) return undefined;
    const { batch, t, heads, kvHeads, headDim, eps } = inputs;
    const dims: LayerDims = [batch, t, x.shape[1], heads, kvHeads, headDim, weights.gate.shape[1] ?? 0];
    const { query, key, keyMask } = inputs.tables();
    const tables = { qcos: query.cos, qsin: query.sin, kcos: key.cos, ksin: key.sin };
    return { inputs: { x, ...weights, ...tables, ...(keyMask ? { mask: keyMask } : {}) }, attrs: { dims, eps } };
  },
  forward: (k) => {
    const [batch, t, d, nh, nkv, hd, f] = k.attrs.dims;
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
    const outs = [k.out([rows, d]), ...LAYER_SAVED.map((name) => k.out(shapes[name]))];
    const table = new Float64Array([
      k.at("x"),
      ...LAYER_WEIGHTS.map(k.at),
      ...LAYER_TABLES.map(k.at),
      k.has("mask") ? k.at("mask") : -1,
      ...outs.map(k.at),
      ...k.attrs.dims,
      k.attrs.eps,
    ]);
    k.addon.decoderLayer(k.heap, table);
    return outs;
  },
  backward: {
    wrt: ["x", ...LAYER_WEIGHTS],
    // The tables are saved too: the caller's tidy may dispose them before the backward pass runs.
    save: ["x", ...LAYER_WEIGHTS, ...LAYER_TABLES],
    outputs: LAYER_SAVED,
    kernel: (k) => {
      const [batch, t, d, nh, nkv, hd, f] = k.attrs.dims;
      const shapes = [[batch * t, d], [d], [d, nh * hd], [d, nkv * hd], [d, nkv * hd], [nh * hd, d], [d], [d, f], [d, f], [f, d]];
      const outs = shapes.map(k.out);
      const names = ["dy", "x", ...LAYER_WEIGHTS, ...LAYER_TABLES, ...LAYER_SAVED];
      k.addon.decoderLayerGrad(k.heap, new Float64Array([...names.map(k.at), ...outs.map(k.at), ...k.attrs.dims]));
      return outs;
    },
  },
  fallback: ({ unfused }) => unfused(),
});

/**
 * One whole decoder layer (RMSNorm, attention with rotary positions and
 * grouped-query heads, residual, RMSNorm, SwiGLU, residual) as one native
 * kernel forward and one backward, with the gradients of the input and all
 * nine weights, when the fused kernels are on; else `unfused`, the caller's
 * per-op layer, which computes the same maths. Rows [batch * t, hidden].
 */
export function decoderLayer(
  x: tf.Tensor2D,
  weights: DecoderLayerWeights,
  inputs: DecoderLayerInputs,
  unfused: () => tf.Tensor2D,
): tf.Tensor2D {
  return layer({ x, weights, inputs, unfused }) as tf.Tensor2D;
}

const embedding = defineFused({
  name: "XalignEmbedding",
  native: ({ table, ids }: { table: tf.Tensor2D; ids: tf.Tensor1D }) =>
    table.dtype === "float32" && ids.dtype === "int32" ? { inputs: { table, ids }, attrs: { vocab: table.shape[0] } } : undefined,
  forward: (k) => {
    const [vocab, d] = rowsOf(k.input("table"));
    const rows = sizeOf(k.input("ids"));
    const out = k.out([rows, d]);
    k.addon.embedding(k.heap, new Float64Array([k.at("table"), k.at("ids"), k.at(out), rows, vocab, d]));
    return out;
  },
  backward: {
    wrt: ["table"],
    save: ["ids"],
    outputs: [],
    kernel: (k) => {
      const [rows, d] = rowsOf(k.input("dy"));
      const vocab = k.attrs.vocab;
      const out = k.out([vocab, d]);
      k.addon.embeddingGrad(k.heap, new Float64Array([k.at("ids"), k.at("dy"), k.at(out), rows, vocab, d]));
      return out;
    },
  },
  fallback: ({ table, ids }) => tf.gather(table, ids),
});

/**
 * Rows of `table` [vocab, d] for int32 `ids` (any shape): [ids.size, d].
 * Native when the fused kernels are on (a row copy each way; the gradient is
 * the dense [vocab, d] sum of the rows' gradients per id); else tf.gather.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor2D {
  return tf.tidy(() => embedding({ table, ids: tf.reshape(ids, [ids.size]) }) as tf.Tensor2D);
}

const headLoss = defineFused({
  name: "XalignLmHeadLoss",
  native: (a: {
    h: tf.Tensor2D;
    normWeight: tf.Tensor;
    head: tf.Tensor2D;
    labels: tf.Tensor1D;
    eps: number;
    tied: boolean;
    unfused: () => tf.Scalar;
  }) => {
    if ([a.h, a.normWeight, a.head].some((t) => t.dtype !== "float32") || a.labels.dtype !== "int32") return undefined;
    const vocab = a.tied ? a.head.shape[0] : a.head.shape[1];
    return { inputs: { h: a.h, w: a.normWeight, head: a.head, labels: a.labels }, attrs: { eps: a.eps, tied: a.tied, vocab } };
  },
  forward: (k) => {
    const [rows, d] = rowsOf(k.input("h"));
    const { vocab, eps, tied } = k.attrs;
    const outs = [k.out([]), k.out([rows]), k.out([rows, d]), k.out([rows, vocab]), k.out([rows])];
    const table = new Float64Array([...["h", "w", "head", "labels", ...outs].map(k.at), rows, d, vocab, eps, tied ? 1 : 0]);
    k.addon.lmHeadLoss(k.heap, table);
    return outs;
  },
  backward: {
    wrt: ["h", "w", "head"],
    // Labels are saved too: the caller's tidy may dispose them before the backward pass runs.
    save: ["h", "w", "head", "labels"],
    outputs: ["r", "xn", "logits", "lse"],
    kernel: (k) => {
      const [rows, d] = rowsOf(k.input("h"));
      const { vocab, tied } = k.attrs;
      const outs = [k.out([rows, d]), k.out([d]), k.out(k.input("head").shape)];
      const names = ["dy", "h", "w", "head", "labels", "r", "xn", "logits", "lse"];
      k.addon.lmHeadLossGrad(k.heap, new Float64Array([...[...names, ...outs].map(k.at), rows, d, vocab, tied ? 1 : 0]));
      return outs;
    },
  },
  fallback: ({ unfused }) => unfused(),
});

/**
 * The final RMSNorm (times `normWeight`), the LM head and the mean
 * cross-entropy over labels >= 0 (0 when none), as one native kernel each way,
 * when the fused kernels are on; else `unfused`, the caller's per-op loss.
 * h [rows, d], labels int32 [rows]; `head` is [d, vocab], or the embedding
 * [vocab, d] when `tied`.
 */
export function lmHeadLoss(
  h: tf.Tensor2D,
  normWeight: tf.Tensor,
  head: tf.Tensor2D,
  labels: tf.Tensor1D,
  options: { eps: number; tied: boolean },
  unfused: () => tf.Scalar,
): tf.Scalar {
  return headLoss({ h, normWeight, head, labels, ...options, unfused }) as tf.Scalar;
}
