/**
 * Model benchmarks: prefill and batch-1 decode tokens/s for the
 * TinyStories-15M shape (dim 288, 6 layers, 6 heads, vocab 32000, seq 256,
 * random weights) on each backend that starts, and load time + peak RSS of a
 * ~100M-parameter sharded checkpoint (written to a temp folder first, loaded
 * in a child process so its RSS is the load's alone).
 *
 * Run: node --import tsx bench/model.ts [--backends cpu,wasm] [--decode 128] [--skip-load]
 * (or node dist/bench/model.js after `npm run build`).
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { type BackendName, initEngine, nativeStatus, useNativeFused, useNativeMatMul } from "../src/engine/index.js";
import { benchmarkBatch, STORIES_15M } from "../src/model/benchmarks.js";
import {
  generate,
  hfShape,
  type LlamaConfig,
  LlamaModel,
  loadCheckpoint,
  type TensorToWrite,
  WEIGHTS_INDEX_FILE,
  weightNames,
  writeConfig,
  writeSafetensors,
} from "../src/model/index.js";
import { writeJsonAtomic } from "../src/util/fs.js";
import { Rng } from "../src/util/rng.js";

/** ~100M parameters: 12 layers of width 640 plus untied 32000-token embedding and head. */
const MODEL_100M: LlamaConfig = {
  ...STORIES_15M,
  hidden_size: 640,
  intermediate_size: 1728,
  num_hidden_layers: 12,
  num_attention_heads: 10,
  num_key_value_heads: 10,
  max_position_embeddings: 2048,
  tie_word_embeddings: false,
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function timeIt(f: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

/** Wall and CPU milliseconds of `f`. On a shared machine the CPU time is what an idle core would take. */
async function measure(f: () => Promise<void>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const wall = await timeIt(f);
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

interface ModelRow {
  backend: string;
  device: string;
  prefill: { wall: number; cpu: number };
  decode: { wall: number; cpu: number };
  reps: number;
}

async function benchBackend(backend: BackendName, decodeTokens: number): Promise<ModelRow | string> {
  let device: string;
  try {
    device = (await initEngine({ backend })).device;
  } catch (err) {
    return `${backend}: not available (${(err as Error).message.split("\n")[0]})`;
  }
  const model = LlamaModel.init(STORIES_15M, new Rng(1));
  const seq = 256;
  const ids = tf.tensor2d([Array.from({ length: seq }, (_, i) => (i * 7919 + 3) % STORIES_15M.vocab_size)], [1, seq], "int32");
  // The cpu backend is two orders slower: fewer repetitions keep the run short.
  const reps = backend === "cpu" ? 1 : 3;
  const prefill = async () => {
    const logits = model.forward(ids, { logits: "last" });
    await logits.data();
    logits.dispose();
  };
  await prefill();
  const prefillMs: { wall: number; cpu: number }[] = [];
  for (let r = 0; r < reps; r++) prefillMs.push(await measure(prefill));
  const steps = backend === "cpu" ? Math.min(decodeTokens, 32) : decodeTokens;
  const decode = async () => {
    await generate(model, [[1]], { maxNewTokens: steps, eosTokenId: [] });
  };
  await generate(model, [[1]], { maxNewTokens: 4, eosTokenId: [] });
  const decodeMs: { wall: number; cpu: number }[] = [];
  for (let r = 0; r < reps; r++) decodeMs.push(await measure(decode));
  ids.dispose();
  model.dispose();
  const rate = (n: number, ms: { wall: number; cpu: number }[]) => ({
    wall: (n / median(ms.map((m) => m.wall))) * 1000,
    cpu: (n / median(ms.map((m) => m.cpu))) * 1000,
  });
  return { backend, device, prefill: rate(seq, prefillMs), decode: rate(steps, decodeMs), reps };
}

/**
 * CPU time of one training step (loss + every gradient) of LlamaModel with the
 * native kernels (sgemm and the fused kernels, when the addon is built) against
 * the same model on plain TF.js ops, in the same process: a ratio that the
 * machine's load mostly cancels.
 */
async function benchTrainingStep(backend: BackendName): Promise<string> {
  await initEngine({ backend });
  const addon = nativeStatus().addon;
  const cfg: LlamaConfig = {
    ...STORIES_15M,
    hidden_size: 256,
    intermediate_size: 688,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    vocab_size: 8192,
    max_position_embeddings: 128,
    tie_word_embeddings: false,
  };
  const model = LlamaModel.init(cfg, new Rng(1));
  const batch = benchmarkBatch({ vocab: cfg.vocab_size, seq: 128 }, 4, 3);
  const step = (native: boolean) => async () => {
    useNativeMatMul(native ? addon : undefined);
    useNativeFused(native ? addon : undefined);
    const { value, grads } = tf.variableGrads(() => model.loss(batch.ids, batch.labels), model.trainableVariables());
    await value.data();
    tf.dispose([value, grads]);
  };
  const ours = step(true);
  const theirs = step(false);
  await ours();
  await theirs();
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < 3; r++) {
    a.push((await measure(ours)).cpu);
    b.push((await measure(theirs)).cpu);
  }
  useNativeMatMul(addon);
  useNativeFused(addon);
  batch.dispose();
  model.dispose();
  const tokens = 4 * 128;
  return `| ${backend} | ${median(a).toFixed(0)} ms (${((tokens / median(a)) * 1000).toFixed(0)} tokens/CPU-s) | ${median(b).toFixed(0)} ms | ${(median(a) / median(b)).toFixed(2)} |`;
}

/** Writes a sharded random ~100M checkpoint without holding a model in memory. */
async function write100M(dir: string): Promise<number> {
  const rng = new Rng(100);
  const shardBytes = 100e6;
  const names = weightNames(MODEL_100M);
  const shards: string[][] = [[]];
  let size = 0;
  let params = 0;
  for (const name of names) {
    const n = hfShape(MODEL_100M, name).reduce((a, b) => a * b, 1);
    params += n;
    if (size + n * 4 > shardBytes && (shards.at(-1) as string[]).length > 0) {
      shards.push([]);
      size = 0;
    }
    (shards.at(-1) as string[]).push(name);
    size += n * 4;
  }
  const weightMap: Record<string, string> = {};
  for (const [i, shard] of shards.entries()) {
    const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
    const tensors: Record<string, TensorToWrite> = {};
    for (const name of shard) {
      const shape = hfShape(MODEL_100M, name);
      weightMap[name] = file;
      tensors[name] = {
        dtype: "F32",
        shape,
        data: async () => {
          const n = shape.reduce((a, b) => a * b, 1);
          const values = new Float32Array(n);
          // Uniform noise from 32-bit draws: fast, and the load does not care about the distribution.
          for (let j = 0; j < n; j++) values[j] = ((rng.nextU32() >>> 8) / 16777216 - 0.5) * 0.04;
          return values;
        },
      };
    }
    await writeSafetensors(join(dir, file), tensors);
  }
  await writeJsonAtomic(join(dir, WEIGHTS_INDEX_FILE), { metadata: { total_size: params * 4 }, weight_map: weightMap });
  await writeConfig(dir, MODEL_100M);
  return params;
}

/** Child process: load the checkpoint, print JSON with time and RSS figures. */
async function loadChild(dir: string, backend: BackendName): Promise<void> {
  await initEngine({ backend });
  const baseline = process.memoryUsage().rss;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const model = await loadCheckpoint(dir);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const params = model.numParameters();
  // maxRSS is in kilobytes.
  console.log(JSON.stringify({ ms, cpuMs, params, baselineMb: baseline / 2 ** 20, peakMb: process.resourceUsage().maxRSS / 1024 }));
  model.dispose();
}

async function benchLoad(backends: BackendName[]): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), "xalign-bench-100m-"));
  const lines: string[] = [];
  try {
    const writeMs = await timeIt(async () => {
      await write100M(dir);
    });
    for (const backend of backends) {
      const child = spawnSync(
        process.execPath,
        [...process.execArgv, process.argv[1] as string, "--load-child", dir, "--backends", backend],
        {
          encoding: "utf8",
        },
      );
      const last = child.stdout.trim().split("\n").at(-1) ?? "";
      if (child.status !== 0 || !last.startsWith("{")) {
        lines.push(`| ${backend} | load failed: ${(child.stderr || last).split("\n")[0]} | | | |`);
        continue;
      }
      const r = JSON.parse(last) as { ms: number; cpuMs: number; params: number; baselineMb: number; peakMb: number };
      const weightsMb = (r.params * 4) / 2 ** 20;
      lines.push(
        `| ${backend} | ${(r.params / 1e6).toFixed(1)}M (${weightsMb.toFixed(0)} MB f32, 4 shards) | ${(r.ms / 1000).toFixed(2)} s (${(r.cpuMs / 1000).toFixed(2)} CPU-s) | ${r.peakMb.toFixed(0)} MB (${r.baselineMb.toFixed(0)} MB before load) | ${(r.peakMb - r.baselineMb).toFixed(0)} MB = ${((r.peakMb - r.baselineMb) / weightsMb).toFixed(2)}x weights |`,
      );
    }
    lines.unshift(`(checkpoint written in ${(writeMs / 1000).toFixed(1)} s)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return lines;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      backends: { type: "string", default: "cpu,wasm,webgpu" },
      decode: { type: "string", default: "128" },
      "skip-load": { type: "boolean", default: false },
      "load-child": { type: "string" },
    },
  });
  const backends = (values.backends as string).split(",") as BackendName[];
  if (values["load-child"]) {
    await loadChild(values["load-child"], backends[0] ?? "cpu");
    return;
  }
  const load = loadavg()[0]?.toFixed(1);
  console.log(`# Model benchmarks (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, load average ${load} at start)\n`);
  console.log(
    "TinyStories-15M shape (dim 288, 6 layers, 6 heads, vocab 32000, tied), random weights; prefill = one forward over 256 tokens (last logits); decode = greedy generate() from 1 token, KV cache, batch 1; medians.\n",
  );
  console.log(
    "| backend | prefill tokens/s (seq 256) | prefill tokens per CPU-s | decode tokens/s (batch 1) | decode tokens per CPU-s | repetitions |",
  );
  console.log("|---|---|---|---|---|---|");
  for (const backend of backends) {
    const row = await benchBackend(backend, Number(values.decode));
    if (typeof row === "string") console.log(`| ${row} | | | | | |`);
    else {
      const f = (x: number) => x.toFixed(0);
      console.log(
        `| ${row.backend}: ${row.device} | ${f(row.prefill.wall)} | ${f(row.prefill.cpu)} | ${f(row.decode.wall)} | ${f(row.decode.cpu)} | ${row.reps} |`,
      );
    }
  }
  console.log("\nTraining step (loss + all gradients, batch 4 x 128 tokens, vocab 8192, dim 256, 4 layers), CPU time, medians of 3:\n");
  console.log(`| backend | LlamaModel${nativeStatus().available ? " (native kernels)" : ""} | LlamaModel, plain TF.js ops | ratio |`);
  console.log("|---|---|---|---|");
  for (const backend of backends.filter((b) => b === "wasm")) console.log(await benchTrainingStep(backend));
  if (!values["skip-load"]) {
    console.log(
      "\n~100M-parameter checkpoint (hidden 640, 12 layers, vocab 32000, untied), sharded F32 safetensors, loaded with loadCheckpoint in a fresh process:\n",
    );
    const available = backends.filter((b) => b !== "webgpu");
    const lines = await benchLoad(available);
    console.log(lines[0]);
    console.log("\n| backend | parameters | load time | peak RSS | peak RSS - RSS before load |");
    console.log("|---|---|---|---|---|");
    for (const line of lines.slice(1)) console.log(line);
  }
}

await main();
