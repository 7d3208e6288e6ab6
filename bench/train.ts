/**
 * Trainer benchmark: training tokens/s and peak RSS of the trainer's own loop
 * (src/train: AdamW, clipping, metrics) on the two benchmark models of the
 * foundation issue, full fine-tuning and LoRA (rank 8 on q/v), beside PyTorch
 * (bench/torch_baseline.py, full fine-tuning with AdamW, same threads) in the
 * same run. Each measurement runs in its own process.
 *
 *   node --import tsx bench/train.ts [--models tiny,larger] [--modes full,lora] [--threads 1] [--backend wasm] [--steps N] [--rounds R] [--profile]
 *   node dist/bench/train.js
 *
 * `--steps N` is per round (the tiny model runs 5N: its steps are ~100x shorter).
 * `--rounds R` alternates R runs of PyTorch and of ours (each in its own
 * process) and reports medians, with the range of the per-round ratios: on a
 * noisy machine a slow spell then moves both sides alike.
 * `--threads N` gives the engine N threads (BLAS and the native fused kernels'
 * loops when the addon is on) and PyTorch the same N. `--profile` runs the
 * steps under tf.profile and prints, to stderr, kernel ms and dispatches per
 * step summed by kernel name (the timings then include the profiler's cost).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { TrainSchema } from "../src/config/schema.js";
import { type BackendName, initEngine, tf } from "../src/engine/index.js";
import { BENCHMARK_MODELS, benchmarkConfig } from "../src/model/benchmarks.js";
import { LlamaModel } from "../src/model/llama.js";
import { packedBatches } from "../src/train/batches.js";
import { LoraAdapters } from "../src/train/lora.js";
import { train } from "../src/train/trainer.js";
import { modelPersistence } from "../src/train/weights.js";
import { projectRoot } from "../src/util/fs.js";
import { Rng } from "../src/util/rng.js";

type ModelName = keyof typeof BENCHMARK_MODELS;

interface Row {
  model: ModelName;
  mode: "full" | "lora";
  backend: string;
  tokensPerSecond: number;
  msPerStep: number;
  /** Median process CPU time (all threads) per step: what an idle machine's wall time approaches. */
  cpuMsPerStep: number;
  peakRssMiB: number;
}

async function worker(
  model: ModelName,
  mode: "full" | "lora",
  backend: BackendName,
  steps: number,
  threads: number,
  profile: boolean,
): Promise<Row> {
  const engine = await initEngine({ backend, threads });
  const m = BENCHMARK_MODELS[model];
  const config = benchmarkConfig(m, m.seq);
  const llama = LlamaModel.init(config, new Rng(1));
  const rng = new Rng(2);
  const tokens = Int32Array.from({ length: m.batch * m.seq * (steps + 4) + 1 }, () => rng.int(m.vocab));
  const lora =
    mode === "lora" ? LoraAdapters.attach(llama, { rank: 8, alpha: 16, dropout: 0, targets: ["q_proj", "v_proj"] }, new Rng(3)) : undefined;
  const out = mkdtempSync(join(tmpdir(), "xalign-bench-train-"));
  const cpu: number[] = [];
  const periods: number[] = [];
  let last = process.cpuUsage();
  let lastStamp = performance.now();
  try {
    const run = () =>
      train({
        model: llama,
        params: lora ? lora.params : llama.variables,
        train: packedBatches(tokens, { maxLength: m.seq, batchSize: m.batch, seed: 1 }),
        config: TrainSchema.parse({ max_steps: steps, batch_size: m.batch, max_length: m.seq, lr: 1e-3, warmup_steps: 0, clip_norm: 1 }),
        seed: 1,
        outDir: out,
        ...modelPersistence(llama, lora),
        progress: false,
        checkpoints: false,
        onStep: () => {
          const used = process.cpuUsage(last);
          last = process.cpuUsage();
          cpu.push((used.user + used.system) / 1000);
          const now = performance.now();
          periods.push((now - lastStamp) / 1000);
          lastStamp = now;
        },
      });
    if (profile) {
      const info = await tf.profile(async () => {
        await run();
      });
      const by = new Map<string, [number, number]>();
      for (const k of info.kernels) {
        const e = by.get(k.name) ?? [0, 0];
        e[0]++;
        e[1] += Number(k.kernelTimeMs);
        by.set(k.name, e);
      }
      const rows = [...by].sort((a, b) => b[1][1] - a[1][1]);
      const total = rows.reduce((sum, [, [, ms]]) => sum + ms, 0);
      console.error(
        `${model} ${mode}: ${(info.kernels.length / steps).toFixed(0)} dispatches and ${(total / steps).toFixed(1)} kernel ms per step`,
      );
      for (const [name, [n, ms]] of rows.slice(0, 15))
        console.error(`| ${name} (${(n / steps).toFixed(0)}) | ${(ms / steps).toFixed(1)} |`);
    } else {
      await run();
    }
    // Median over the steps after the first two (warm-up: kernel compilation, allocation). A step's time is
    // the whole period from one step's end to the next (metrics logging included), not the trainer's own
    // tokens_per_s, which stops its clock before the metrics line is written.
    const times = periods.slice(2);
    times.sort((a, b) => a - b);
    const seconds = times[Math.floor(times.length / 2)] as number;
    const cpuSteps = cpu.slice(2).sort((a, b) => a - b);
    return {
      model,
      mode,
      backend: `${engine.backend} (${engine.device})`,
      tokensPerSecond: (m.batch * m.seq) / seconds,
      msPerStep: seconds * 1000,
      cpuMsPerStep: cpuSteps[Math.floor(cpuSteps.length / 2)] as number,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function torchBaseline(
  model: ModelName,
  threads: number,
  steps: number,
): { tokens_per_s: number; ms_per_step: number; cpu_ms_per_step: number; peak_rss_mib: number; torch: string } | undefined {
  const path = join(projectRoot(fileURLToPath(new URL(".", import.meta.url))), "bench", "torch_baseline.py");
  const r = spawnSync("/usr/bin/python3", [path, "--model", model, "--threads", String(threads), "--steps", String(steps)], {
    // OpenBLAS keeps its own pool (all cores unless told): pin it to the same count as torch's threads.
    env: { ...process.env, OMP_WAIT_POLICY: "PASSIVE", OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) },
    encoding: "utf8",
  });
  if (r.status !== 0) return undefined;
  return JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      models: { type: "string", default: "tiny,larger" },
      backend: { type: "string", default: "wasm" },
      steps: { type: "string", default: "8" },
      modes: { type: "string", default: "full,lora" },
      threads: { type: "string", default: "1" },
      profile: { type: "boolean", default: false },
      rounds: { type: "string", default: "1" },
      worker: { type: "string" },
      mode: { type: "string" },
    },
  });
  const steps = Number(values.steps);
  const threads = Number(values.threads);
  if (values.worker) {
    const row = await worker(
      values.worker as ModelName,
      values.mode as "full" | "lora",
      values.backend as BackendName,
      steps,
      threads,
      values.profile as boolean,
    );
    console.log(JSON.stringify(row));
    process.exit(0);
  }
  const self = fileURLToPath(import.meta.url);
  const runner = self.endsWith(".ts") ? [process.execPath, "--import", "tsx", self] : [process.execPath, self];
  const rounds = Math.max(1, Number(values.rounds));
  // The tiny model's steps are ~100x shorter: it runs 5x the steps so a round's median rests on more than a handful.
  const stepsOf = (model: ModelName) => (model === "tiny" ? steps * 5 : steps);
  const ours = (model: ModelName, mode: "full" | "lora"): Row => {
    const out = execFileSync(
      runner[0] as string,
      [
        ...runner.slice(1),
        ...["--worker", model, "--mode", mode, "--backend", values.backend as string, "--steps", String(stepsOf(model))],
        ...["--threads", String(threads), ...(values.profile ? ["--profile"] : [])],
      ],
      { encoding: "utf8", maxBuffer: 1 << 26, stdio: ["ignore", "pipe", "inherit"] },
    );
    return JSON.parse(out.trim().split("\n").at(-1) as string) as Row;
  };
  console.log(
    `${rounds} round(s), PyTorch and ours alternating, each its own process; figures are medians over the rounds, the ratio's range in brackets`,
  );
  console.log(
    "| model | mode | backend | threads | tokens/s | ms/step | CPU ms/step | peak RSS MiB | PyTorch tokens/s (full) | PyTorch ms/step | PyTorch CPU ms/step | PyTorch peak RSS MiB | ratio to PyTorch (tokens/s) | ratio by CPU time |",
  );
  console.log("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  for (const model of (values.models as string).split(",") as ModelName[]) {
    for (const mode of (values.modes as string).split(",") as ("full" | "lora")[]) {
      // Alternating rounds: a machine that slows down or speeds up during the run moves both sides alike.
      const torchRuns: NonNullable<ReturnType<typeof torchBaseline>>[] = [];
      const ourRuns: Row[] = [];
      for (let r = 0; r < rounds; r++) {
        const torch = torchBaseline(model, threads, Math.max(1, stepsOf(model) - 2));
        if (torch) torchRuns.push(torch);
        ourRuns.push(ours(model, mode));
      }
      const row = ourRuns[0] as Row;
      const m = (k: keyof Row) => median(ourRuns.map((x) => x[k] as number));
      const ratios = torchRuns.map((t, i) => (ourRuns[i] as Row).tokensPerSecond / t.tokens_per_s);
      const range = ratios.length > 1 ? ` [${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}]` : "";
      const tm = (k: "tokens_per_s" | "ms_per_step" | "cpu_ms_per_step" | "peak_rss_mib") => median(torchRuns.map((x) => x[k]));
      const ratio = torchRuns.length ? `${(m("tokensPerSecond") / tm("tokens_per_s")).toFixed(2)}x${range}` : "n/a";
      const cpuRatio = torchRuns.length ? `${(tm("cpu_ms_per_step") / m("cpuMsPerStep")).toFixed(2)}x` : "n/a";
      const t = torchRuns.length
        ? `${tm("tokens_per_s").toFixed(0)} | ${tm("ms_per_step").toFixed(0)} | ${tm("cpu_ms_per_step").toFixed(0)} | ${tm("peak_rss_mib").toFixed(0)}`
        : "PyTorch not installed (/usr/bin/python3 -c 'import torch') | | | ";
      console.log(
        `| ${model} | ${mode} | ${row.backend} | ${threads} | ${m("tokensPerSecond").toFixed(0)} | ${m("msPerStep").toFixed(0)} | ${m("cpuMsPerStep").toFixed(0)} | ${m("peakRssMiB").toFixed(0)} | ${t} | ${ratio} | ${cpuRatio} |`,
      );
    }
  }
}

await main();
