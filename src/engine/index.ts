/**
 * One call initialises TensorFlow.js and chooses the backend.
 *
 * `auto` tries, in order: tensorflow (tfjs-node-gpu, then tfjs-node, when the
 * user installed one and it loads), webgpu (Dawn through the `webgpu` package,
 * a real GPU adapter only unless a software adapter is allowed), wasm, cpu.
 * `XALIGN_BACKEND` or the `backend` option forces one; a forced backend that
 * cannot start is a {@link BackendError} saying why and what to install.
 *
 * @example
 * import { initEngine } from "xalign";
 * const engine = await initEngine({ backend: "cpu" });
 * console.log(engine.backend, engine.reason);
 */
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs";
import { BackendError } from "../util/errors.js";
import { useNativeFused } from "./fused.js";
import { registerKernelFixes, useNativeMatMul } from "./kernels.js";
import { nativeStatus } from "./native.js";
import { registerThreadedWasm, wasmThreadsCount } from "./wasmThreads.js";

export type BackendName = "tensorflow" | "webgpu" | "wasm" | "cpu";
export const BACKENDS: readonly BackendName[] = ["tensorflow", "webgpu", "wasm", "cpu"];

export interface EngineOptions {
  /** A backend, or "auto" (default: $XALIGN_BACKEND, else "auto"). */
  backend?: BackendName | "auto";
  /** Accept a software WebGPU adapter (lavapipe, SwiftShader, llvmpipe). Default: $XALIGN_WEBGPU_SOFTWARE === "1". */
  allowSoftwareAdapter?: boolean;
  /**
   * On the wasm backend, run matMul through the native BLAS addon when it is
   * built (default: true unless $XALIGN_NATIVE is "0").
   */
  native?: boolean;
  /**
   * Threads (default: $XALIGN_WASM_THREADS, else 1). With the native addon
   * on, these are BLAS threads and the fused kernels' pthreads, and wasm
   * itself stays single-threaded. Without it, more than 1 starts tfjs's
   * threaded SIMD build (see wasmThreads.ts); only honoured if the wasm
   * backend has not started yet in this process.
   */
  threads?: number;
}

export interface BackendProbe {
  name: BackendName;
  available: boolean;
  /** Why it is or is not available, in words. */
  reason: string;
  /** Adapter or device name, when known. */
  device?: string;
}

export interface EngineInfo {
  backend: BackendName;
  /** Why this backend was chosen. */
  reason: string;
  device: string;
  /** Every backend tried on the way, with why it was or was not taken. */
  probes: BackendProbe[];
  tfjsVersion: string;
}

const require = createRequire(import.meta.url);
let current: EngineInfo | undefined;

/** Silences TF.js's "install tfjs-node" banner and other console chatter. */
function quietTfjs(): void {
  tf.env().set("PROD", true);
}

function parseBackend(value: string | undefined, source: string): BackendName | "auto" {
  if (value === undefined || value === "" || value === "auto") return "auto";
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new BackendError("XA_BACKEND_UNKNOWN", `unknown backend "${value}" in ${source}`, {
    hint: `use one of auto, ${BACKENDS.join(", ")}`,
  });
}

/** The `name` in an installed package's package.json, or undefined when it is not installed. */
function installedName(pkg: string): string | undefined {
  try {
    return (require(`${pkg}/package.json`) as { name?: string }).name ?? pkg;
  } catch {
    return undefined;
  }
}

async function tryTensorflow(): Promise<BackendProbe> {
  const impostors: string[] = [];
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    const name = installedName(pkg);
    if (name === undefined) continue;
    // package.json overrides @tensorflow/tfjs-node with plain tfjs (for danfojs-node): the folder exists, the binding does not.
    if (name !== pkg) {
      impostors.push(`node_modules/${pkg} is really ${name} (an npm override), not the native binding`);
      continue;
    }
    try {
      await import(pkg);
      if (tf.findBackend("tensorflow")) return { name: "tensorflow", available: true, reason: `${pkg} loaded`, device: pkg };
    } catch (err) {
      return { name: "tensorflow", available: false, reason: `${pkg} is installed but failed to load: ${firstLine(err)}` };
    }
  }
  const missing = "neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed (optional; see environment.md)";
  return {
    name: "tensorflow",
    available: false,
    reason: impostors.length ? `${impostors.join("; ")} (optional; see environment.md)` : missing,
  };
}

async function tryWebgpu(allowSoftware: boolean): Promise<BackendProbe> {
  let gpuModule: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
  try {
    gpuModule = (await import("webgpu")) as unknown as typeof gpuModule;
  } catch (err) {
    return { name: "webgpu", available: false, reason: `the webgpu package (Dawn) did not load: ${firstLine(err)}` };
  }
  const flags = (process.env.XALIGN_DAWN_FLAGS ?? "").split(",").filter((f) => f.length > 0);
  let gpu: GPU;
  try {
    Object.assign(globalThis, gpuModule.globals);
    gpu = gpuModule.create(flags);
  } catch (err) {
    return { name: "webgpu", available: false, reason: `Dawn failed to start: ${firstLine(err)}` };
  }
  const featureLevel = process.env.XALIGN_WEBGPU_FEATURE_LEVEL;
  const adapter = await gpu.requestAdapter(
    featureLevel ? ({ featureLevel } as GPURequestAdapterOptions) : { powerPreference: "high-performance" },
  );
  if (!adapter) {
    return {
      name: "webgpu",
      available: false,
      reason: "Dawn found no GPU adapter (needs a Vulkan loader and a GPU driver; see environment.md)",
    };
  }
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const device = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(" ") || "unknown adapter";
  const software =
    /swiftshader|lavapipe|llvmpipe|software|cpu/i.test(device) || (info as { isFallbackAdapter?: boolean })?.isFallbackAdapter === true;
  if (software && !allowSoftware) {
    return {
      name: "webgpu",
      available: false,
      reason: `only a software adapter (${device}); set XALIGN_WEBGPU_SOFTWARE=1 to use it anyway`,
      device,
    };
  }
  // tfjs-backend-webgpu looks for navigator.gpu.
  const nav = (globalThis as unknown as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, "gpu", { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
  try {
    await import("@tensorflow/tfjs-backend-webgpu");
  } catch (err) {
    return { name: "webgpu", available: false, reason: `@tensorflow/tfjs-backend-webgpu failed to load: ${firstLine(err)}` };
  }
  return { name: "webgpu", available: true, reason: software ? `software adapter allowed: ${device}` : `GPU adapter: ${device}`, device };
}

async function tryWasm(threads: number | undefined): Promise<BackendProbe> {
  try {
    await import("@tensorflow/tfjs-backend-wasm");
  } catch (err) {
    return { name: "wasm", available: false, reason: `@tensorflow/tfjs-backend-wasm failed to load: ${firstLine(err)}` };
  }
  if (threads === undefined || threads <= 1) {
    return { name: "wasm", available: true, reason: "WebAssembly (SIMD) backend", device: "cpu (wasm simd, 1 thread)" };
  }
  try {
    const ok = await registerThreadedWasm(threads);
    const note = ok ? `threaded SIMD build, ${threads} threads requested` : "single-threaded: the wasm backend had already started";
    return { name: "wasm", available: true, reason: `WebAssembly (SIMD) backend, ${note}`, device: "cpu (wasm simd)" };
  } catch (err) {
    return {
      name: "wasm",
      available: true,
      reason: `WebAssembly (SIMD) backend, 1 thread (threads failed: ${firstLine(err)})`,
      device: "cpu (wasm simd)",
    };
  }
}

function threadsFromEnv(): number | undefined {
  const raw = process.env.XALIGN_WASM_THREADS;
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    throw new BackendError("XA_BACKEND_THREADS", `XALIGN_WASM_THREADS must be a positive integer, got "${raw}"`, {
      hint: "unset it or set e.g. XALIGN_WASM_THREADS=2",
    });
  }
  return n;
}

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split("\n")[0] ?? "";
}

async function probe(name: BackendName, options: EngineOptions): Promise<BackendProbe> {
  switch (name) {
    case "tensorflow":
      return tryTensorflow();
    case "webgpu":
      return tryWebgpu(options.allowSoftwareAdapter ?? process.env.XALIGN_WEBGPU_SOFTWARE === "1");
    case "wasm": {
      const native = options.native !== false ? nativeStatus() : undefined;
      const threads = options.threads ?? threadsFromEnv();
      const p = await tryWasm(native?.available ? undefined : threads);
      if (p.available) p.reason += native ? `; ${native.reason}` : "; native BLAS acceleration off by request";
      return p;
    }
    case "cpu":
      return { name: "cpu", available: true, reason: "plain JavaScript backend (always available)", device: "cpu (javascript)" };
  }
}

async function activate(p: BackendProbe, options: EngineOptions): Promise<boolean> {
  try {
    const ok = await tf.setBackend(p.name);
    if (!ok) return false;
    await tf.ready();
    registerKernelFixes(p.name);
    if (p.name === "wasm") {
      const native = options.native !== false ? nativeStatus() : undefined;
      const n = wasmThreadsCount();
      p.device = `cpu (wasm simd, ${n} thread${n === 1 ? "" : "s"})`;
      useNativeFused(native?.addon);
      if (useNativeMatMul(native?.addon)) {
        const blasThreads = options.threads ?? threadsFromEnv() ?? 1;
        native?.addon?.setThreads(blasThreads);
        // The fused kernels' loops (AdamW, RMSNorm, SwiGLU, rotary) split over the same count.
        native?.addon?.setElementwiseThreads(blasThreads);
        p.device = `cpu (wasm simd + native ${native?.blas?.split(" ")[0] ?? "BLAS"} sgemm, ${blasThreads} thread${blasThreads === 1 ? "" : "s"})`;
      }
    }
    return true;
  } catch (err) {
    p.available = false;
    p.reason = `${p.reason}; but it failed to initialise: ${firstLine(err)}`;
    return false;
  }
}

const INSTALL_HINTS: Record<BackendName, string> = {
  tensorflow:
    "npm install @tensorflow/tfjs-node (CPU) or @tensorflow/tfjs-node-gpu (CUDA 11.2 + cuDNN 8.1); both download libtensorflow at install",
  webgpu: "install a Vulkan loader (apt-get install libvulkan1) and a GPU driver, or set XALIGN_WEBGPU_SOFTWARE=1 for a software adapter",
  wasm: "reinstall @tensorflow/tfjs-backend-wasm (npm ci)",
  cpu: "",
};

/**
 * Initialises TF.js on the requested backend (or the best available one) and
 * returns which backend runs and why. Calling it again with the same request
 * returns the current engine.
 */
export async function initEngine(options: EngineOptions = {}): Promise<EngineInfo> {
  return withoutRethrowingHandlers(() => startEngine(options));
}

const PROCESS_EVENTS = ["uncaughtException", "unhandledRejection"] as const;

/**
 * Runs `fn` and removes the process handlers that tfjs-backend-wasm's
 * Emscripten module installs while it starts: they rethrow every uncaught
 * exception and unhandled rejection. Rethrowing inside a handler makes Node
 * exit with code 7 whatever other handlers do, so a Jupyter kernel (which
 * reports stray errors and carries on) died on the first asynchronous error,
 * and a plain script printed the whole minified module instead of the error.
 * Only handlers added during `fn` whose whole body is such a rethrow are removed.
 */
async function withoutRethrowingHandlers<T>(fn: () => Promise<T>): Promise<T> {
  const listeners = (event: (typeof PROCESS_EVENTS)[number]): ((...args: never[]) => unknown)[] =>
    event === "uncaughtException" ? process.listeners("uncaughtException") : process.listeners("unhandledRejection");
  const before = new Map(PROCESS_EVENTS.map((e) => [e, new Set(listeners(e))]));
  try {
    return await fn();
  } finally {
    for (const event of PROCESS_EVENTS) {
      for (const listener of listeners(event)) {
        if (!before.get(event)?.has(listener) && isRethrow(listener)) process.removeListener(event, listener as () => void);
      }
    }
  }
}

/** `function(ex){if(!(ex instanceof ExitStatus)){throw ex}}` or `function(reason){throw reason}`. */
export function isRethrow(listener: (...args: never[]) => unknown): boolean {
  const src = Function.prototype.toString.call(listener).replace(/\s+/g, "");
  return /^function\((\w+)\)\{(if\(!\(\1instanceofExitStatus\)\)\{)?throw\1;?\}\}?$/.test(src);
}

async function startEngine(options: EngineOptions): Promise<EngineInfo> {
  quietTfjs();
  const requested =
    options.backend !== undefined
      ? parseBackend(options.backend, "the backend option")
      : parseBackend(process.env.XALIGN_BACKEND, "XALIGN_BACKEND");
  if (current && (requested === "auto" || requested === current.backend)) return current;
  const probes: BackendProbe[] = [];
  if (requested !== "auto") {
    const p = await probe(requested, options);
    probes.push(p);
    if (!p.available || !(await activate(p, options))) {
      throw new BackendError("XA_BACKEND_UNAVAILABLE", `backend "${requested}" was requested but cannot start: ${p.reason}`, {
        hint: INSTALL_HINTS[requested] || "check `xalign doctor`",
      });
    }
    current = {
      backend: requested,
      reason: `forced (${options.backend !== undefined ? "option" : "XALIGN_BACKEND"}): ${p.reason}`,
      device: p.device ?? requested,
      probes,
      tfjsVersion: tf.version.tfjs,
    };
    return current;
  }
  for (const name of BACKENDS) {
    const p = await probe(name, options);
    probes.push(p);
    if (p.available && (await activate(p, options))) {
      const skipped = probes.filter((q) => q !== p).map((q) => `${q.name}: ${q.reason}`);
      current = {
        backend: name,
        reason: `auto: ${p.reason}${skipped.length ? ` (skipped ${skipped.join("; ")})` : ""}`,
        device: p.device ?? name,
        probes,
        tfjsVersion: tf.version.tfjs,
      };
      return current;
    }
  }
  throw new BackendError("XA_BACKEND_NONE", "no TensorFlow.js backend could start", { hint: "run `xalign doctor`" });
}

/** Probes every backend without switching to it (for `xalign doctor`). */
export async function probeBackends(options: EngineOptions = {}): Promise<BackendProbe[]> {
  return withoutRethrowingHandlers(async () => {
    const out: BackendProbe[] = [];
    for (const name of BACKENDS) out.push(await probe(name, options));
    return out;
  });
}

/**
 * Makes sure a backend is ready before tensors are made: keeps the engine
 * of an earlier {@link initEngine} or a backend set up by hand
 * (`await tf.setBackend(...)`), else starts the default engine (auto). Used
 * by entry points such as loadCheckpoint, which would otherwise fail with
 * TF.js's "backend 'wasm' has not yet been initialized".
 */
export async function ensureEngine(): Promise<EngineInfo | undefined> {
  if (current) return current;
  if ((tf.engine() as unknown as { backendInstance?: unknown }).backendInstance) return undefined;
  return initEngine();
}

/** The engine chosen by the last {@link initEngine}, if any. */
export function currentEngine(): EngineInfo | undefined {
  return current;
}

export { nativeFusedOn, rotaryEmbedding, softmaxCrossEntropy, useNativeFused } from "./fused.js";
export { nativeMatMulOn, registerKernelFixes, useNativeMatMul } from "./kernels.js";
export { NATIVE_BUILD_COMMAND, type NativeStatus, nativeStatus } from "./native.js";
export { wasmThreadsCount } from "./wasmThreads.js";
export { tf };
