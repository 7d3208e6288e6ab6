/**
 * One-shot GPU benchmark: xalign on the webgpu backend (Dawn over Vulkan)
 * against PyTorch on CUDA (bench/gpu/torch_gpu.py), in one time-boxed run.
 *
 * Stages, in priority order, each in its own child process (a crash, a lost
 * device or a hang loses that stage only; a child past its deadline is killed):
 *   adapter      what Dawn reports (adapter info, features, limits) and the engine's choice
 *   train-tiny   training tokens/s of LlamaModel (src/model) with AdamW (src/train/adamw.ts), tiny model
 *   cpu-loss     the tiny model's first two losses on the cpu backend (same seed, same batch)
 *   torch        PyTorch: the same model shapes and matMul sizes (fp32 with TF32 off, and TF32 on)
 *   train-full   the study's "full" mode model (src/study/settings.ts), batch 32 x 256
 *   matmul       float32 matMul TFLOP/s at 1024, 2048, 4096
 *   train-larger the larger benchmark model (src/model/benchmarks.ts BENCHMARK_MODELS.larger), batch 4 x 256
 *   decode       batch-1 greedy decoding tokens/s with the KV cache (src/model/generate.ts)
 *
 * After every stage the results so far are written to <out>/gpu-bench.json;
 * at the end readable tables are printed (and again with --report FILE).
 *
 *   node --import tsx bench/gpu/bench.ts --out /tmp/gpuout --smoke      (here, lavapipe: XALIGN_WEBGPU_SOFTWARE=1)
 *   node gpu-carry/bench.mjs --out $OUT --budget 320                   (bundled, on the GPU machine)
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { initEngine, tf } from "../../src/engine/index.js";
import { BENCHMARK_MODELS, type BenchmarkShape } from "../../src/model/benchmarks.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../../src/model/config.js";
import { generate } from "../../src/model/generate.js";
import { LlamaModel } from "../../src/model/llama.js";
import { studySettings } from "../../src/study/settings.js";
import { AdamW } from "../../src/train/adamw.js";
import { Rng } from "../../src/util/rng.js";

// ---- shapes ------------------------------------------------------------------------------------

type ModelName = "tiny" | "larger" | "full";

/** A model as both sides build it: torch_gpu.py receives these exact fields. */
interface ModelSpec {
  name: ModelName;
  vocab: number;
  dim: number;
  layers: number;
  heads: number;
  hidden: number;
  seq: number;
  batch: number;
  eps: number;
  tie: boolean;
  warmup: number;
  steps: number;
}

/** A benchmark model (src/model/benchmarks.ts: untied head, RMSNorm eps 1e-5) with its own sequence length and batch. */
function fromBenchmark(name: ModelName, m: BenchmarkShape, warmup: number, steps: number): ModelSpec {
  return {
    name,
    vocab: m.vocab,
    dim: m.dim,
    layers: m.layers,
    heads: m.heads,
    hidden: m.ffn,
    seq: m.seq,
    batch: m.batch,
    eps: 1e-5,
    tie: false,
    warmup,
    steps,
  };
}

function modelSpecs(smoke: boolean): Record<ModelName, ModelSpec> {
  const full = studySettings("full");
  const tiny = fromBenchmark("tiny", BENCHMARK_MODELS.tiny, smoke ? 1 : 3, smoke ? 2 : 10);
  if (smoke) {
    // Software Vulkan on a loaded 2-core box: a few seconds per step. Same code paths, toy sizes.
    const toy = { vocab: 500, dim: 64, layers: 2, heads: 4, hidden: 172, seq: 32, batch: 4, eps: 1e-6, warmup: 1, steps: 2 };
    return {
      tiny,
      larger: { ...toy, name: "larger", tie: false },
      full: { ...toy, name: "full", tie: true },
    };
  }
  return {
    tiny,
    larger: fromBenchmark("larger", BENCHMARK_MODELS.larger, 2, 8),
    full: {
      name: "full",
      // The study's "full" mode: its base model with tied embeddings and HF's default eps, pretraining batch and length.
      vocab: full.tokenizer.vocabSize,
      dim: full.model.hidden_size,
      layers: full.model.num_hidden_layers,
      heads: full.model.num_attention_heads,
      hidden: full.model.intermediate_size,
      seq: full.pretrain.maxLength,
      batch: full.pretrain.batchSize,
      eps: CONFIG_DEFAULTS.rms_norm_eps,
      tie: true,
      warmup: 2,
      steps: 6,
    },
  };
}

function llamaConfig(s: ModelSpec): LlamaConfig {
  return {
    ...CONFIG_DEFAULTS,
    hidden_size: s.dim,
    intermediate_size: s.hidden,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.heads,
    vocab_size: s.vocab,
    rms_norm_eps: s.eps,
    max_position_embeddings: Math.max(2048, s.seq),
    tie_word_embeddings: s.tie,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: null,
  };
}

/** Decoding: which model, prompt length and new tokens (the same on both sides). */
function decodeSpec(smoke: boolean): { model: ModelName; prompt: number; new: number } {
  return smoke ? { model: "tiny", prompt: 8, new: 8 } : { model: "full", prompt: 32, new: 64 };
}

/** Dawn toggle of the extra "train-full-norobust" stage: no bounds-checking code in shaders (tfjs's shaders check their own). */
const NO_ROBUSTNESS = "enable-dawn-features=disable_robustness";

const SEED = 7;
const LR = 1e-3;
const WEIGHT_DECAY = 0.1;

/** Seeded ids and next-token labels, the first quarter of each row masked (-1) as a prompt would be. */
function seededBatch(s: ModelSpec): { ids: tf.Tensor2D; labels: tf.Tensor2D } {
  const rng = new Rng(SEED).fork("gpu-bench-batch");
  const t = s.seq;
  const ids = new Int32Array(s.batch * t);
  const labels = new Int32Array(s.batch * t);
  for (let b = 0; b < s.batch; b++) {
    const row = Array.from({ length: t + 1 }, () => rng.int(s.vocab));
    for (let i = 0; i < t; i++) {
      ids[b * t + i] = row[i] as number;
      labels[b * t + i] = i < t / 4 ? -1 : (row[i + 1] as number);
    }
  }
  return { ids: tf.tensor2d(ids, [s.batch, t], "int32"), labels: tf.tensor2d(labels, [s.batch, t], "int32") };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const log = (msg: string): void => {
  process.stderr.write(`  ${msg}\n`);
};

// ---- stages (child side) -----------------------------------------------------------------------

interface StageContext {
  smoke: boolean;
  /** Epoch ms by which the stage should have printed its result. */
  deadline: number;
  specs: Record<ModelName, ModelSpec>;
}

const timeLeft = (ctx: StageContext): number => (ctx.deadline - Date.now()) / 1000;

async function webgpu(): Promise<string> {
  const engine = await initEngine({ backend: "webgpu" });
  return engine.device;
}

async function stageAdapter(): Promise<unknown> {
  const gpuModule = (await import("webgpu")) as unknown as {
    create: (flags: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  Object.assign(globalThis, gpuModule.globals);
  const flags = (process.env.XALIGN_DAWN_FLAGS ?? "").split(",").filter((f) => f.length > 0);
  const gpu = gpuModule.create(flags);
  const adapters: Record<string, unknown> = {};
  // XALIGN_WEBGPU_FEATURE_LEVEL=compatibility: what Dawn's OpenGL ES backend needs to offer an adapter.
  const featureLevel = process.env.XALIGN_WEBGPU_FEATURE_LEVEL;
  for (const powerPreference of ["high-performance", "low-power"] as const) {
    const adapter = await gpu.requestAdapter({ powerPreference, ...(featureLevel ? { featureLevel } : {}) } as GPURequestAdapterOptions);
    if (!adapter) {
      adapters[powerPreference] = null;
      continue;
    }
    const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
    const limits: Record<string, number> = {};
    for (const key of [
      "maxBufferSize",
      "maxStorageBufferBindingSize",
      "maxComputeWorkgroupStorageSize",
      "maxComputeInvocationsPerWorkgroup",
      "maxComputeWorkgroupSizeX",
      "maxComputeWorkgroupsPerDimension",
      "maxStorageBuffersPerShaderStage",
    ]) {
      limits[key] = (adapter.limits as unknown as Record<string, number>)[key] as number;
    }
    adapters[powerPreference] = {
      vendor: info?.vendor,
      architecture: info?.architecture,
      device: info?.device,
      description: info?.description,
      isFallbackAdapter: (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter,
      features: [...adapter.features].sort(),
      limits,
    };
  }
  let engine: unknown;
  try {
    const e = await initEngine({ backend: "webgpu" });
    engine = { backend: e.backend, device: e.device, reason: e.reason, tfjs: e.tfjsVersion };
  } catch (err) {
    engine = { error: String(err instanceof Error ? err.message : err) };
  }
  return { dawnFlags: flags, adapters, engine };
}

interface TrainStageResult {
  model: ModelSpec;
  device: string;
  params: number;
  tokensPerStep: number;
  losses: number[];
  stepMs: number[];
  warmupMs: number[];
  msPerStep: number | null;
  tokensPerS: number | null;
  numTensorsAfter: number;
  note?: string;
}

/** LlamaModel + AdamW steps; every step awaits its loss (after the update is queued). */
async function trainSteps(
  s: ModelSpec,
  ctx: StageContext,
  backendDevice: string,
  opts: { warmup: number; steps: number },
): Promise<TrainStageResult> {
  const model = LlamaModel.init(llamaConfig(s), new Rng(SEED).fork("gpu-bench-init"));
  const { ids, labels } = seededBatch(s);
  const params = model.variables;
  const byVariable = new Map<string, string>();
  for (const [name, v] of params) byVariable.set(v.name, name);
  const varList = [...params.values()];
  const optimizer = new AdamW({ weightDecay: WEIGHT_DECAY });
  const losses: number[] = [];
  const stepMs: number[] = [];
  const warmupMs: number[] = [];
  let note: string | undefined;
  for (let i = 0; i < opts.warmup + opts.steps; i++) {
    // Stop when the next step would not fit before the deadline.
    const last = stepMs.length ? median(stepMs) : (warmupMs.at(-1) ?? 0);
    if (i > 0 && timeLeft(ctx) < (last * 1.5) / 1000 + 3) {
      note = `stopped after ${warmupMs.length} warm-up and ${stepMs.length} measured steps: stage deadline`;
      break;
    }
    const start = performance.now();
    const { value, grads } = tf.variableGrads(() => model.loss(ids, labels), varList);
    const named: Record<string, tf.Tensor> = {};
    for (const [varName, g] of Object.entries(grads)) named[byVariable.get(varName) ?? varName] = g;
    optimizer.apply(params, named, LR);
    const loss = (await value.data())[0] as number;
    const ms = performance.now() - start;
    tf.dispose([value, ...Object.values(grads)]);
    losses.push(loss);
    (i < opts.warmup ? warmupMs : stepMs).push(ms);
    if (i < opts.warmup || i === opts.warmup + opts.steps - 1) log(`${s.name} step ${i}: ${ms.toFixed(1)} ms, loss ${loss.toFixed(6)}`);
  }
  const tokensPerStep = s.batch * s.seq;
  let ms = stepMs.length ? median(stepMs) : null;
  if (ms === null && opts.steps > 0 && warmupMs.length >= 2) {
    // No measured step fitted: the last warm-up step (shaders compiled by then) stands in, and says so.
    ms = warmupMs.at(-1) as number;
    note = `${note ?? "no measured step"}; ms/step is the last warm-up step's`;
  }
  const result: TrainStageResult = {
    model: s,
    device: backendDevice,
    params: model.numParameters(),
    tokensPerStep,
    losses,
    stepMs,
    warmupMs,
    msPerStep: ms,
    tokensPerS: ms ? (tokensPerStep / ms) * 1000 : null,
    numTensorsAfter: 0,
    ...(note ? { note } : {}),
  };
  optimizer.dispose();
  model.dispose();
  tf.dispose([ids, labels]);
  result.numTensorsAfter = tf.memory().numTensors;
  return result;
}

async function stageTrain(name: ModelName, ctx: StageContext): Promise<TrainStageResult> {
  const device = await webgpu();
  let s = ctx.specs[name];
  // The loss reads the logits as one [batch * seq * vocab] buffer: it must fit in one storage binding.
  const limit = (tf.backend() as unknown as { device?: GPUDevice }).device?.limits.maxStorageBufferBindingSize;
  const logitsBytes = s.batch * s.seq * s.vocab * 4;
  let note: string | undefined;
  if (limit !== undefined && logitsBytes > limit) {
    const batch = Math.max(1, Math.floor(limit / (s.seq * s.vocab * 4)));
    note = `batch reduced from ${s.batch} to ${batch}: logits of ${logitsBytes} bytes exceed maxStorageBufferBindingSize ${limit}`;
    log(note);
    s = { ...s, batch };
  }
  const r = await trainSteps(s, ctx, device, { warmup: s.warmup, steps: s.steps });
  if (note) r.note = r.note ? `${note}; ${r.note}` : note;
  return r;
}

/** The tiny model's first two losses (init, and after one AdamW step) on the plain JavaScript backend. */
async function stageCpuLoss(ctx: StageContext): Promise<TrainStageResult> {
  const engine = await initEngine({ backend: "cpu" });
  return trainSteps(ctx.specs.tiny, ctx, engine.device, { warmup: 2, steps: 0 });
}

async function stageMatmul(ctx: StageContext): Promise<unknown> {
  const device = await webgpu();
  const sizes = ctx.smoke ? [128, 256] : [1024, 2048, 4096];
  const tflops: Record<string, number> = {};
  const detail: Record<string, { reps: number; seconds: number[] }> = {};
  for (const n of sizes) {
    if (timeLeft(ctx) < 5) break;
    const a = tf.randomNormal([n, n], 0, 1, "float32", 1);
    const b = tf.randomNormal([n, n], 0, 1, "float32", 2);
    // One product, read back as a single element, so the timing is the GPU's and not the readback's.
    const run = async (reps: number): Promise<number> => {
      const start = performance.now();
      let c: tf.Tensor | undefined;
      for (let i = 0; i < reps; i++) {
        c?.dispose();
        c = tf.matMul(a, b);
      }
      const corner = tf.slice(c as tf.Tensor2D, [0, 0], [1, 1]);
      await corner.data();
      tf.dispose([c as tf.Tensor, corner]);
      return (performance.now() - start) / 1000;
    };
    await run(1);
    const once = await run(1);
    const reps = Math.max(1, Math.min(50, Math.ceil(0.25 / Math.max(once, 1e-4))));
    const seconds: number[] = [];
    for (let i = 0; i < 5 && timeLeft(ctx) > 3; i++) seconds.push(await run(reps));
    if (seconds.length) tflops[n] = (2 * n ** 3 * reps) / median(seconds) / 1e12;
    detail[n] = { reps, seconds };
    tf.dispose([a, b]);
    log(`matMul ${n}: ${(tflops[n] ?? Number.NaN).toFixed(3)} TFLOP/s (${reps} products per timing)`);
  }
  return { device, tflops, detail };
}

async function stageDecode(ctx: StageContext): Promise<unknown> {
  const device = await webgpu();
  const d = decodeSpec(ctx.smoke);
  const s = ctx.specs[d.model];
  const promptLength = d.prompt;
  const newTokens = d.new;
  const model = LlamaModel.init(llamaConfig(s), new Rng(SEED).fork("gpu-bench-init"));
  const rng = new Rng(SEED).fork("gpu-bench-prompt");
  const prompt = Array.from({ length: promptLength }, () => rng.int(s.vocab));
  // eosTokenId [] : never stop early, always maxNewTokens.
  const timed = async (maxNewTokens: number): Promise<{ ms: number; tokens: number[] }> => {
    const start = performance.now();
    const out = await generate(model, [prompt], { maxNewTokens, eosTokenId: [] });
    return { ms: performance.now() - start, tokens: out.tokens[0] ?? [] };
  };
  // The warm-up decodes the same lengths, so every shape's shaders are compiled before the timed runs.
  const warm = await timed(newTokens);
  log(`decode warm-up (${newTokens} tokens, shader compilation included): ${warm.ms.toFixed(0)} ms`);
  const prefill: number[] = [];
  const whole: number[] = [];
  for (let i = 0; i < 3 && timeLeft(ctx) > (warm.ms * 2) / 1000 + 3; i++) {
    prefill.push((await timed(1)).ms);
    whole.push((await timed(newTokens)).ms);
  }
  model.dispose();
  if (!whole.length) return { device, model: s, note: "no timed run fitted before the deadline", warmupMs: warm.ms };
  const decodeMs = median(whole) - median(prefill);
  return {
    device,
    model: s,
    promptLength,
    newTokens,
    prefillMs: median(prefill),
    totalMs: median(whole),
    msPerToken: decodeMs / (newTokens - 1),
    tokensPerS: ((newTokens - 1) / decodeMs) * 1000,
    endToEndTokensPerS: (newTokens / median(whole)) * 1000,
    firstTokens: warm.tokens.slice(0, 8),
  };
}

async function runStage(name: string, ctx: StageContext): Promise<unknown> {
  switch (name) {
    case "adapter":
      return stageAdapter();
    case "cpu-loss":
      return stageCpuLoss(ctx);
    case "matmul":
      return stageMatmul(ctx);
    case "decode":
      return stageDecode(ctx);
    case "train-tiny":
      return stageTrain("tiny", ctx);
    case "train-larger":
      return stageTrain("larger", ctx);
    case "train-full":
    case "train-full-norobust":
      return stageTrain("full", ctx);
    default:
      throw new Error(`unknown stage ${name}`);
  }
}

const RESULT_MARK = "@@GPU_BENCH_RESULT ";

// ---- orchestrator ------------------------------------------------------------------------------

interface StageRecord {
  /** partial: the child was killed or failed after writing some results. */
  status: "ok" | "partial" | "failed" | "timeout" | "skipped";
  seconds?: number;
  result?: unknown;
  error?: string;
}

interface Report {
  format: "xalign-gpu-bench/1";
  started: string;
  finished?: string;
  smoke: boolean;
  budgetS: number;
  node: string;
  platform: string;
  argv: string[];
  env: Record<string, string | undefined>;
  models: Record<ModelName, ModelSpec>;
  optimizer: string;
  stages: Record<string, StageRecord>;
  torch?: unknown;
}

/** Stage name, most seconds it may take (GPU run), and in smoke mode. */
const STAGES: [string, number, number][] = [
  ["adapter", 40, 60],
  ["train-tiny", 60, 180],
  ["cpu-loss", 45, 180],
  ["torch", 110, 240],
  ["train-full", 100, 180],
  ["matmul", 45, 120],
  ["train-larger", 60, 180],
  ["decode", 50, 180],
  // Only with time to spare: the full model again with Dawn's robustness (shader bounds checks) off.
  ["train-full-norobust", 60, 180],
];

function writeJson(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, `${JSON.stringify(value, null, 1)}\n`);
  renameSync(`${path}.tmp`, path);
}

function runChild(
  command: string,
  args: string[],
  timeoutS: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderrTail: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderrTail = "";
    let timedOut = false;
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      const text = d.toString();
      process.stderr.write(text);
      stderrTail = (stderrTail + text).slice(-4000);
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutS * 1000);
    child.on("error", (err) => {
      stderrTail += String(err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderrTail, timedOut });
    });
  });
}

function findPython(): string | undefined {
  for (const python of [process.env.XALIGN_PYTHON, "python3", "python", "/usr/bin/python3", "/opt/conda/bin/python"]) {
    if (!python) continue;
    if (spawnSync(python, ["-c", "import torch"], { stdio: "ignore", timeout: 60_000 }).status === 0) return python;
  }
  return undefined;
}

async function orchestrate(opts: { out: string; budgetS: number; smoke: boolean; stages?: string[]; torchScript: string }): Promise<void> {
  const t0 = Date.now();
  mkdirSync(opts.out, { recursive: true });
  const jsonPath = join(opts.out, "gpu-bench.json");
  const specs = modelSpecs(opts.smoke);
  const report: Report = {
    format: "xalign-gpu-bench/1",
    started: new Date().toISOString(),
    smoke: opts.smoke,
    budgetS: opts.budgetS,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    argv: process.argv.slice(2),
    env: {
      XALIGN_DAWN_FLAGS: process.env.XALIGN_DAWN_FLAGS,
      XALIGN_WEBGPU_SOFTWARE: process.env.XALIGN_WEBGPU_SOFTWARE,
      VK_DRIVER_FILES: process.env.VK_DRIVER_FILES,
      VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES,
      LD_LIBRARY_PATH: process.env.LD_LIBRARY_PATH,
    },
    models: specs,
    optimizer: `src/train/adamw.ts AdamW (lr ${LR}, betas 0.9/0.999, eps 1e-8, weight decay ${WEIGHT_DECAY} except norms and embeddings), no clipping`,
    stages: {},
  };
  const save = (): void => writeJson(jsonPath, report);
  save();
  const self = process.argv[1] as string;
  console.log(`# xalign GPU benchmark${opts.smoke ? " (smoke)" : ""}: budget ${opts.budgetS} s, results -> ${jsonPath}`);
  for (const [name, capGpu, capSmoke] of STAGES) {
    if (opts.stages && !opts.stages.includes(name)) continue;
    const elapsed = (Date.now() - t0) / 1000;
    const remaining = opts.budgetS - elapsed;
    if (remaining < 15) {
      report.stages[name] = { status: "skipped", error: `over budget (${elapsed.toFixed(0)} s of ${opts.budgetS} s used)` };
      console.log(`## ${name}: SKIPPED, over budget (${elapsed.toFixed(0)} s of ${opts.budgetS} s used)`);
      save();
      continue;
    }
    const allowS = Math.min(opts.smoke ? capSmoke : capGpu, remaining);
    console.log(`## ${name} (up to ${allowS.toFixed(0)} s; ${elapsed.toFixed(0)} s used)`);
    const start = Date.now();
    let record: StageRecord;
    if (name === "torch") {
      record = await torchStage(opts, specs, allowS);
      report.torch = record.result;
    } else {
      // The child aims to finish 8 s before its deadline; it is killed 5 s after it.
      const deadline = Date.now() + (allowS - 8) * 1000;
      const args = [...process.execArgv, self, "--stage", name, "--deadline", String(deadline), ...(opts.smoke ? ["--smoke"] : [])];
      const env = name === "train-full-norobust" ? { ...process.env, XALIGN_DAWN_FLAGS: NO_ROBUSTNESS } : process.env;
      const r = await runChild(process.execPath, args, allowS - 3, env);
      const line = r.stdout
        .split("\n")
        .reverse()
        .find((l) => l.startsWith(RESULT_MARK));
      if (line) {
        const parsed = JSON.parse(line.slice(RESULT_MARK.length)) as { ok: boolean; result?: unknown; error?: string };
        record = parsed.ok ? { status: "ok", result: parsed.result } : { status: "failed", error: parsed.error };
      } else {
        const why = r.timedOut ? "timeout" : "failed";
        record = {
          status: why,
          error: `${why}: ${r.signal ?? `exit ${r.code}`}; stderr tail: ${r.stderrTail.trim().split("\n").slice(-3).join(" | ").slice(0, 600)}`,
        };
      }
    }
    record.seconds = (Date.now() - start) / 1000;
    report.stages[name] = record;
    save();
    console.log(`   ${name}: ${record.status} in ${record.seconds.toFixed(1)} s${record.error ? ` — ${record.error.slice(0, 300)}` : ""}`);
    if (name === "adapter" && record.status === "ok") {
      try {
        writeFileSync(join(opts.out, "adapter.json"), `${JSON.stringify(record.result, null, 1)}\n`);
      } catch {
        // the JSON has it too
      }
    }
  }
  report.finished = new Date().toISOString();
  save();
  console.log(`\n${renderReport(report)}`);
  writeFileSync(join(opts.out, "gpu-bench.md"), renderReport(report));
}

async function torchStage(
  opts: { out: string; smoke: boolean; torchScript: string },
  specs: Record<ModelName, ModelSpec>,
  allowS: number,
): Promise<StageRecord> {
  const python = findPython();
  if (!python) return { status: "failed", error: "no python with torch found (set XALIGN_PYTHON)" };
  if (!existsSync(opts.torchScript)) return { status: "failed", error: `torch script ${opts.torchScript} not found` };
  const torchJson = join(opts.out, "torch-gpu.json");
  const models = opts.smoke ? [specs.tiny, specs.full] : [specs.tiny, specs.full, specs.larger];
  const args = [
    opts.torchScript,
    "--spec",
    JSON.stringify({
      models,
      matmul: opts.smoke ? [128, 256] : [1024, 2048, 4096],
      lr: LR,
      weight_decay: WEIGHT_DECAY,
      decode: decodeSpec(opts.smoke),
    }),
    "--out",
    torchJson,
    "--budget",
    String(Math.max(5, allowS - 10)),
  ];
  const r = await runChild(python, args, allowS - 2);
  let result: unknown;
  try {
    result = JSON.parse(readFileSync(torchJson, "utf8"));
  } catch {
    result = undefined;
  }
  if (r.code === 0 && result) return { status: "ok", result };
  const error = `${r.timedOut ? "timeout" : "failed"} (${r.signal ?? `exit ${r.code}`}): ${r.stderrTail.trim().split("\n").slice(-3).join(" | ").slice(0, 600)}`;
  return { status: result ? "partial" : r.timedOut ? "timeout" : "failed", ...(result ? { result } : {}), error };
}

// ---- report ------------------------------------------------------------------------------------

const fmt = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x)
    ? "–"
    : x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const fmtFlops = (x: number | null | undefined): string => fmt(x, x !== null && x !== undefined && x < 0.1 ? 4 : 2);

interface TorchRun {
  model: string;
  mode: string;
  ms_per_step?: number;
  tokens_per_s?: number;
  first_loss?: number;
  losses?: number[];
  error?: string;
}
interface TorchReport {
  device?: string;
  torch?: string;
  cuda?: string | null;
  note?: string;
  train?: TorchRun[];
  matmul?: { mode: string; tflops: Record<string, number> }[];
  decode?: { model: string; tokens_per_s?: number; ms_per_token?: number; prefill_ms?: number; error?: string };
}

function renderReport(report: Report): string {
  const lines: string[] = [];
  const stage = (name: string): StageRecord | undefined => report.stages[name];
  const ok = <T>(name: string): T | undefined =>
    stage(name)?.status === "ok" || stage(name)?.status === "partial" ? (stage(name)?.result as T) : undefined;
  const torch = report.torch as TorchReport | undefined;
  const adapter = ok<{
    adapters: Record<string, { vendor?: string; architecture?: string; device?: string; description?: string } | null>;
    engine: { device?: string; error?: string };
  }>("adapter");
  lines.push(`# xalign GPU benchmark${report.smoke ? " (SMOKE: toy sizes, numbers meaningless)" : ""} — ${report.started}`);
  const hp = adapter?.adapters["high-performance"];
  lines.push(
    `Dawn adapter: ${hp ? [hp.vendor, hp.architecture, hp.device, hp.description].filter((x) => x).join(" / ") : (stage("adapter")?.error ?? "none")}`,
  );
  lines.push(`Engine: ${adapter?.engine?.device ?? adapter?.engine?.error ?? "–"}`);
  lines.push(
    `PyTorch: ${torch ? `${torch.torch ?? "?"} on ${torch.device ?? "?"}${torch.note ? ` (${torch.note})` : ""}` : (stage("torch")?.error ?? "not run")}`,
  );
  lines.push(`Optimizer: ${report.optimizer}; PyTorch: torch.optim.AdamW, same hyper-parameters.`);

  lines.push("\n## Training step (forward + backward + AdamW, loss awaited every step), median after warm-up\n");
  lines.push(
    "| model | batch x seq | xalign webgpu ms/step | xalign tokens/s | PyTorch fp32 tokens/s | xalign / fp32 | PyTorch TF32 tokens/s | xalign / TF32 | steps | first loss (xalign) |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|---|");
  for (const [name, stageName] of [
    ["tiny", "train-tiny"],
    ["full", "train-full"],
    ["larger", "train-larger"],
    ["full", "train-full-norobust"],
  ] as [ModelName, string][]) {
    if (stageName === "train-full-norobust" && !stage(stageName)) continue;
    const s = report.models[name];
    const r = ok<TrainStageResult>(stageName);
    const t32 = torch?.train?.find((t) => t.model === name && t.mode === "fp32");
    const tf32 = torch?.train?.find((t) => t.model === name && t.mode === "tf32");
    const ratio = (a?: number | null, b?: number): string => (a && b ? fmt(a / b, 2) : "–");
    const failure = r ? "" : ` (${stage(stageName)?.status ?? "not run"})`;
    const label = stageName === "train-full-norobust" ? `full, Dawn ${NO_ROBUSTNESS.split("=")[1]}` : name;
    lines.push(
      `| ${label} (d ${s.dim}, ${s.layers} layers, vocab ${s.vocab}${s.tie ? ", tied" : ""}) | ${r && r.model.batch !== s.batch ? `**${r.model.batch}** (reduced, see stages)` : s.batch} x ${s.seq} | ${fmt(r?.msPerStep)}${failure} | ${fmt(r?.tokensPerS, 0)} | ${fmt(t32?.tokens_per_s, 0)} | ${ratio(r?.tokensPerS, t32?.tokens_per_s)} | ${fmt(tf32?.tokens_per_s, 0)} | ${ratio(r?.tokensPerS, tf32?.tokens_per_s)} | ${r ? `${r.stepMs.length} (+${r.warmupMs.length} warm-up, first ${fmt(r.warmupMs[0], 0)} ms)` : "–"} | ${fmt(r?.losses[0], 6)} |`,
    );
  }
  const gpuTiny = ok<TrainStageResult>("train-tiny");
  const cpuTiny = ok<TrainStageResult>("cpu-loss");
  lines.push("\n## Loss check: tiny model, same seed and batch, webgpu vs the cpu backend\n");
  lines.push("| step | webgpu | cpu | difference |\n|---|---|---|---|");
  for (let i = 0; i < 2; i++) {
    const g = gpuTiny?.losses[i];
    const c = cpuTiny?.losses[i];
    lines.push(
      `| ${i === 0 ? "0 (init)" : `${i} (after ${i} AdamW step)`} | ${fmt(g, 6)} | ${fmt(c, 6)} | ${g !== undefined && c !== undefined ? (g - c).toExponential(2) : "–"} |`,
    );
  }
  if (!cpuTiny) lines.push(`(cpu: ${stage("cpu-loss")?.status ?? "not run"} ${stage("cpu-loss")?.error ?? ""})`);

  const mm = ok<{ tflops: Record<string, number> }>("matmul");
  const sizes = [...new Set([...Object.keys(mm?.tflops ?? {}), ...(torch?.matmul?.flatMap((m) => Object.keys(m.tflops)) ?? [])])].sort(
    (a, b) => Number(a) - Number(b),
  );
  lines.push("\n## matMul float32 n x n by n x n, TFLOP/s\n");
  if (!sizes.length)
    lines.push(`not measured (xalign: ${stage("matmul")?.status ?? "not run"}; PyTorch: ${torch ? "no matMul result" : "not run"})`);
  else lines.push(`| engine | ${sizes.join(" | ")} |\n|---|${sizes.map(() => "---|").join("")}`);
  if (sizes.length)
    lines.push(
      `| xalign webgpu | ${sizes.map((n) => fmtFlops(mm?.tflops[n])).join(" | ")} |${mm ? "" : ` ${stage("matmul")?.status ?? "not run"}`}`,
    );
  for (const m of sizes.length ? (torch?.matmul ?? []) : [])
    lines.push(`| PyTorch ${m.mode} | ${sizes.map((n) => fmtFlops(m.tflops[n])).join(" | ")} |`);

  const dec = ok<{
    model: ModelSpec;
    promptLength: number;
    newTokens: number;
    prefillMs: number;
    msPerToken: number;
    tokensPerS: number;
    note?: string;
  }>("decode");
  lines.push(
    "\n## Greedy decoding, batch 1, KV cache (src/model/generate.ts; PyTorch: the same loop, last logits copied to the host each token)\n",
  );
  const tdec = torch?.decode;
  lines.push(
    "| engine | model | prompt | new tokens | prefill ms | ms/token | tokens/s | xalign / PyTorch |\n|---|---|---|---|---|---|---|---|",
  );
  if (dec?.tokensPerS)
    lines.push(
      `| xalign webgpu | ${dec.model.name} | ${dec.promptLength} | ${dec.newTokens} | ${fmt(dec.prefillMs)} | ${fmt(dec.msPerToken, 2)} | ${fmt(dec.tokensPerS)} | ${tdec?.tokens_per_s ? fmt(dec.tokensPerS / tdec.tokens_per_s, 2) : "–"} |`,
    );
  else
    lines.push(
      `| xalign webgpu | ${stage("decode")?.status ?? "not run"} ${(stage("decode")?.error ?? dec?.note ?? "").slice(0, 200)} | | | | | | |`,
    );
  if (tdec)
    lines.push(
      `| PyTorch fp32 | ${tdec.model} | | | ${fmt(tdec.prefill_ms)} | ${fmt(tdec.ms_per_token, 2)} | ${fmt(tdec.tokens_per_s)} | 1.00 |${tdec.error ? ` ${tdec.error.slice(0, 200)}` : ""}`,
    );

  lines.push("\n## Stages\n");
  for (const [name, r] of Object.entries(report.stages)) {
    const note = (r.result as { note?: string } | undefined)?.note;
    lines.push(
      `- ${name}: ${r.status}${r.seconds !== undefined ? ` (${fmt(r.seconds)} s)` : ""}${r.error ? ` — ${r.error.slice(0, 300)}` : ""}${note ? ` — ${note}` : ""}`,
    );
  }
  for (const t of torch?.train ?? []) if (t.error) lines.push(`- torch ${t.model} ${t.mode}: ${t.error.slice(0, 200)}`);
  return `${lines.join("\n")}\n`;
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      stage: { type: "string" },
      deadline: { type: "string" },
      smoke: { type: "boolean", default: false },
      out: { type: "string", default: process.env.OUT ?? "gpu-bench-out" },
      budget: { type: "string", default: "320" },
      stages: { type: "string" },
      "torch-script": { type: "string", default: "bench/gpu/torch_gpu.py" },
      report: { type: "string" },
    },
  });
  const smoke = values.smoke ?? false;
  if (values.report) {
    console.log(renderReport(JSON.parse(readFileSync(values.report, "utf8")) as Report));
    return;
  }
  if (values.stage) {
    const ctx: StageContext = { smoke, deadline: Number(values.deadline ?? Date.now() + 60_000), specs: modelSpecs(smoke) };
    let line: string;
    try {
      line = JSON.stringify({ ok: true, result: await runStage(values.stage, ctx) });
    } catch (err) {
      line = JSON.stringify({ ok: false, error: String(err instanceof Error ? (err.stack ?? err.message) : err).slice(0, 2000) });
    }
    process.stdout.write(`${RESULT_MARK}${line}\n`, () => process.exit(0));
    return;
  }
  await orchestrate({
    out: values.out as string,
    budgetS: Number(values.budget),
    smoke,
    ...(values.stages ? { stages: values.stages.split(",") } : {}),
    torchScript: values["torch-script"] as string,
  });
  process.exit(0);
}

await main();
