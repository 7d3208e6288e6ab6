import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { TrainSchema } from "../../src/config/schema.js";
import { initEngine } from "../../src/engine/index.js";
import { loadCheckpoint } from "../../src/model/checkpoint.js";
import { LlamaModel } from "../../src/model/llama.js";
import { readSafetensors } from "../../src/model/safetensors.js";
import { packedBatches } from "../../src/train/batches.js";
import { LoraAdapters } from "../../src/train/lora.js";
import { train } from "../../src/train/trainer.js";
import { modelPersistence } from "../../src/train/weights.js";
import { FileSystemError, TrainingError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { tempDir } from "../helpers.js";
import { TINY_CONFIG, TINY_TOKENS } from "./tiny-model.js";

const config = TINY_CONFIG;

const tokens = TINY_TOKENS;
const trainConfigInput = (extra: Record<string, unknown> = {}) => ({
  max_steps: 6,
  batch_size: 2,
  max_length: 16,
  lr: 1e-2,
  warmup_steps: 2,
  grad_accum: 2,
  clip_norm: 1,
  weight_decay: 0.01,
  ...extra,
});
const trainConfig = (extra: Record<string, unknown> = {}) => TrainSchema.parse(trainConfigInput(extra));

function run(outDir: string, extra: Record<string, unknown> = {}, opts: { resume?: boolean; stopAfter?: number } = {}) {
  const model = LlamaModel.init(config, new Rng(7));
  const cfg = trainConfig(extra);
  const controller = new AbortController();
  return {
    model,
    result: train({
      model,
      params: model.variables,
      train: packedBatches(tokens, { maxLength: cfg.max_length, batchSize: cfg.batch_size, seed: 3 }),
      config: cfg,
      seed: 3,
      outDir,
      ...modelPersistence(model),
      resume: opts.resume ?? false,
      signal: controller.signal,
      progress: false,
      onStep: (r) => {
        if (opts.stopAfter !== undefined && r.step >= opts.stopAfter) controller.abort();
      },
    }),
  };
}

before(async () => {
  await initEngine({ backend: "cpu" });
});

describe("trainer", () => {
  it("a run stopped at step 3 and resumed gives bitwise the losses of an uninterrupted run", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const a = run(join(dir, "a"));
      const full = await a.result;
      a.model.dispose();
      assert.equal(full.steps, 6);
      const b1 = run(join(dir, "b"), {}, { stopAfter: 3 });
      const first = await b1.result;
      b1.model.dispose();
      assert.equal(first.interrupted, true);
      assert.equal(first.steps, 3);
      assert.ok(existsSync(join(dir, "b", "checkpoint-3", "trainer_state.json")));
      const b2 = run(join(dir, "b"), {}, { resume: true });
      const second = await b2.result;
      b2.model.dispose();
      const resumed = [...first.history, ...second.history].map((r) => r.loss);
      assert.deepEqual(
        resumed,
        full.history.map((r) => r.loss),
      );
      const lines = readFileSync(join(dir, "b", "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      assert.deepEqual(
        lines.map((l) => l.step),
        [1, 2, 3, 4, 5, 6],
      );
      for (const k of ["loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s"]) assert.ok(k in lines[0], k);
    } finally {
      await cleanup();
    }
  });

  it("resuming after SIGKILL past the last checkpoint leaves the metrics of an uninterrupted run (no repeated rows)", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const extra = { save_every: 2, keep_last: 5 };
      const a = run(join(dir, "a"), extra);
      await a.result;
      a.model.dispose();
      const b = join(dir, "b");
      const self = fileURLToPath(import.meta.url);
      const ts = self.endsWith(".ts");
      const child = spawn(
        process.execPath,
        [
          ...(ts ? ["--import", "tsx"] : []),
          join(self, "..", `kill-after-checkpoint-child.${ts ? "ts" : "js"}`),
          b,
          JSON.stringify(trainConfigInput(extra)),
          "5",
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          if (d.toString().includes("LOGGED")) {
            child.kill("SIGKILL");
            resolve();
          }
        });
        child.on("exit", (code) => reject(new Error(`child exited with ${code} before step 5`)));
      });
      await new Promise((r) => child.on("exit", r));
      const steps = (file: string) =>
        readFileSync(file, "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as Record<string, number>);
      assert.deepEqual(
        steps(join(b, "metrics.jsonl")).map((r) => r.step),
        [1, 2, 3, 4, 5],
        "the killed run logged step 5 after checkpoint-4",
      );
      const resumed = run(b, extra, { resume: true });
      await resumed.result;
      resumed.model.dispose();
      // Timings differ between runs; every other field (step, loss, lr, grad_norm, tokens, epoch) must match.
      const strip = (rows: Record<string, number>[]) => rows.map(({ tokens_per_s: _t, elapsed_s: _e, ...rest }) => rest);
      assert.deepEqual(strip(steps(join(b, "metrics.jsonl"))), strip(steps(join(dir, "a", "metrics.jsonl"))));
    } finally {
      await cleanup();
    }
  });

  it("--resume skips a truncated newest checkpoint, says so, and resumes from the newest intact one", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const extra = { save_every: 2, keep_last: 5 };
      const a = run(join(dir, "a"), extra);
      const full = await a.result;
      a.model.dispose();
      const b = join(dir, "b");
      const first = run(b, extra, { stopAfter: 6 });
      await first.result;
      first.model.dispose();
      // checkpoint-6 is the newest; cut its weights in half as a crash during a copy would.
      const weights = join(b, "checkpoint-6", "model.safetensors");
      const bytes = readFileSync(weights);
      writeFileSync(weights, bytes.subarray(0, bytes.length >> 1));
      truncateSync(join(b, "metrics.jsonl"), 0);
      const messages: string[] = [];
      const write = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string) => {
        messages.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
      let resumed: Awaited<ReturnType<typeof run>["result"]>;
      try {
        const r = run(b, extra, { resume: true });
        resumed = await r.result;
        r.model.dispose();
      } finally {
        process.stderr.write = write;
      }
      assert.equal(resumed.resumedFrom, join(b, "checkpoint-4"));
      assert.deepEqual(
        resumed.damagedCheckpoints?.map((d) => d.dir),
        [join(b, "checkpoint-6")],
      );
      assert.match(messages.join(""), /checkpoint-6 is damaged/);
      assert.match(messages.join(""), /resuming from .*checkpoint-4, the newest intact checkpoint/);
      assert.deepEqual(
        resumed.history.map((h) => h.loss),
        full.history.slice(4).map((h) => h.loss),
      );
    } finally {
      await cleanup();
    }
  });

  it("a full disk during a save is a FileSystemError naming the checkpoint, and leaves the earlier checkpoints intact", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const model = LlamaModel.init(config, new Rng(1));
      const persistence = modelPersistence(model);
      let saves = 0;
      await assert.rejects(
        train({
          model,
          params: model.variables,
          train: packedBatches(tokens, { maxLength: 16, batchSize: 2, seed: 1 }),
          config: trainConfig({ grad_accum: 1, save_every: 1 }),
          seed: 1,
          outDir: dir,
          loadModel: persistence.loadModel,
          saveModel: async (d) => {
            await persistence.saveModel(d);
            // The second save runs out of space after its weights (as a write to a full disk fails).
            if (++saves === 2)
              throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
          },
          progress: false,
        }),
        (err: unknown) =>
          err instanceof FileSystemError &&
          err.code === "XA_FS_ENOSPC" &&
          err.file === join(dir, "checkpoint-2") &&
          /--resume/.test(err.message),
      );
      assert.ok(!existsSync(join(dir, "checkpoint-2")), "no half-written checkpoint under a checkpoint name");
      assert.deepEqual(
        readdirSync(dir).filter((n) => n.startsWith(".tmp-checkpoint")),
        [],
        "the failed save's temp folder is removed (its space given back)",
      );
      const again = run(dir, { grad_accum: 1, save_every: 1 }, { resume: true });
      const res = await again.result;
      again.model.dispose();
      // checkpoint-1 is intact: resuming reads it without skipping anything.
      assert.equal(res.resumedFrom, join(dir, "checkpoint-1"));
      assert.equal(res.damagedCheckpoints, undefined);
      model.dispose();
    } finally {
      await cleanup();
    }
  });

  it("keeps the tensor count constant across steps and frees everything after", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const before = tf.memory().numTensors;
      const counts: number[] = [];
      const model = LlamaModel.init(config, new Rng(1));
      const cfg = trainConfig({ max_steps: 5, grad_accum: 1 });
      await train({
        model,
        params: model.variables,
        train: packedBatches(tokens, { maxLength: 16, batchSize: 2, seed: 1 }),
        config: cfg,
        seed: 1,
        outDir: dir,
        ...modelPersistence(model),
        progress: false,
        onStep: () => counts.push(tf.memory().numTensors),
      });
      assert.ok(
        counts.slice(1).every((c) => c === counts[1]),
        `tensor counts changed: ${counts}`,
      );
      model.dispose();
      assert.equal(tf.memory().numTensors, before);
    } finally {
      await cleanup();
    }
  });

  it("stops with a clear error naming the step when the loss is not finite", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const model = LlamaModel.init(config, new Rng(1));
      let calls = 0;
      const poisoned = {
        loss: (ids: tf.Tensor2D, labels: tf.Tensor2D, mask?: tf.Tensor2D) =>
          (++calls > 2 ? tf.mul(model.loss(ids, labels, mask), Number.NaN) : model.loss(ids, labels, mask)) as tf.Scalar,
      };
      await assert.rejects(
        train({
          model: poisoned,
          params: model.variables,
          train: packedBatches(tokens, { maxLength: 16, batchSize: 2, seed: 1 }),
          config: trainConfig({ grad_accum: 1, save_every: 1 }),
          seed: 1,
          outDir: dir,
          ...modelPersistence(model),
          progress: false,
        }),
        (err: unknown) => err instanceof TrainingError && /NaN at step 3/.test(err.message) && /checkpoint-2/.test(err.message),
      );
      assert.ok(existsSync(join(dir, "checkpoint-2", "trainer_state.json")), "the last good checkpoint is kept");
      model.dispose();
    } finally {
      await cleanup();
    }
  });

  it("stops like the NaN path when the loss diverges: error naming the step and the last good checkpoint", async () => {
    for (const [extra, pattern] of [
      [{}, /diverged at step 3: the smoothed loss .* over 10 times the first loss/],
      [{ max_loss: 100, divergence_factor: 0 }, /diverged at step 3: the loss .* above max_loss 100/],
    ] as const) {
      const { dir, cleanup } = await tempDir();
      try {
        const model = LlamaModel.init(config, new Rng(1));
        let calls = 0;
        // From step 3 on the loss is 1e6 times what it should be, as with a learning rate far too high.
        const exploding = {
          loss: (ids: tf.Tensor2D, labels: tf.Tensor2D, mask?: tf.Tensor2D) =>
            (++calls > 2 ? tf.mul(model.loss(ids, labels, mask), 1e6) : model.loss(ids, labels, mask)) as tf.Scalar,
        };
        await assert.rejects(
          train({
            model: exploding,
            params: model.variables,
            train: packedBatches(tokens, { maxLength: 16, batchSize: 2, seed: 1 }),
            config: trainConfig({ grad_accum: 1, save_every: 1, ...extra }),
            seed: 1,
            outDir: dir,
            ...modelPersistence(model),
            progress: false,
          }),
          (err: unknown) =>
            err instanceof TrainingError &&
            err.code === "XA_TRAIN_DIVERGED" &&
            pattern.test(err.message) &&
            /checkpoint-2/.test(err.message),
        );
        assert.ok(existsSync(join(dir, "checkpoint-2", "trainer_state.json")), "the last good checkpoint is kept");
        model.dispose();
      } finally {
        await cleanup();
      }
    }
  });

  it("LoRA trains only the adapters, saves them under PEFT's names, and merges into a plain checkpoint", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const model = LlamaModel.init(config, new Rng(2));
      const baseQ = Array.from(model.weight("model.layers.0.self_attn.q_proj.weight").dataSync());
      const lora = LoraAdapters.attach(model, { rank: 4, alpha: 8, dropout: 0.1, targets: ["q_proj", "v_proj"] }, new Rng(5));
      const ids = tf.tensor2d([[3, 4, 5, 6]], undefined, "int32");
      const logitsBefore = model.forward(ids).dataSync().slice();
      const result = await train({
        model,
        params: lora.params,
        train: packedBatches(tokens, { maxLength: 16, batchSize: 2, seed: 1 }),
        config: trainConfig({ grad_accum: 1, lr: 5e-2 }),
        seed: 1,
        outDir: dir,
        ...modelPersistence(model, lora),
        beforeStep: (s) => lora.beginStep(s),
        progress: false,
      });
      assert.deepEqual(Array.from(model.weight("model.layers.0.self_attn.q_proj.weight").dataSync()), baseQ, "base weights frozen");
      const saved = await readSafetensors(join(result.checkpoint!, "adapter_model.safetensors"));
      assert.deepEqual(saved["base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"]!.shape, [4, 32]);
      assert.deepEqual(saved["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]!.shape, [16, 4]);
      assert.equal(Object.keys(saved).length, 8);
      const adapterCfg = JSON.parse(readFileSync(join(result.checkpoint!, "adapter_config.json"), "utf8"));
      assert.deepEqual([adapterCfg.peft_type, adapterCfg.r, adapterCfg.lora_alpha], ["LORA", 4, 8]);
      lora.training = false;
      const withAdapters = model.forward(ids).dataSync().slice();
      assert.ok(
        withAdapters.some((v, i) => Math.abs(v - (logitsBefore[i] as number)) > 1e-6),
        "adapters changed the output",
      );
      // Reload the adapters by name onto a fresh copy of the base model.
      const base = LlamaModel.init(config, new Rng(2));
      const reloaded = await LoraAdapters.load(base, result.checkpoint!);
      reloaded.training = false;
      const reloadedLogits = base.forward(ids).dataSync();
      for (const [i, v] of withAdapters.entries()) assert.ok(Math.abs(v - (reloadedLogits[i] as number)) < 1e-5);
      lora.merge();
      const mergedDir = join(dir, "merged");
      await modelPersistence(model).saveModel(mergedDir);
      const merged = await loadCheckpoint(mergedDir);
      const mergedLogits = merged.forward(ids).dataSync();
      for (const [i, v] of withAdapters.entries()) assert.ok(Math.abs(v - (mergedLogits[i] as number)) < 1e-4);
      for (const m of [model, base, merged]) m.dispose();
      reloaded.dispose();
      ids.dispose();
    } finally {
      await cleanup();
    }
  });
});

describe("checkpoint atomicity", () => {
  it("a process killed in the middle of a save leaves the previous checkpoint intact and resumable", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const self = fileURLToPath(import.meta.url);
      const ts = self.endsWith(".ts");
      const child = spawn(
        process.execPath,
        [...(ts ? ["--import", "tsx"] : []), join(self, "..", `kill-save-child.${ts ? "ts" : "js"}`), dir],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          if (d.toString().includes("SAVING")) {
            child.kill("SIGKILL");
            resolve();
          }
        });
        child.on("exit", (code) => reject(new Error(`child exited with ${code} before the save`)));
      });
      await new Promise((r) => child.on("exit", r));
      const names = readdirSync(dir).sort();
      assert.ok(names.includes("checkpoint-2"), `checkpoints: ${names}`);
      assert.ok(!names.includes("checkpoint-3"), "no half-written checkpoint under a checkpoint name");
      assert.ok(
        names.some((n) => n.startsWith(".tmp-checkpoint-3")),
        "the interrupted save stayed in its temp folder",
      );
      const reloaded = await loadCheckpoint(join(dir, "checkpoint-2"));
      reloaded.dispose();
      // Resuming continues from checkpoint-2 and cleans the stale temp folder.
      const b = run(dir, { save_every: 1, keep_last: 5 }, { resume: true });
      const res = await b.result;
      b.model.dispose();
      assert.equal(res.history[0]?.step, 3);
      assert.ok(!readdirSync(dir).some((n) => n.startsWith(".tmp-checkpoint")), "stale temp folders removed");
    } finally {
      await cleanup();
    }
  });
});
