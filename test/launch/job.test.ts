/**
 * Supervising a launched job, with a stand-in for torchrun (a Node script):
 * metrics lines stream into metrics.jsonl (when the supervisor is asked to
 * write it; python/xalign_torch.py writes its own), logs into job.log; an interrupt
 * stops the whole process group (grandchildren too), escalating to SIGKILL;
 * a crash is a TrainingError quoting the last log lines; a missing
 * executable is a BackendError. launch() runs stages through the same path
 * and writes the runs/<name>/ layout whose final/ folder loadCheckpoint reads.
 */
import assert from "node:assert/strict";
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import { launch, superviseJob } from "../../src/launch/index.js";
import { loadCheckpoint } from "../../src/model/index.js";
import { BackendError, TrainingError } from "../../src/util/errors.js";
import { fixture, tempDir } from "../helpers.js";
import { ROOMY_MODEL, torchExperiment } from "./experiment.js";

// A stand-in for torchrun + python/xalign_torch.py: MODE decides how it behaves.
const FAKE_JOB = `
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const mode = process.env.MODE;
const emit = (r) => console.log("XALIGN_METRICS " + JSON.stringify(r));
console.log("loading model");
console.error("a warning on stderr");
emit({ event: "start", total_steps: 3, world_size: 1 });
if (mode === "interrupt" || mode === "stubborn") {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  fs.writeFileSync(process.env.PID_FILE, String(child.pid));
  if (mode === "interrupt") process.on("SIGTERM", () => { emit({ event: "interrupted", step: 1 }); process.exit(0); });
  else process.on("SIGTERM", () => console.log("ignoring SIGTERM"));
  emit({ split: "train", step: 1, loss: 2.5, lr: 0.001 });
  setInterval(() => {}, 1000);
} else {
  console.log("XALIGN_METRICS {not json");
  [2.5, 2.0, 1.5].forEach((loss, i) => emit({ split: "train", step: i + 1, loss, lr: 0.001, input_tokens_per_s: 100 }));
  emit({ split: "validation", step: 3, loss: 1.8 });
  if (mode === "stderr-first") { console.error("ValueError: bad shard"); setTimeout(() => { for (let i = 0; i < 50; i++) console.log("trace line " + i); process.exit(4); }, 200); }
  if (mode === "crash") { for (let i = 0; i < 50; i++) console.log("trace line " + i); console.error("RuntimeError: CUDA out of memory"); process.exit(3); }
  if (mode === "train") {
    // As the runner: metrics.jsonl in out_dir, the weights in final_dir.
    const args = process.argv.slice(2);
    const job = JSON.parse(fs.readFileSync(args[args.indexOf("--job") + 1], "utf8"));
    fs.mkdirSync(job.out_dir, { recursive: true });
    fs.writeFileSync(job.out_dir + "/metrics.jsonl", [2.5, 2.0, 1.5].map((loss, i) => JSON.stringify({ split: "train", step: i + 1, loss })).join("\\n") + "\\n");
    fs.cpSync(process.env.CHECKPOINT, job.final_dir, { recursive: true });
  }
}
`;

async function fakeJob(dir: string): Promise<string> {
  const file = join(dir, "fake-job.cjs");
  await writeFile(file, FAKE_JOB);
  return file;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitFor(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("metrics lines stream into metrics.jsonl, every line into job.log", async () => {
  const tmp = await tempDir();
  try {
    const job = await fakeJob(tmp.dir);
    const metricsFile = join(tmp.dir, "sft", "metrics.jsonl");
    const logFile = join(tmp.dir, "sft", "job.log");
    const result = await superviseJob({
      argv: [process.execPath, job],
      label: "t/sft",
      metricsFile,
      logFile,
      progress: false,
      env: { MODE: "ok" },
      signal: new AbortController().signal,
    });
    assert.equal(result.exitCode, 0);
    assert.equal(result.steps, 3);
    assert.equal(result.finalLoss, 1.5);
    assert.equal(result.records, 4);
    const records = (await readFile(metricsFile, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      records.map((r) => [r.split, r.step, r.loss]),
      [
        ["train", 1, 2.5],
        ["train", 2, 2],
        ["train", 3, 1.5],
        ["validation", 3, 1.8],
      ],
    );
    const log = await readFile(logFile, "utf8");
    assert.match(log, /loading model/);
    assert.match(log, /a warning on stderr/);
    assert.match(log, /XALIGN_METRICS \{not json/, "a garbled metrics line stays in the log");
  } finally {
    await tmp.cleanup();
  }
});

test("a job's stderr tail is quoted even when 50 stdout lines came after it", async () => {
  const tmp = await tempDir();
  try {
    const job = await fakeJob(tmp.dir);
    await assert.rejects(
      superviseJob({
        argv: [process.execPath, job],
        label: "t/sft",
        metricsFile: join(tmp.dir, "metrics.jsonl"),
        logFile: join(tmp.dir, "job.log"),
        progress: false,
        tailLines: 5,
        env: { MODE: "stderr-first" },
        signal: new AbortController().signal,
      }),
      (err: unknown) => {
        assert.ok(err instanceof TrainingError);
        assert.match(err.message, /exited with code 4/);
        assert.match(err.message, /ValueError: bad shard/);
        assert.match(err.message, /trace line 49/);
        return true;
      },
    );
  } finally {
    await tmp.cleanup();
  }
});

test("a job that dies is a TrainingError with its last log lines", async () => {
  const tmp = await tempDir();
  try {
    const job = await fakeJob(tmp.dir);
    const logFile = join(tmp.dir, "job.log");
    await assert.rejects(
      superviseJob({
        argv: [process.execPath, job],
        label: "t/sft",
        metricsFile: join(tmp.dir, "metrics.jsonl"),
        logFile,
        progress: false,
        tailLines: 5,
        env: { MODE: "crash" },
        signal: new AbortController().signal,
      }),
      (err: unknown) => {
        assert.ok(err instanceof TrainingError);
        assert.equal(err.code, "XA_LAUNCH_FAILED");
        assert.match(err.message, /exited with code 3/);
        assert.match(err.message, /RuntimeError: CUDA out of memory/);
        assert.match(err.message, /trace line 49/);
        assert.doesNotMatch(err.message, /trace line 40\b/, "only the last lines");
        assert.equal(err.file, logFile);
        return true;
      },
    );
  } finally {
    await tmp.cleanup();
  }
});

test("an interrupt stops the job's whole process group; a job ignoring SIGTERM is killed", async () => {
  const tmp = await tempDir();
  try {
    const job = await fakeJob(tmp.dir);
    for (const mode of ["interrupt", "stubborn"]) {
      const controller = new AbortController();
      const metricsFile = join(tmp.dir, mode, "metrics.jsonl");
      const pidFile = join(tmp.dir, `${mode}.pid`);
      const running = superviseJob({
        argv: [process.execPath, job],
        label: "t/sft",
        metricsFile,
        logFile: join(tmp.dir, mode, "job.log"),
        progress: false,
        killAfterMs: 500,
        env: { MODE: mode, PID_FILE: pidFile },
        signal: controller.signal,
      });
      await waitFor(async () => (await readFile(metricsFile, "utf8").catch(() => "")).includes('"step":1'));
      const grandchild = Number(await readFile(pidFile, "utf8"));
      assert.ok(alive(grandchild));
      controller.abort();
      const result = await running;
      assert.equal(result.interrupted, true, mode);
      if (mode === "interrupt") assert.equal(result.exitCode, 0, "the job stopped itself on SIGTERM");
      else assert.equal(result.signal, "SIGKILL", "escalated to SIGKILL");
      await waitFor(async () => !alive(grandchild), 5000);
      assert.match(await readFile(join(tmp.dir, mode, "job.log"), "utf8"), /interrupt requested/);
    }
  } finally {
    await tmp.cleanup();
  }
});

test("a missing torchrun is a BackendError that says what to install", async () => {
  const tmp = await tempDir();
  try {
    await assert.rejects(
      superviseJob({
        argv: [join(tmp.dir, "no-such-torchrun")],
        label: "t/sft",
        metricsFile: join(tmp.dir, "m.jsonl"),
        logFile: join(tmp.dir, "job.log"),
        progress: false,
        signal: new AbortController().signal,
      }),
      (err: unknown) => err instanceof BackendError && err.code === "XA_LAUNCH_SPAWN" && /python\/README\.md/.test(err.message),
    );
  } finally {
    await tmp.cleanup();
  }
});

test("launch(): stages run, manifest and metrics land in runs/<name>/, final/ loads with loadCheckpoint, reruns are cached", async () => {
  const tmp = await tempDir();
  try {
    const job = await fakeJob(tmp.dir);
    const checkpoint = join(tmp.dir, "ckpt");
    await cp(fixture("tiny-llama"), checkpoint, { recursive: true });
    const exp = await torchExperiment(tmp.dir, {
      n: 32,
      model: ROOMY_MODEL,
      train: "epochs: 1\n      batch_size: 2\n      max_length: 256",
    });
    const options = {
      progress: false,
      signal: new AbortController().signal,
      env: { MODE: "train", CHECKPOINT: checkpoint },
      wrapCommand: (argv: string[]) => [process.execPath, job, ...argv.slice(argv.indexOf("--job"))],
    };
    const run = await launch(exp, options);
    assert.equal(run.interrupted, false);
    assert.equal(run.stages[0]!.job?.steps, 3);
    assert.equal(run.finalDir, join(tmp.dir, "runs", "tiny-torch", "sft", "final"));
    const manifest = JSON.parse(await readFile(run.manifestPath, "utf8"));
    assert.equal(manifest.format, "xalign-run/1");
    assert.equal(manifest.engine, "torch-fsdp");
    assert.equal(manifest.stages[0].final_loss, 1.5);
    const rows = (await readFile(join(tmp.dir, "runs", "tiny-torch", "sft", "metrics.jsonl"), "utf8")).trim().split("\n");
    assert.equal(rows.length, 3, "the runner's metrics.jsonl, each step once (the supervisor adds none)");
    assert.equal(manifest.stages[0].parallel, "ddp");
    await initEngine({ backend: "cpu" });
    const model = await loadCheckpoint(run.finalDir);
    try {
      assert.equal(model.config.hidden_size, 64);
      const logits = tf.tidy(() => model.forward(tf.tensor2d([[1, 5, 9]], [1, 3], "int32")));
      assert.deepEqual(logits.shape, [1, 3, 256]);
      logits.dispose();
    } finally {
      model.dispose();
    }
    const again = await launch(exp, options);
    assert.equal(again.stages[0]!.job, undefined, "a stage with final/ is not run again");
  } finally {
    await tmp.cleanup();
  }
});
