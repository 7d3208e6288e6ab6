/**
 * `xalign launch` end to end on the CPU where Python can import torch (CI:
 * Debian's python3-torch 1.13): python/xalign_torch.py under torchrun (its
 * --torchrun shim: torch 1.13's own torchrun cannot parse its arguments under
 * Python 3.11) trains a tiny LLaMA with DDP over two gloo processes; the
 * losses equal one process with the doubled per-GPU batch (the same
 * micro-batches) and the tfjs engine (`xalign train`) with that batch; an
 * interrupt leaves a checkpoint and no final/, --resume finishes on the same
 * losses; final/ loads in xalign with the runner's logits. FSDP is selected
 * and written into the job as asked; it runs only on torch >= 2.0, so here
 * the runner refuses it with the reason and the test says it skipped the run.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import { launch, planLaunch } from "../../src/launch/index.js";
import { loadCheckpoint } from "../../src/model/index.js";
import { runExperiment } from "../../src/train/experiment.js";
import { findTorchPython, torchRunnerPath } from "../../src/train/torch-engine.js";
import { TrainingError } from "../../src/util/errors.js";
import { tempDir } from "../helpers.js";
import { ROOMY_MODEL, torchExperiment } from "./experiment.js";

const found = findTorchPython();
const skip = found.python ? false : `skipped: ${found.missing}`;
const IDS = [1, 5, 9, 17, 33, 2];
const TOL = 1e-4;

/** batch_size per GPU; 10 steps of 2 micro-batches, checkpoints every 2 steps. */
const STEPS = 10;
const train = (batchSize: number) =>
  `max_steps: ${STEPS}\n      batch_size: ${batchSize}\n      grad_accum: 2\n      lr: 0.003\n      warmup_steps: 2\n      max_length: 256\n      clip_norm: 1.0\n      weight_decay: 0.1\n      log_every: 1\n      save_every: 2`;
const launchBlock = (gpus: number, extra = "") => `launch:\n  gpus_per_node: ${gpus}\n  bf16: false${extra}`;

/** Runs torchrun's argv through the runner's shim with this interpreter. */
const viaShim = (argv: string[]) => [found.python as string, torchRunnerPath(), "--torchrun", ...argv.slice(1)];

const losses = (file: string) =>
  readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { split: string; step: number; loss: number })
    .filter((r) => r.split === "train")
    .map((r) => r.loss);

function maxDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length, "step counts");
  return Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number))));
}

test("xalign launch under torchrun: DDP over 2 processes = 1 process with the doubled batch = the tfjs engine; interrupt, resume; final/ reloads", {
  skip,
  timeout: 900_000,
}, async () => {
  const tmp = await tempDir();
  try {
    const dirs = { two: join(tmp.dir, "two"), one: join(tmp.dir, "one"), cut: join(tmp.dir, "cut") };
    for (const d of Object.values(dirs)) await mkdir(d);
    const two = await torchExperiment(dirs.two, {
      n: 48,
      model: ROOMY_MODEL,
      stage: "    validation_ratio: 0",
      train: train(2),
      extra: launchBlock(2),
    });
    const one = await torchExperiment(dirs.one, {
      n: 48,
      model: ROOMY_MODEL,
      stage: "    validation_ratio: 0",
      train: train(4),
      extra: launchBlock(1),
    });
    const options = { progress: false, signal: new AbortController().signal, wrapCommand: viaShim };

    const runTwo = await launch(two, options);
    const stageTwo = runTwo.stages[0]!;
    assert.equal(runTwo.plan.stages[0]!.parallel.mode, "ddp");
    assert.equal(stageTwo.job?.steps, STEPS);
    const runOne = await launch(one, options);
    const lossesTwo = losses(stageTwo.metricsFile);
    const lossesOne = losses(runOne.stages[0]!.metricsFile);
    assert.equal(lossesTwo.length, STEPS, "the runner's metrics.jsonl: one row a step");
    const ddp = maxDiff(lossesTwo, lossesOne);
    process.stderr.write(
      `e2e.test: launch, 2 gloo processes vs 1 with the doubled batch: max |loss diff| over ${STEPS} steps ${ddp.toExponential(2)}\n`,
    );
    assert.ok(ddp < TOL, `losses differ by ${ddp}: ${lossesTwo} vs ${lossesOne}`);
    assert.ok(lossesTwo[STEPS - 1]! < lossesTwo[0]!, `the loss falls: ${lossesTwo}`);
    assert.deepEqual(
      readFileSync(join(runTwo.plan.launchDir, "sft.batches.bin")),
      readFileSync(join(runOne.plan.launchDir, "sft.batches.bin")),
      "2 GPUs x 2 rows and 1 GPU x 4 rows: the same micro-batches",
    );

    // The tfjs engine (`xalign train`) on the same experiment with batch_size 4: the same losses.
    const yaml = readFileSync(one.file, "utf8")
      .replace("engine: torch-fsdp", "engine: tfjs\nbackend: cpu")
      .replace("name: tiny-torch", "name: tiny-tfjs");
    await writeFile(join(dirs.one, "tfjs.yaml"), yaml);
    const { loadExperiment } = await import("../../src/config/load.js");
    const reference = await runExperiment(await loadExperiment(join(dirs.one, "tfjs.yaml")), { progress: false });
    const tfjs = reference.stages[0]!.result!.history.map((r) => r.loss);
    reference.model.dispose();
    const engines = maxDiff(lossesOne, tfjs);
    process.stderr.write(
      `e2e.test: launch (torch, 1 process) vs xalign train (tfjs): max |loss diff| over ${STEPS} steps ${engines.toExponential(2)}\n`,
    );
    assert.ok(engines < TOL, `torch ${lossesOne} vs tfjs ${tfjs}`);

    // final/: config.json, weights and the tokenizer; xalign's logits = the runner's on it.
    const finalDir = stageTwo.finalDir;
    for (const f of ["config.json", "model.safetensors", "tokenizer.json"]) assert.ok(existsSync(join(finalDir, f)), `final/${f}`);
    await writeFile(join(tmp.dir, "logits.json"), JSON.stringify({ weights_dir: finalDir, input_ids: [IDS] }));
    const r = spawnSync(found.python as string, [torchRunnerPath(), "--logits", join(tmp.dir, "logits.json")], {
      encoding: "utf8",
      maxBuffer: 1 << 28,
    });
    assert.equal(r.status, 0, r.stderr);
    const expected = (JSON.parse(r.stdout) as { logits: number[][][] }).logits[0]!;
    await initEngine({ backend: "cpu" });
    const model = await loadCheckpoint(finalDir);
    try {
      const got = tf.tidy(() =>
        model
          .forward(tf.tensor2d([IDS], [1, IDS.length], "int32"))
          .squeeze([0])
          .arraySync(),
      ) as number[][];
      const worst = maxDiff(got.flat(), expected.flat());
      assert.ok(worst < TOL, `xalign and the runner's logits on final/ differ by ${worst}`);
    } finally {
      model.dispose();
    }

    // An interrupt (SIGTERM to torchrun's process group) after step 2: a checkpoint, no final/; --resume ends on the same losses.
    const cut = await torchExperiment(dirs.cut, {
      n: 48,
      model: ROOMY_MODEL,
      stage: "    validation_ratio: 0",
      train: train(2),
      extra: launchBlock(2),
    });
    const controller = new AbortController();
    const watcher = setInterval(() => {
      const metrics = join(dirs.cut, "runs", "tiny-torch", "sft", "metrics.jsonl");
      if (existsSync(metrics) && readFileSync(metrics, "utf8").includes('"step": 2')) controller.abort();
    }, 100);
    let first: Awaited<ReturnType<typeof launch>>;
    try {
      first = await launch(cut, { ...options, signal: controller.signal, killAfterMs: 120_000 });
    } finally {
      clearInterval(watcher);
    }
    assert.ok(first.interrupted, "interrupted");
    const cutStage = first.stages[0]!;
    assert.ok(!existsSync(join(cutStage.finalDir, "config.json")), "no final/ after an interrupt (it would mark the stage done)");
    const stopped = losses(cutStage.metricsFile).length;
    assert.ok(stopped >= 2 && stopped < STEPS, `stopped early (${stopped} steps)`);
    assert.ok(
      existsSync(join(dirs.cut, "runs", "tiny-torch", "sft", `checkpoint-${stopped}`, "optimizer.safetensors")),
      "checkpoint at the stop",
    );
    const resumed = await launch(cut, { ...options, resume: true });
    assert.equal(resumed.interrupted, false);
    const resumedDiff = maxDiff(losses(cutStage.metricsFile), lossesTwo);
    process.stderr.write(`e2e.test: interrupted at step ${stopped} and resumed: max |loss diff| ${resumedDiff.toExponential(2)}\n`);
    assert.ok(resumedDiff < TOL, `resumed losses differ by ${resumedDiff}`);
    assert.ok(existsSync(join(cutStage.finalDir, "model.safetensors")));
  } finally {
    await tmp.cleanup();
  }
});

test("FSDP: selected by --parallel fsdp or the memory estimate, written into the job; run where torch can (>= 2.0), else refused with the reason", {
  skip,
  timeout: 300_000,
}, async (t) => {
  const tmp = await tempDir();
  try {
    const exp = await torchExperiment(tmp.dir, {
      n: 48,
      model: ROOMY_MODEL,
      stage: "    validation_ratio: 0",
      train: train(2),
      extra: launchBlock(2),
    });
    const byEstimate = await planLaunch(exp, { gpuMemoryGiB: 0.001 });
    assert.equal(byEstimate.stages[0]!.parallel.mode, "fsdp", "a GPU too small for DDP: FSDP");
    const options = { progress: false, signal: new AbortController().signal, wrapCommand: viaShim, parallel: "fsdp" as const };
    const probe = found.probe!;
    if (probe.fsdp && probe.cuda) {
      const run = await launch(exp, options);
      assert.equal(JSON.parse(readFileSync(run.plan.stages[0]!.jobFile, "utf8")).parallel, "fsdp");
      assert.equal(losses(run.stages[0]!.metricsFile).length, STEPS);
      assert.ok(existsSync(join(run.stages[0]!.finalDir, "model.safetensors")), "final/ gathered from the shards");
      return;
    }
    if (probe.fsdp) {
      t.skip(`FSDP selected; not run: torch ${probe.torch} sees no CUDA device here (the runner's FSDP is exercised on GPUs)`);
      return;
    }
    await assert.rejects(launch(exp, options), (err: unknown) => {
      assert.ok(err instanceof TrainingError, String(err));
      assert.match(readFileSync(err.file as string, "utf8"), /parallel fsdp cannot run here: torch \S+ is older than 2\.0/);
      return true;
    });
    const job = JSON.parse(readFileSync(join(tmp.dir, "runs", "tiny-torch", "launch", "sft.json"), "utf8"));
    assert.equal(job.parallel, "fsdp");
    assert.deepEqual(job.fsdp, { sharding: "full_shard" });
    t.skip(
      `FSDP selected and written into the job; its run was refused, as it must be here: torch ${probe.torch} is older than 2.0 (the runner's FSDP needs use_orig_params; torch 1.13's FSDP also needs CUDA to wrap a module)`,
    );
  } finally {
    await tmp.cleanup();
  }
});
