/**
 * Multi-threaded TF.js wasm in Node, from application code.
 *
 * tfjs-backend-wasm never starts its threaded build in Node: it hands
 * Emscripten a pthread worker made from a blob: URL, which Node's
 * worker_threads cannot load. Here we skip the package's own init and call
 * its Emscripten factory ourselves, with the worker written to a real file
 * and the main script given as an absolute path. Two more details matter:
 * XNNPACK caps its pool at half the logical cores Emscripten reports (so on
 * 2 cores, 2 threads silently become 1), so we report 2 x threads while it
 * starts; and the pthread workers would keep the process alive, so we unref
 * them once the pool is running.
 *
 * @example
 * if (await registerThreadedWasm(2)) await tf.setBackend("wasm");
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import * as wasmBackend from "@tensorflow/tfjs-backend-wasm";
import { sha256, writeFileAtomic } from "../util/fs.js";

const require = createRequire(import.meta.url);
// The CommonJS `os` object: its cpus() is what Emscripten's num_logical_cores calls.
const os = require("node:os") as { cpus: () => unknown[] };

interface NodeWorker {
  unref(): void;
}
interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...args: number[]) => number;
  PThread?: { unusedWorkers: NodeWorker[]; runningWorkers: NodeWorker[] };
  tfjs?: Record<string, unknown>;
}
type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

function wasmOutDir(): string {
  return join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "wasm-out");
}

/** The pthread worker as a real file (content-addressed, so versions never clash). */
async function workerFile(dir: string): Promise<string> {
  const { wasmWorkerContents } = require(join(dir, "tfjs-backend-wasm-threaded-simd.worker.js")) as { wasmWorkerContents: string };
  // The contents come from a template literal: their "\n" escapes arrived as real newlines inside string literals.
  const source = wasmWorkerContents.replace(/\n/g, "\\n");
  const path = join(tmpdir(), `xalign-tfjs-wasm-worker-${sha256(source).slice(0, 16)}.cjs`);
  if (!existsSync(path) || readFileSync(path, "utf8") !== source) await writeFileAtomic(path, source);
  return path;
}

function bridge(module: EmscriptenModule): void {
  // The same bridge tfjs-backend-wasm's own init() builds.
  module.tfjs = {
    init: module.cwrap("init", null, []),
    initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
    getThreadsCount: module.cwrap("get_threads_count", "number", []),
    registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
    disposeData: module.cwrap("dispose_data", null, ["number"]),
    dispose: module.cwrap("dispose", null, []),
  };
}

let registeredThreads: number | undefined;

/**
 * Replaces the "wasm" backend's factory by one that starts the threaded SIMD
 * build with `threads` XNNPACK threads. Call before the wasm backend is first
 * initialised; returns false (and changes nothing) if it already was.
 */
export async function registerThreadedWasm(threads: number): Promise<boolean> {
  if (registeredThreads === threads) return true;
  if (tf.engine().registry.wasm !== undefined) return false;
  const dir = wasmOutDir();
  const factory = require(join(dir, "tfjs-backend-wasm-threaded-simd.js")) as Factory;
  const worker = await workerFile(dir);
  tf.removeBackend("wasm");
  tf.registerBackend(
    "wasm",
    async () => {
      wasmBackend.setThreadsCount(threads);
      const realCpus = os.cpus;
      os.cpus = () => Array.from({ length: 2 * threads }, () => realCpus()[0]);
      try {
        const module = await factory({
          locateFile: (path: string, prefix: string) => (path.endsWith(".worker.js") ? worker : prefix + path),
          mainScriptUrlOrBlob: join(dir, "tfjs-backend-wasm-threaded-simd.js"),
        });
        bridge(module);
        // Starting XNNPACK's pool (in the constructor) runs the pthreads, and Emscripten ref()s a worker when it runs one.
        const backend = new wasmBackend.BackendWasm(module as unknown as ConstructorParameters<typeof wasmBackend.BackendWasm>[0]);
        for (const w of module.PThread?.runningWorkers ?? []) w.unref();
        return backend;
      } finally {
        os.cpus = realCpus;
      }
    },
    2,
  );
  registeredThreads = threads;
  return true;
}

/** XNNPACK threads of the running wasm backend (1 for the plain build). */
export function wasmThreadsCount(): number {
  try {
    return wasmBackend.getThreadsCount();
  } catch {
    return 1;
  }
}
