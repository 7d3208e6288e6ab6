/**
 * `xalign launch` trains the tfjs engine's sequences: the micro-batches it
 * writes (read back by the runner's own reader, python/xalign_torch.py
 * BatchFile) are, row for row, the batches `xalign train` builds for the
 * stage — the same encoding (src/data/encode.ts, TypeScript's tokenizer; Python
 * tokenises nothing), split, seed and length bucketing, with batch_size x
 * GPUs rows — and the same for 2 GPUs x 2 rows as for 1 GPU x 4.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { prepareLaunch } from "../../src/launch/index.js";
import { loadTokenizer } from "../../src/tokenizer/index.js";
import { bucketedBatches } from "../../src/train/batches.js";
import { trainingTokenizer } from "../../src/train/experiment.js";
import { encodeExamples } from "../../src/train/sequences.js";
import { findTorchPython, microBatchSequence, torchRunnerPath } from "../../src/train/torch-engine.js";
import { fixture, tempDir } from "../helpers.js";
import { ROOMY_MODEL, torchExperiment } from "./experiment.js";

const TRAIN = "epochs: 2\n      batch_size: 2\n      grad_accum: 3\n      max_length: 160\n      eval_every: 2\n      eval_batches: 2";

test("the launch's batches file holds the tfjs engine's micro-batches (ids, labels, masks), whatever the GPU count", async (t) => {
  const tmp = await tempDir();
  try {
    await mkdir(join(tmp.dir, "two"));
    await mkdir(join(tmp.dir, "one"));
    const two = await torchExperiment(join(tmp.dir, "two"), {
      n: 60,
      model: ROOMY_MODEL,
      train: TRAIN,
      extra: "launch:\n  gpus_per_node: 2",
    });
    const one = await torchExperiment(join(tmp.dir, "one"), {
      n: 60,
      model: ROOMY_MODEL,
      train: TRAIN.replace("batch_size: 2", "batch_size: 4"),
      extra: "launch:\n  gpus_per_node: 1",
    });
    const { plan } = await prepareLaunch(two);
    const { plan: planOne } = await prepareLaunch(one);
    const stage = plan.stages[0]!;
    assert.deepEqual(readFileSync(stage.batchesFile), readFileSync(planOne.stages[0]!.batchesFile), "2 x 2 rows = 1 x 4 rows");
    assert.deepEqual(readFileSync(stage.validationFile!), readFileSync(planOne.stages[0]!.validationFile!));

    // What the tfjs engine builds for this stage (src/train/experiment.ts stageData) with 4 rows a batch.
    const tok = trainingTokenizer(await loadTokenizer(fixture("spm-bpe", "tokenizer.model")));
    const seqs = await encodeExamples(stage.train, tok, { maxLength: 160, format: "alpaca" });
    // Some records lose their whole response to max_length 160: dropped, as the tfjs engine drops them.
    assert.ok(seqs.some((s) => s.supervisedTokens === 0) && seqs.some((s) => s.supervisedTokens > 0), "the records cover both");
    const source = bucketedBatches(seqs, { batchSize: 4, seed: stage.seed, padId: tok.padId });
    assert.equal(stage.microBatchesPerEpoch, source.batchesPerEpoch, "recounted after encoding");
    const expected = [...microBatchSequence(source, stage.totalSteps, 3)];
    assert.equal(expected.length, stage.totalSteps * 3);

    const found = findTorchPython();
    if (!found.python) return t.skip(`the batches were compared in TypeScript only: ${found.missing}`);
    const script = [
      "import json, sys",
      `sys.path.insert(0, ${JSON.stringify(join(torchRunnerPath(), ".."))})`,
      "from xalign_torch import BatchFile",
      "f = BatchFile(sys.argv[1])",
      "out = []",
      "for i in range(len(f)):",
      "    b = f.get(i)",
      "    out.append({k: b[k].tolist() if hasattr(b[k], 'tolist') else b[k] for k in ('input_ids', 'labels', 'attention_mask', 'supervised_tokens', 'epoch', 'index')})",
      "print(json.dumps(out))",
    ].join("\n");
    const r = spawnSync(found.python, ["-c", script, stage.batchesFile], { encoding: "utf8", maxBuffer: 1 << 28 });
    assert.equal(r.status, 0, r.stderr);
    const read = JSON.parse(r.stdout) as {
      input_ids: number[][];
      labels: number[][];
      attention_mask: number[][];
      supervised_tokens: number;
      epoch: number;
      index: number;
    }[];
    assert.equal(read.length, expected.length);
    read.forEach((b, i) => {
      const { batch, epoch, index } = expected[i]!;
      const rows = (a: Int32Array) =>
        Array.from({ length: batch.batchSize }, (_, r) => Array.from(a.subarray(r * batch.length, (r + 1) * batch.length)));
      assert.deepEqual(b.input_ids, rows(batch.inputIds), `input ids of micro-batch ${i}`);
      assert.deepEqual(b.labels, rows(batch.labels), `labels of micro-batch ${i}`);
      assert.deepEqual(b.attention_mask, rows(batch.attentionMask), `mask of micro-batch ${i}`);
      assert.equal(b.supervised_tokens, batch.supervisedTokens);
      assert.deepEqual([b.epoch, b.index], [epoch, index]);
    });
  } finally {
    await tmp.cleanup();
  }
});
