import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, symlink, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadExperiment } from "../../src/config/load.js";
import { loadCheckpoint } from "../../src/model/checkpoint.js";
import { runExperiment } from "../../src/train/experiment.js";
import { ConfigError, DataError, FileSystemError, TrainingError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { claimRunDir, removeStageForForce } from "../../src/util/run-dir.js";
import { tempDir } from "../helpers.js";

const WORDS = ["the", "cat", "dog", "sees", "a", "red", "blue", "ball", "house", "runs", "to", "big", "small"];

async function writeWorld(dir: string): Promise<void> {
  const rng = new Rng(11);
  const sentence = () => Array.from({ length: 4 + rng.int(6) }, () => rng.choice(WORDS)).join(" ");
  await writeFile(join(dir, "corpus.txt"), `${Array.from({ length: 400 }, sentence).join("\n")}\n`);
  const records = Array.from({ length: 120 }, () => {
    const s = sentence();
    return { instruction: "Repeat the sentence backwards.", input: s, output: s.split(" ").reverse().join(" ") };
  });
  await writeFile(join(dir, "instruct.json"), JSON.stringify(records));
  // The tokenizer also learns the prompt template's words, as a real run's would from its instruction data.
  await writeFile(
    join(dir, "prompts.txt"),
    `${"Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n### Instruction:\nRepeat the sentence backwards.\n### Input:\n### Response:\n".repeat(20)}`,
  );
  await writeFile(
    join(dir, "exp.yaml"),
    `name: e2e
seed: 5
backend: cpu
tokenizer:
  train_on: [corpus.txt, prompts.txt]
  vocab_size: 400
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
    train: { max_steps: 12, batch_size: 4, max_length: 32, lr: 0.01, warmup_steps: 2, eval_every: 6, eval_batches: 2 }
  - name: instruct
    objective: instruction
    data: [instruct.json]
    validation_ratio: 0.1
    train: { max_steps: 6, batch_size: 4, max_length: 160, lr: 0.01, eval_every: 3, lora: { rank: 4, alpha: 8, targets: [q_proj, v_proj] } }
`,
  );
}

describe("experiment runner", () => {
  it("pretrains then LoRA-tunes from a YAML file, writing HF folders, metrics and a manifest", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeWorld(dir);
      const run = await runExperiment(await loadExperiment(join(dir, "exp.yaml")), { progress: false });
      const runDir = join(dir, "runs", "e2e");
      assert.equal(run.stages.length, 2);
      const pre = run.stages[0]!.result!;
      assert.equal(pre.steps, 12);
      assert.equal(pre.validation.length, 2);
      assert.ok(pre.validation[1]!.loss < pre.validation[0]!.loss, `validation loss fell: ${JSON.stringify(pre.validation)}`);
      for (const f of [
        "tokenizer/tokenizer.json",
        "pretrain/final/config.json",
        "pretrain/final/model.safetensors",
        "pretrain/final/tokenizer.json",
        "instruct/final/model.safetensors",
        "instruct/adapter/adapter_config.json",
        "instruct/metrics.jsonl",
        "manifest.json",
      ]) {
        assert.ok(existsSync(join(runDir, f)), f);
      }
      const manifest = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
      assert.equal(manifest.backend, "cpu");
      assert.equal(manifest.stages.length, 2);
      assert.match(manifest.data_sha256["corpus.txt"], /^[0-9a-f]{64}$/);
      const bundle = run[Symbol.for("Jupyter.display") as never] as unknown as () => Record<string, string>;
      assert.match(bundle.call(run)["text/html"]!, /<table>/);
      const final = await loadCheckpoint(join(runDir, "instruct", "final"));
      assert.equal(final.numParameters(), run.model.numParameters());
      final.dispose();
      run.model.dispose();
      // A second run reuses both stages' final folders.
      const again = await runExperiment(await loadExperiment(join(dir, "exp.yaml")), { progress: false });
      assert.deepEqual(
        again.stages.map((s) => s.result),
        [undefined, undefined],
      );
      again.model.dispose();
    } finally {
      await cleanup();
    }
  });

  it("a diverging run (lr 1e3) stops with an error naming the step, and writes no final/", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeWorld(dir);
      await writeFile(
        join(dir, "diverge.yaml"),
        `name: diverge
seed: 5
backend: cpu
tokenizer:
  train_on: [corpus.txt]
  vocab_size: 300
model: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2 }
stages:
  - name: pretrain
    objective: causal-lm
    data: [corpus.txt]
    validation_ratio: 0
    train: { max_steps: 30, batch_size: 4, max_length: 32, lr: 1000, schedule: constant, save_every: 1 }
`,
      );
      await assert.rejects(
        runExperiment(await loadExperiment(join(dir, "diverge.yaml")), { progress: false }),
        (err: unknown) =>
          err instanceof TrainingError && /diverged at step \d+/.test(err.message) && /checkpoint-\d+|none/.test(err.message),
      );
      assert.equal(existsSync(join(dir, "runs", "diverge", "pretrain", "final")), false);
    } finally {
      await cleanup();
    }
  });

  it("--force deletes only stage folders inside a run folder this tool created", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeWorld(dir);
      // Someone else's folder that happens to sit where the run would go.
      const victim = join(dir, "runs", "e2e", "pretrain");
      await mkdir(victim, { recursive: true });
      await writeFile(join(victim, "thesis.tex"), "precious");
      await assert.rejects(
        runExperiment(await loadExperiment(join(dir, "exp.yaml")), { progress: false, force: true }),
        (err: unknown) => err instanceof ConfigError && err.code === "XA_FORCE_NOT_OURS" && /not created by xalign/.test(err.message),
      );
      assert.equal(readFileSync(join(victim, "thesis.tex"), "utf8"), "precious");
      // A run folder xalign created carries the marker, and --force may clear its stages.
      const own = join(dir, "runs", "mine");
      await claimRunDir(own);
      await mkdir(join(own, "pretrain"));
      await removeStageForForce(own, join(own, "pretrain"));
      assert.equal(existsSync(join(own, "pretrain")), false);
      await assert.rejects(removeStageForForce(own, join(dir, "runs")), /not inside the run folder/);
    } finally {
      await cleanup();
    }
  });

  it("file-system failures are clear errors: output under a file, a full disk, a data file gone from a finished stage", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeWorld(dir);
      const yaml = (output: string) => `name: fs
seed: 5
backend: cpu
output: ${output}
tokenizer:
  train_on: [corpus.txt]
  vocab_size: 300
model: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2 }
stages:
  - name: pretrain
    objective: causal-lm
    data: [corpus.txt]
    validation_ratio: 0
    train: { max_steps: 2, batch_size: 4, max_length: 32, lr: 0.01 }
`;
      // The output folder is a file.
      await writeFile(join(dir, "blocker"), "not a folder");
      await writeFile(join(dir, "blocked.yaml"), yaml("blocker"));
      await assert.rejects(
        runExperiment(await loadExperiment(join(dir, "blocked.yaml")), { progress: false }),
        (err: unknown) => err instanceof FileSystemError && err.code === "XA_FS_ENOTDIR" && /blocker/.test(err.message),
      );
      // A full disk: metrics.jsonl is /dev/full, where every write fails with ENOSPC.
      await writeFile(join(dir, "fs.yaml"), yaml("runs"));
      const stageDir = join(dir, "runs", "fs", "pretrain");
      await mkdir(stageDir, { recursive: true });
      await symlink("/dev/full", join(stageDir, "metrics.jsonl"));
      await assert.rejects(
        runExperiment(await loadExperiment(join(dir, "fs.yaml")), { progress: false }),
        (err: unknown) =>
          err instanceof FileSystemError &&
          err.code === "XA_FS_ENOSPC" &&
          err.file === join(stageDir, "metrics.jsonl") &&
          /no space left/.test(err.message) &&
          /--resume/.test(err.message),
      );
      await unlink(join(stageDir, "metrics.jsonl"));
      const done = await runExperiment(await loadExperiment(join(dir, "fs.yaml")), { progress: false });
      done.model.dispose();
      // The manifest records the resolved path of each data file.
      const manifest = JSON.parse(readFileSync(done.manifestPath, "utf8")) as { data_paths: Record<string, string> };
      assert.deepEqual(manifest.data_paths, { "corpus.txt": join(dir, "corpus.txt") });
      // The stage is finished; its data file goes away.
      await rename(join(dir, "corpus.txt"), join(dir, "corpus.moved"));
      await assert.rejects(
        runExperiment(await loadExperiment(join(dir, "fs.yaml")), { progress: false }),
        (err: unknown) =>
          err instanceof DataError &&
          err.code === "XA_DATA_MISSING" &&
          err.field === "stages[0].data" &&
          err.message.includes(join(dir, "corpus.txt")),
      );
    } finally {
      await cleanup();
    }
  });
});
