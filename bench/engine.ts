/**
 * Engine benchmark: per backend, matMul GFLOP/s at 512/1024/2048 and training
 * tokens/s of a LlamaModel step (src/model: loss, every gradient from
 * tf.variableGrads, one AdamW update without weight decay, i.e. Adam lr 1e-3)
 * for the tiny and the larger benchmark model (src/model/benchmarks.ts), with
 * peak RSS; PyTorch (bench/torch_baseline.py) runs the same models with the
 * same threads in the same run, and every row carries its ratio to it. Each
 * measurement runs in its own process (clean backend state, its own peak RSS).
 *
 *   node --import tsx bench/engine.ts [--quick] [--models tiny,larger] [--variants cpu,wasm,wasm-2t]
 *   node dist/bench/engine.js
 */
import { spawnSync } from "node:child_process";
import { availableParallelism, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type BackendName, initEngine, nativeMatMulOn, probeBackends, tf, wasmThreadsCount } from "../src/engine/index.js";
import { BENCHMARK_MODELS, benchmarkBatch, benchmarkConfig } from "../src/model/benchmarks.js";
import { LlamaModel } from "../src/model/llama.js";
import { AdamW } from "../src/train/adamw.js";
import { Rng } from "../src/util/rng.js";

type ModelName = keyof typeof BENCHMARK_MODELS;
const SIZES = [512, 1024, 2048] as const;

/** A way to run the engine: a backend, its threads, and whether the native addon is on. */
interface Variant {
  label: string;
  backend: BackendName;
  threads: number;
  env?: Record<string, string>;
}

const PLAIN = { XALIGN_NATIVE: "0" };
const VARIANTS: Variant[] = [
  { label: "cpu", backend: "cpu", threads: 1 },
  { label: "wasm", backend: "wasm", threads: 1, env: PLAIN },
  { label: "wasm-2t", backend: "wasm", threads: 2, env: PLAIN },
  { label: "wasm+blas", backend: "wasm", threads: 1 },
  { label: "wasm+blas-2t", backend: "wasm", threads: 2 },
  { label: "webgpu", backend: "webgpu", threads: 1 },
];

interface TrainResult {
  msPerStep: number;
  tokensPerS: number;
  firstLoss: number;
  peakRssMiB: number;
  steps: number;
  threads?: number;
}
interface MatmulResult {
  gflops: Record<string, number>;
  peakRssMiB: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

// ---- worker side: one measurement in this process -------------------------------------------

/** A seeded benchmark model and batch, and its training step: returns the loss before the update. */
function trainer(name: ModelName): { step: () => Promise<number>; tokens: number; dispose: () => void } {
  const m = BENCHMARK_MODELS[name];
  const model = LlamaModel.init(benchmarkConfig(m, m.seq), new Rng(7));
  const batch = benchmarkBatch(m, m.batch, 7);
  const optimizer = new AdamW();
  const byVariable = new Map<string, string>();
  for (const [key, v] of model.variables) byVariable.set(v.name, key);
  const vars = model.trainableVariables();
  const step = async (): Promise<number> => {
    const { value, grads } = tf.variableGrads(() => model.loss(batch.ids, batch.labels), vars);
    const named: Record<string, tf.Tensor> = {};
    for (const [key, g] of Object.entries(grads)) named[byVariable.get(key) ?? key] = g;
    optimizer.apply(model.variables, named, 1e-3);
    // Read asynchronously: webgpu cannot read synchronously in Node.
    const loss = (await value.data())[0] as number;
    tf.dispose([value, ...Object.values(grads)]);
    return loss;
  };
  const dispose = (): void => {
    optimizer.dispose();
    model.dispose();
    batch.dispose();
  };
  return { step, tokens: m.batch * m.seq, dispose };
}

async function measureMatmul(): Promise<MatmulResult> {
  const gflops: Record<string, number> = {};
  for (const n of SIZES) {
    // The JavaScript backend runs at ~0.2 GFLOP/s: 2048 would take minutes.
    if (tf.getBackend() === "cpu" && n > 1024) continue;
    const a = tf.randomNormal([n, n], 0, 1, "float32", 1);
    const b = tf.randomNormal([n, n], 0, 1, "float32", 2);
    tf.matMul(a, b).dataSync();
    const times: number[] = [];
    const reps = tf.getBackend() === "cpu" && n > 512 ? 1 : 5;
    for (let i = 0; i < reps; i++) {
      const start = performance.now();
      const c = tf.matMul(a, b);
      await c.data();
      times.push((performance.now() - start) / 1000);
      c.dispose();
    }
    gflops[n] = (2 * n ** 3) / median(times) / 1e9;
    tf.dispose([a, b]);
  }
  return { gflops, peakRssMiB: peakRssMiB() };
}

async function measureTraining(model: ModelName, steps: number, warmup: number): Promise<TrainResult> {
  const llama = trainer(model);
  const times: number[] = [];
  let firstLoss = Number.NaN;
  for (let i = 0; i < warmup + steps; i++) {
    const start = performance.now();
    const loss = await llama.step();
    if (i === 0) firstLoss = loss;
    if (i >= warmup) times.push(performance.now() - start);
  }
  const ms = median(times);
  llama.dispose();
  return { msPerStep: ms, tokensPerS: (llama.tokens / ms) * 1000, firstLoss, peakRssMiB: peakRssMiB(), steps };
}

/** Kernel time per step by kernel name, from tf.profile over one step after warm-up. */
async function profileStep(model: ModelName): Promise<void> {
  const llama = trainer(model);
  await llama.step();
  const start = performance.now();
  const info = await tf.profile(() => llama.step() as unknown as tf.TensorContainer);
  const wall = performance.now() - start;
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += Number(await k.kernelTimeMs);
    e.calls++;
    byName.set(k.name, e);
  }
  const rows = [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms);
  console.log(JSON.stringify({ wallMs: wall, dispatches: info.kernels.length, kernels: rows.slice(0, 15) }));
  llama.dispose();
}

async function worker(variant: Variant, task: string, steps: number, warmup: number): Promise<void> {
  await initEngine({ backend: variant.backend, threads: variant.threads });
  if (task.startsWith("profile-")) return profileStep(task.slice("profile-".length) as ModelName);
  const result = task === "matmul" ? await measureMatmul() : await measureTraining(task as ModelName, steps, warmup);
  // With the native addon on, `threads` are BLAS threads and wasm stays single-threaded.
  const threads = variant.backend === "wasm" && !nativeMatMulOn() ? wasmThreadsCount() : variant.threads;
  console.log(JSON.stringify({ ...result, threads }));
}

// ---- orchestrator: spawn workers and PyTorch, print tables ---------------------------------

function runJson<T>(command: string, args: string[], env: Record<string, string> = {}, timeoutMs = 1_800_000): T | string {
  const child = spawnSync(command, args, { encoding: "utf8", env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 1 << 26 });
  const line = child.stdout
    ?.trim()
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  if (child.status !== 0 || !line)
    return `failed (${child.signal ?? `exit ${child.status}`}): ${(child.stderr ?? "").trim().split("\n").at(-1)?.slice(0, 200)}`;
  return JSON.parse(line) as T;
}

function runVariant<T>(variant: Variant, task: string, steps: number, warmup: number): T | string {
  const self = fileURLToPath(import.meta.url);
  const args = [...process.execArgv, self, "--worker", variant.label, "--task", task, "--steps", String(steps), "--warmup", String(warmup)];
  return runJson<T>(process.execPath, args, variant.env);
}

function findPython(): string | undefined {
  for (const python of [process.env.XALIGN_PYTHON, "python3", "/usr/bin/python3"]) {
    if (!python) continue;
    const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
    if (probe.status === 0) return python;
  }
  return undefined;
}

function runTorch<T>(python: string | undefined, task: string, threads: number, steps: number, warmup: number): T | string {
  if (!python) return "PyTorch not found (apt-get install python3-torch libopenblas0-pthread, or set XALIGN_PYTHON)";
  const script = join(dirname(fileURLToPath(import.meta.url)), "torch_baseline.py").replace(`${join("dist", "bench")}`, "bench");
  const args = [script, "--model", task, "--threads", String(threads), "--steps", String(steps), "--warmup", String(warmup)];
  return runJson<T>(python, args, { OMP_WAIT_POLICY: "PASSIVE", OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) });
}

const fmt = (x: number, digits = 1): string => x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function orchestrate(options: { quick: boolean; models: ModelName[]; variants: Variant[] }): Promise<void> {
  const python = findPython();
  const probes = await probeBackends();
  const available = new Set(probes.filter((p) => p.available).map((p) => p.name));
  const variants = options.variants.filter((v) => available.has(v.backend));
  const skipped = options.variants.filter((v) => !available.has(v.backend));
  console.log(
    `# Engine benchmark (${new Date().toISOString().slice(0, 10)}, ${cpus()[0]?.model ?? "cpu"}, ${availableParallelism()} threads, Node ${process.version})\n`,
  );
  for (const v of skipped) console.log(`- ${v.label}: not available here (${probes.find((p) => p.name === v.backend)?.reason})`);

  console.log("\n## matMul (float32, n x n by n x n), GFLOP/s\n");
  console.log("| engine | threads | 512 | 1024 | 2048 | peak RSS MiB |\n|---|---|---|---|---|---|");
  const matRow = (label: string, threads: number, r: MatmulResult | string): void => {
    if (typeof r === "string") console.log(`| ${label} | ${threads} | ${r} | | | |`);
    else {
      const cells = SIZES.map((n) => (r.gflops[n] === undefined ? "skipped" : fmt(r.gflops[n] as number)));
      console.log(`| ${label} | ${threads} | ${cells.join(" | ")} | ${fmt(r.peakRssMiB, 0)} |`);
    }
  };
  for (const threads of [1, 2]) {
    const r = runTorch<{ gflops: Record<string, number>; peak_rss_mib: number }>(python, "matmul", threads, 0, 0);
    matRow("PyTorch (OpenBLAS)", threads, typeof r === "string" ? r : { gflops: r.gflops, peakRssMiB: r.peak_rss_mib });
  }
  for (const v of variants) matRow(v.label, v.threads, runVariant<MatmulResult>(v, "matmul", 0, 0));

  console.log("\n## Training step (Adam), median after warm-up\n");
  console.log(
    "| model | engine | threads | ms/step | tokens/s | x PyTorch (same threads) | peak RSS MiB | first loss |\n|---|---|---|---|---|---|---|---|",
  );
  for (const model of options.models) {
    const steps = model === "tiny" ? (options.quick ? 4 : 10) : options.quick ? 1 : 3;
    const warmup = model === "tiny" ? 2 : 1;
    const torchByThreads = new Map<number, TrainResult | string>();
    for (const threads of new Set(variants.map((v) => v.threads))) {
      const r = runTorch<{ ms_per_step: number; tokens_per_s: number; peak_rss_mib: number; first_loss: number }>(
        python,
        model,
        threads,
        steps,
        warmup,
      );
      const t =
        typeof r === "string"
          ? r
          : { msPerStep: r.ms_per_step, tokensPerS: r.tokens_per_s, peakRssMiB: r.peak_rss_mib, firstLoss: r.first_loss, steps };
      torchByThreads.set(threads, t);
      if (typeof t === "string") console.log(`| ${model} | PyTorch | ${threads} | ${t} | | | | |`);
      else
        console.log(
          `| ${model} | PyTorch (OpenBLAS) | ${threads} | ${fmt(t.msPerStep)} | ${fmt(t.tokensPerS, 0)} | 1.00 | ${fmt(t.peakRssMiB, 0)} | ${fmt(t.firstLoss, 4)} |`,
        );
    }
    for (const v of variants) {
      if (v.backend === "cpu" && model === "larger") {
        console.log(`| ${model} | ${v.label} | 1 | skipped: the JavaScript backend needs minutes per step | | | | |`);
        continue;
      }
      // The JavaScript backend takes seconds per tiny step: fewer steps keep the run short.
      const r = v.backend === "cpu" ? runVariant<TrainResult>(v, model, 2, 1) : runVariant<TrainResult>(v, model, steps, warmup);
      if (typeof r === "string") {
        console.log(`| ${model} | ${v.label} | ${v.threads} | ${r} | | | | |`);
        continue;
      }
      const base = torchByThreads.get(v.threads);
      const ratio = typeof base === "object" ? fmt(r.tokensPerS / base.tokensPerS, 2) : "n/a";
      console.log(
        `| ${model} | ${v.label} | ${r.threads ?? v.threads} | ${fmt(r.msPerStep)} | ${fmt(r.tokensPerS, 0)} | ${ratio} | ${fmt(r.peakRssMiB, 0)} | ${fmt(r.firstLoss, 4)} |`,
      );
    }
  }
  console.log(
    "\nFirst losses differ between PyTorch and TF.js because the initial weights come from different generators; shapes, data layout and ops are the same.",
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      worker: { type: "string" },
      task: { type: "string" },
      steps: { type: "string", default: "10" },
      warmup: { type: "string", default: "2" },
      quick: { type: "boolean", default: false },
      models: { type: "string", default: "tiny,larger" },
      variants: { type: "string" },
      profile: { type: "boolean", default: false },
    },
  });
  if (values.worker) {
    const variant = VARIANTS.find((v) => v.label === values.worker);
    if (!variant) throw new Error(`unknown variant ${values.worker}`);
    await worker(variant, values.task ?? "tiny", Number(values.steps), Number(values.warmup));
    return;
  }
  const wanted = values.variants?.split(",");
  if (values.profile) {
    for (const label of wanted ?? ["wasm+blas"]) {
      const v = VARIANTS.find((x) => x.label === label) as Variant;
      for (const model of (values.models ?? "tiny,larger").split(",")) {
        const r = runVariant<{ wallMs: number; dispatches: number; kernels: [string, { ms: number; calls: number }][] }>(
          v,
          `profile-${model}`,
          1,
          1,
        );
        if (typeof r === "string") {
          console.log(`${label} ${model}: ${r}`);
          continue;
        }
        console.log(
          `\n### Profile: ${model} on ${label}: one step ${fmt(r.wallMs)} ms under tf.profile, ${r.dispatches} kernel dispatches\n`,
        );
        console.log("| kernel | calls | ms |\n|---|---|---|");
        for (const [name, e] of r.kernels) console.log(`| ${name} | ${e.calls} | ${fmt(e.ms)} |`);
      }
    }
    return;
  }
  await orchestrate({
    quick: values.quick ?? false,
    models: (values.models ?? "tiny,larger").split(",") as ModelName[],
    variants: wanted ? VARIANTS.filter((v) => wanted.includes(v.label)) : VARIANTS,
  });
}

await main();
