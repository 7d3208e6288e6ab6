/**
 * End to end where PyTorch is installed: a tiny LLaMA trained by
 * python/xalign_train.py through torchrun (one process; FSDP on a GPU, plain
 * on CPU), launched and monitored by xalign; the loss must fall and the saved
 * final/ folder must load in xalign with the logits transformers computes.
 * Without torch + transformers + accelerate + tokenizers it skips and says which is missing.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import { launch } from "../../src/launch/index.js";
import { loadCheckpoint } from "../../src/model/index.js";
import { tempDir } from "../helpers.js";
import { torchExperiment } from "./experiment.js";
import { findPython } from "./python.js";

const IDS = [1, 5, 9, 17, 33, 2];

test("tiny LLaMA through torchrun: loss falls, final/ reloads in xalign with matching logits", { timeout: 600_000 }, async (t) => {
  const { python, missing } = findPython(["torch", "transformers", "accelerate", "tokenizers"]);
  if (!python) return t.skip(`skipped: the PyTorch side is not installed here: ${missing}; pip install -r python/requirements.txt`);
  const cuda = spawnSync(python, ["-c", "import torch; print(torch.cuda.is_available())"], { encoding: "utf8" }).stdout.trim() === "True";
  const tmp = await tempDir();
  try {
    const exp = await torchExperiment(tmp.dir, {
      n: 64,
      stage: "    validation_ratio: 0",
      train: "max_steps: 40\n      batch_size: 8\n      lr: 0.003\n      warmup_steps: 2\n      max_length: 64\n      log_every: 1",
      extra: `launch:\n  gpus_per_node: 1\n  bf16: false\n  fsdp: "${cuda ? "full_shard auto_wrap" : ""}"`,
    });
    const run = await launch(exp, {
      progress: false,
      signal: new AbortController().signal,
      wrapCommand: (argv) => [python, "-m", "torch.distributed.run", ...argv.slice(1)],
    });
    const stage = run.stages[0]!;
    const losses = (await readFile(stage.metricsFile, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { split: string; loss: number })
      .filter((r) => r.split === "train")
      .map((r) => r.loss);
    assert.ok(losses.length >= 30, `metrics streamed (${losses.length} train records)`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(losses.slice(-5)) < mean(losses.slice(0, 5)) * 0.8, `loss falls: ${losses.slice(0, 5)} ... ${losses.slice(-5)}`);

    const reference = spawnSync(
      python,
      [
        "-c",
        "import json,sys,torch; from transformers import LlamaForCausalLM; m=LlamaForCausalLM.from_pretrained(sys.argv[1]).eval(); " +
          "print(json.dumps(m(torch.tensor([json.loads(sys.argv[2])])).logits[0].tolist()))",
        stage.finalDir,
        JSON.stringify(IDS),
      ],
      { encoding: "utf8" },
    );
    assert.equal(reference.status, 0, reference.stderr);
    const expected = JSON.parse(reference.stdout) as number[][];
    await initEngine({ backend: "cpu" });
    const model = await loadCheckpoint(stage.finalDir);
    try {
      const logits = tf.tidy(() => model.forward(tf.tensor2d([IDS], [1, IDS.length], "int32")).squeeze([0]));
      const got = (await logits.array()) as number[][];
      logits.dispose();
      let worst = 0;
      got.forEach((row, i) => {
        row.forEach((v, j) => {
          worst = Math.max(worst, Math.abs(v - expected[i]![j]!));
        });
      });
      assert.ok(worst < 1e-3, `xalign and transformers logits differ by ${worst}`);
    } finally {
      model.dispose();
    }
  } finally {
    await tmp.cleanup();
  }
});
