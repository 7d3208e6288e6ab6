/**
 * The torch engine (python/xalign_torch.py through src/train/torch-engine.ts)
 * against the TF.js trainer on the cpu backend: from the same initial weights
 * (written by TypeScript) and the same batches, 20 steps give the same losses
 * within 1e-4 (fp32) — plain packed batches with accumulation, clipping, decay
 * and warmup, and a canon_width 4, tied-head model on isolated-document
 * batches (segments); the saved weights load in TF.js with logits within 1e-4
 * and the same greedy tokens; and two processes under torch.distributed.run
 * (gloo) give the losses of one process with the whole batch. Skips with a
 * message where no Python can import torch (CI installs Debian's python3-torch).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { loadExperiment } from "../../src/config/load.js";
import { TrainSchema } from "../../src/config/schema.js";
import { initEngine } from "../../src/engine/index.js";
import type { LlamaConfig } from "../../src/model/config.js";
import { generate } from "../../src/model/generate.js";
import { LlamaModel } from "../../src/model/llama.js";
import { type BatchSource, bucketedBatches, documentBatches, packedBatches } from "../../src/train/batches.js";
import { runExperiment } from "../../src/train/experiment.js";
import { LoraAdapters } from "../../src/train/lora.js";
import {
  findTorchPython,
  generateTextsWithTorch,
  generateWithTorch,
  torchRunnerPath,
  trainOn,
  trainWithTorch,
} from "../../src/train/torch-engine.js";
import { train } from "../../src/train/trainer.js";
import { modelPersistence } from "../../src/train/weights.js";
import { Rng } from "../../src/util/rng.js";
import { tempDir } from "../helpers.js";
import { TINY_CONFIG, TINY_TOKENS } from "./tiny-model.js";

const found = findTorchPython();
const skip = found.python ? false : `skipped: ${found.missing}`;
if (skip) process.stderr.write(`torch-engine.test: ${skip}\n`);

const TOL = 1e-4;
const CANON_CONFIG: LlamaConfig = { ...TINY_CONFIG, canon_width: 4, tie_word_embeddings: true };

/** Documents BOS ... EOS of varying lengths cut from the tiny stream. */
function documents(): number[][] {
  const docs: number[][] = [];
  let at = 0;
  for (let i = 0; at < 1600; i++) {
    const n = 3 + ((i * 5) % 11);
    docs.push([1, ...TINY_TOKENS.slice(at, at + n).map((t) => 3 + (t % 47)), 2]);
    at += n;
  }
  return docs;
}

const packed = (batchSize: number): BatchSource => packedBatches(TINY_TOKENS, { maxLength: 16, batchSize, seed: 3 });
const isolated = (batchSize: number): BatchSource =>
  documentBatches(documents(), { maxLength: 24, batchSize, seed: 5, padId: 0, isolate: true });

const trainConfig = (extra: Record<string, unknown> = {}) =>
  TrainSchema.parse({
    max_steps: 20,
    batch_size: 4,
    max_length: 16,
    lr: 1e-2,
    warmup_steps: 3,
    schedule: "cosine",
    grad_accum: 2,
    clip_norm: 1,
    weight_decay: 0.1,
    ...extra,
  });

async function tfjsLosses(config: LlamaConfig, source: BatchSource, extra: Record<string, unknown>, outDir: string) {
  const model = LlamaModel.init(config, new Rng(7));
  const result = await train({
    model,
    params: model.variables,
    train: source,
    config: trainConfig(extra),
    seed: 0,
    outDir,
    ...modelPersistence(model),
    progress: false,
    checkpoints: false,
  });
  model.dispose();
  return result.history.map((r) => r.loss);
}

function maxDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length, "step counts");
  return Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number))));
}

/** Logits from the runner on the weights in `dir` ([b][t][vocab], flattened). */
function torchLogits(dir: string, ids: number[][], work: string): number[] {
  const job = join(work, "logits.json");
  writeFileSync(job, JSON.stringify({ weights_dir: dir, input_ids: ids }));
  const r = spawnSync(found.python as string, [torchRunnerPath(), "--logits", job], { encoding: "utf8", maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { logits: number[][][] }).logits.flat(2);
}

function torchGreedy(dir: string, prompts: number[][], maxNew: number, eos: number, work: string): number[][] {
  const job = join(work, "generate.json");
  writeFileSync(job, JSON.stringify({ weights_dir: dir, prompts, max_new_tokens: maxNew, eos_token_id: eos, device: "cpu" }));
  const r = spawnSync(found.python as string, [torchRunnerPath(), "--generate", job], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const rows = (JSON.parse(r.stdout) as { tokens: number[][] }).tokens;
  return rows.map((row) => (row.includes(eos) ? row.slice(0, row.indexOf(eos)) : row));
}

describe("torch engine parity with the TF.js trainer (cpu, fp32)", { skip }, () => {
  before(async () => {
    await initEngine({ backend: "cpu" });
  });

  it("20 steps of packed batches (accumulation, clipping, decay, warmup + cosine): same losses; weights load in TF.js with the same logits and greedy tokens", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const extra = {};
      const reference = await tfjsLosses(TINY_CONFIG, packed(4), extra, join(dir, "tfjs"));
      const model = LlamaModel.init(TINY_CONFIG, new Rng(7));
      const result = await trainWithTorch({
        model,
        train: packed(4),
        config: trainConfig(extra),
        outDir: join(dir, "torch"),
        device: "cpu",
        progress: false,
        threads: 1,
      });
      const losses = result.history.map((r) => r.loss);
      const diff = maxDiff(losses, reference);
      process.stderr.write(`torch-engine.test: packed: max |loss diff| over 20 steps ${diff.toExponential(2)}\n`);
      assert.ok(diff < TOL, `losses differ by ${diff}: torch ${losses.slice(-3)} vs tfjs ${reference.slice(-3)}`);
      assert.ok(reference[19]! < reference[0]! - 0.1, "the runs learn something");
      // The trainer's files: checkpoint-20 and metrics.jsonl rows.
      assert.ok(existsSync(join(dir, "torch", "checkpoint-20", "trainer_state.json")));
      assert.ok(existsSync(join(dir, "torch", "checkpoint-20", "optimizer.safetensors")));
      const rows = readFileSync(join(dir, "torch", "metrics.jsonl"), "utf8")
        .trim()
        .split("\n");
      assert.equal(rows.length, 20);
      assert.deepEqual(Object.keys(JSON.parse(rows[0] as string)).sort(), [
        "elapsed_s",
        "epoch",
        "grad_norm",
        "loss",
        "lr",
        "split",
        "step",
        "tokens",
        "tokens_per_s",
      ]);
      // model now holds the torch-trained weights: its logits against the runner's on the same checkpoint.
      const ids = [
        [1, 5, 9, 14, 3, 7, 22, 40],
        [1, 30, 31, 32, 33, 34, 35, 36],
      ];
      const ckpt = join(dir, "torch", "checkpoint-20");
      const ours = tf.tidy(() => Array.from(model.forward(tf.tensor2d(ids, undefined, "int32")).dataSync()));
      const theirs = torchLogits(ckpt, ids, dir);
      const logitDiff = maxDiff(ours, theirs);
      process.stderr.write(`torch-engine.test: max |logit diff| after loading in TF.js ${logitDiff.toExponential(2)}\n`);
      assert.ok(logitDiff < TOL, `logits differ by ${logitDiff}`);
      const prompts = [[1, 5, 9], [1, 30, 31, 32, 33], [1]];
      const tfjsTokens = (await generate(model, prompts, { maxNewTokens: 8, eosTokenId: 2 })).tokens;
      assert.ok(tfjsTokens.flat().length >= 8, `greedy produced tokens: ${JSON.stringify(tfjsTokens)}`);
      assert.deepEqual(torchGreedy(ckpt, prompts, 8, 2, dir), tfjsTokens, "greedy tokens");
      assert.deepEqual(await generateWithTorch(ckpt, prompts, { maxNewTokens: 8, eosTokenId: 2, device: "cpu", workDir: dir }), tfjsTokens);
      // Texts with a stop string, through a toy decoder (one letter per id).
      const decoder = { decode: async (ids: number[]) => ids.map((i) => String.fromCharCode(97 + (i % 26))).join("") };
      const stop = String.fromCharCode(97 + ((tfjsTokens[0]![3] ?? 0) % 26));
      const tfjsTexts = (await generate(model, prompts, { maxNewTokens: 8, eosTokenId: 2, tokenizer: decoder, stopStrings: [stop] })).texts;
      const torchTexts = await generateTextsWithTorch(ckpt, prompts, decoder, {
        maxNewTokens: 8,
        eosTokenId: 2,
        device: "cpu",
        workDir: dir,
        stopStrings: [stop],
      });
      assert.deepEqual(torchTexts.texts, tfjsTexts, "texts cut at the stop string");
      model.dispose();
    } finally {
      await cleanup();
    }
  });

  it("canon_width 4, tied head, isolated documents (segments, padding): same losses for 20 steps", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const extra = { max_length: 24, grad_accum: 1, warmup_steps: 2, clip_norm: 0.5 };
      const reference = await tfjsLosses(CANON_CONFIG, isolated(4), extra, join(dir, "tfjs"));
      const model = LlamaModel.init(CANON_CONFIG, new Rng(7));
      const result = await trainWithTorch({
        model,
        train: isolated(4),
        config: trainConfig(extra),
        outDir: join(dir, "torch"),
        device: "cpu",
        progress: false,
        threads: 1,
      });
      const diff = maxDiff(
        result.history.map((r) => r.loss),
        reference,
      );
      process.stderr.write(`torch-engine.test: canon + segments: max |loss diff| over 20 steps ${diff.toExponential(2)}\n`);
      assert.ok(diff < TOL, `losses differ by ${diff}`);
      // The canon taps moved away from zero, so the convolution was trained, not only carried.
      const taps = model.weight("model.layers.0.self_attn.canon.weight").dataSync();
      assert.ok(Math.max(...Array.from(taps, Math.abs)) > 1e-3, "canon weights trained");
      // Greedy decoding with the canon state in the KV cache, left-padded prompts of different lengths.
      const prompts = [[1, 5, 9], [1, 30, 31, 32, 33, 34], [1]];
      const tfjsTokens = (await generate(model, prompts, { maxNewTokens: 10, eosTokenId: 2 })).tokens;
      const ckpt = join(dir, "torch", "checkpoint-20");
      assert.ok(tfjsTokens.flat().length >= 10, `greedy produced tokens: ${JSON.stringify(tfjsTokens)}`);
      assert.deepEqual(torchGreedy(ckpt, prompts, 10, 2, dir), tfjsTokens, "greedy tokens with canon layers");
      model.dispose();
    } finally {
      await cleanup();
    }
  });

  it("two processes under torch.distributed.run (gloo) give the losses of one process with the whole batch; an interrupt checkpoints", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const extra = { max_length: 24, grad_accum: 2, batch_size: 4 };
      const runs: number[][] = [];
      for (const nproc of [1, 2]) {
        const model = LlamaModel.init(CANON_CONFIG, new Rng(7));
        const result = await trainWithTorch({
          model,
          train: isolated(4),
          config: trainConfig(extra),
          outDir: join(dir, `torch-${nproc}`),
          device: "cpu",
          progress: false,
          threads: 1,
          nproc,
          checkpoints: nproc === 2,
        });
        assert.equal(result.engine.world, nproc);
        runs.push(result.history.map((r) => r.loss));
        model.dispose();
      }
      const diff = maxDiff(runs[1] as number[], runs[0] as number[]);
      process.stderr.write(`torch-engine.test: 2 processes vs 1: max |loss diff| over 20 steps ${diff.toExponential(2)}\n`);
      assert.ok(diff < TOL, `losses differ by ${diff}`);
      // An interrupt under torch.distributed.run: both ranks stop at the same step and rank 0 checkpoints.
      const controller = new AbortController();
      const cut = await trainWithTorch({
        model: LlamaModel.init(CANON_CONFIG, new Rng(7)),
        train: isolated(4),
        config: trainConfig(extra),
        outDir: join(dir, "torch-cut"),
        device: "cpu",
        progress: false,
        threads: 1,
        nproc: 2,
        signal: controller.signal,
        onStep: (r) => {
          if (r.step === 3) controller.abort();
        },
        loadResult: false,
      });
      assert.ok(cut.interrupted && cut.steps < 20, `interrupted (${cut.steps} steps)`);
      assert.ok(existsSync(join(dir, "torch-cut", `checkpoint-${cut.steps}`, "trainer_state.json")));
    } finally {
      await cleanup();
    }
  });

  it("an interrupt checkpoints and stops; --resume continues to the losses of an uninterrupted run", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const cfg = trainConfig({ save_every: 50 });
      const full = await trainWithTorch({
        model: LlamaModel.init(TINY_CONFIG, new Rng(7)),
        train: packed(4),
        config: cfg,
        outDir: join(dir, "full"),
        device: "cpu",
        progress: false,
        threads: 1,
        checkpoints: false,
        loadResult: false,
      });
      const controller = new AbortController();
      const first = await trainWithTorch({
        model: LlamaModel.init(TINY_CONFIG, new Rng(7)),
        train: packed(4),
        config: cfg,
        outDir: join(dir, "cut"),
        device: "cpu",
        progress: false,
        threads: 1,
        signal: controller.signal,
        onStep: (r) => {
          if (r.step === 4) controller.abort();
        },
        loadResult: false,
      });
      assert.ok(first.interrupted, "the run reports the interrupt");
      assert.ok(first.steps >= 4 && first.steps < 20, `stopped early (${first.steps})`);
      assert.ok(first.checkpoint?.endsWith(`checkpoint-${first.steps}`), `checkpoint at the stop: ${first.checkpoint}`);
      const second = await trainWithTorch({
        model: LlamaModel.init(TINY_CONFIG, new Rng(7)),
        train: packed(4),
        config: cfg,
        outDir: join(dir, "cut"),
        device: "cpu",
        progress: false,
        threads: 1,
        resume: true,
        loadResult: false,
      });
      assert.equal(second.resumedFrom, first.checkpoint);
      const resumed = [...first.history, ...second.history].map((r) => r.loss);
      const diff = maxDiff(
        resumed,
        full.history.map((r) => r.loss),
      );
      assert.ok(diff < 1e-6, `resumed losses differ by ${diff}`);
      const rows = readFileSync(join(dir, "cut", "metrics.jsonl"), "utf8")
        .trim()
        .split("\n");
      assert.equal(rows.length, 20, "metrics.jsonl holds each step once");
    } finally {
      await cleanup();
    }
  });

  it("the TF.js trainer resumes a torch checkpoint (same files) and ends on the losses of a TF.js run", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const reference = await tfjsLosses(TINY_CONFIG, packed(4), {}, join(dir, "tfjs"));
      const controller = new AbortController();
      const first = await trainWithTorch({
        model: LlamaModel.init(TINY_CONFIG, new Rng(7)),
        train: packed(4),
        config: trainConfig(),
        outDir: join(dir, "mixed"),
        device: "cpu",
        progress: false,
        threads: 1,
        signal: controller.signal,
        onStep: (r) => {
          if (r.step === 6) controller.abort();
        },
        loadResult: false,
      });
      assert.ok(first.interrupted && first.steps < 20);
      const model = LlamaModel.init(TINY_CONFIG, new Rng(99));
      const rest = await train({
        model,
        params: model.variables,
        train: packed(4),
        config: trainConfig(),
        seed: 0,
        outDir: join(dir, "mixed"),
        ...modelPersistence(model),
        progress: false,
        resume: true,
      });
      assert.equal(rest.resumedFrom, first.checkpoint);
      const diff = maxDiff(
        [...first.history, ...rest.history].map((r) => r.loss),
        reference,
      );
      assert.ok(diff < TOL, `losses differ by ${diff}`);
      model.dispose();
    } finally {
      await cleanup();
    }
  });

  it("trainOn: the study's drop-in for train() — torch with checkpoints off still returns the weights; auto keeps TF.js without CUDA; LoRA is refused on torch", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      // Padded instruction batches, as Study.tune trains them.
      const seqs = Array.from({ length: 24 }, (_, i) => {
        const n = 6 + (i % 9);
        const ids = [1, ...TINY_TOKENS.slice(i * 11, i * 11 + n).map((t) => 3 + (t % 47)), 2];
        return { inputIds: ids.slice(0, -1), labels: ids.slice(1).map((t, j) => (j < 3 ? -100 : t)) };
      });
      const source = () => bucketedBatches(seqs, { batchSize: 4, seed: 9, padId: 0 });
      const cfg = trainConfig({ max_steps: 8, grad_accum: 1, max_length: 32 });
      const losses: number[][] = [];
      const logits: number[][] = [];
      for (const engine of ["tfjs", "torch"] as const) {
        const model = LlamaModel.init(TINY_CONFIG, new Rng(7));
        const result = await trainOn(
          engine,
          {
            model,
            params: model.variables,
            train: source(),
            config: cfg,
            seed: 0,
            outDir: join(dir, engine),
            ...modelPersistence(model),
            progress: false,
            checkpoints: false,
          },
          { device: "cpu", threads: 1 },
        );
        assert.equal("engine" in result, engine === "torch");
        losses.push(result.history.map((r) => r.loss));
        logits.push(tf.tidy(() => Array.from(model.forward(tf.tensor2d([[1, 5, 9, 14]], undefined, "int32")).dataSync())));
        model.dispose();
      }
      assert.ok(maxDiff(losses[1]!, losses[0]!) < TOL, "losses");
      assert.ok(maxDiff(logits[1]!, logits[0]!) < TOL, "the trained weights came back into the model");
      const auto = LlamaModel.init(TINY_CONFIG, new Rng(7));
      const autoResult = await trainOn("auto", {
        model: auto,
        params: auto.variables,
        train: source(),
        config: trainConfig({ max_steps: 2, grad_accum: 1, warmup_steps: 0 }),
        seed: 0,
        outDir: join(dir, "auto"),
        ...modelPersistence(auto),
        progress: false,
        checkpoints: false,
      });
      assert.equal("engine" in autoResult, found.probe?.cuda === true, "auto: torch only with CUDA");
      const lora = LoraAdapters.attach(auto, { rank: 2, alpha: 4, dropout: 0, targets: ["q_proj"] }, new Rng(1));
      await assert.rejects(
        trainOn("torch", {
          model: auto,
          params: lora.params,
          train: source(),
          config: trainConfig({ max_steps: 2, warmup_steps: 0 }),
          seed: 0,
          outDir: join(dir, "lora"),
          ...modelPersistence(auto, lora),
          progress: false,
        }),
        /XA_TORCH_PARTIAL|trains every weight/,
      );
      auto.dispose();
    } finally {
      await cleanup();
    }
  });

  it("an experiment with engine: torch runs end to end (pretraining with validation, then full instruction tuning) with the losses of engine: tfjs", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const words = ["the", "cat", "dog", "sees", "a", "red", "blue", "ball", "house", "runs"];
      const rng = new Rng(11);
      const sentence = () => Array.from({ length: 4 + rng.int(6) }, () => rng.choice(words)).join(" ");
      await writeFile(join(dir, "corpus.txt"), `${Array.from({ length: 200 }, sentence).join("\n")}\n`);
      const records = Array.from({ length: 40 }, () => {
        const x = sentence();
        return { instruction: "Reverse.", input: x, output: x.split(" ").reverse().join(" ") };
      });
      await writeFile(join(dir, "instruct.json"), JSON.stringify(records));
      const yaml = (engine: string) => `name: ${engine}
seed: 5
backend: cpu
engine: ${engine}
${engine === "torch" ? "torch: { device: cpu, threads: 1 }\n" : ""}tokenizer:
  train_on: [corpus.txt]
  vocab_size: 300
model:
  hidden_size: 32
  intermediate_size: 64
  num_hidden_layers: 1
  num_attention_heads: 2
stages:
  - name: pretrain
    objective: causal-lm
    data: [corpus.txt]
    validation_ratio: 0.1
    train: { max_steps: 8, batch_size: 4, max_length: 32, lr: 0.01, warmup_steps: 2, eval_every: 4, eval_batches: 2 }
  - name: instruct
    objective: instruction
    data: [instruct.json]
    validation_ratio: 0
    train: { max_steps: 4, batch_size: 2, max_length: 400, lr: 0.005 }
`;
      const results = [];
      for (const engine of ["tfjs", "torch"]) {
        await writeFile(join(dir, `${engine}.yaml`), yaml(engine));
        const run = await runExperiment(await loadExperiment(join(dir, `${engine}.yaml`)), { progress: false });
        results.push(run.stages.map((s) => s.result!));
        const manifest = JSON.parse(readFileSync(join(dir, "runs", engine, "manifest.json"), "utf8")) as {
          stages: { torch_engine?: { device: string } }[];
        };
        assert.equal(manifest.stages[0]!.torch_engine?.device, engine === "torch" ? "cpu" : undefined);
        assert.ok(existsSync(join(dir, "runs", engine, "instruct", "final", "model.safetensors")));
        run.model.dispose();
      }
      const [tfjs, torch] = results as [(typeof results)[0], (typeof results)[0]];
      for (const i of [0, 1]) {
        const diff = maxDiff(
          torch[i]!.history.map((r) => r.loss),
          tfjs[i]!.history.map((r) => r.loss),
        );
        assert.ok(diff < TOL, `stage ${i}: losses differ by ${diff}`);
      }
      const valDiff = maxDiff(
        torch[0]!.validation.map((v) => v.loss),
        tfjs[0]!.validation.map((v) => v.loss),
      );
      assert.equal(torch[0]!.validation.length, 2);
      assert.ok(valDiff < TOL, `validation losses differ by ${valDiff}`);
    } finally {
      await cleanup();
    }
  });
});
