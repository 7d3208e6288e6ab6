import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import { AdamW, clipByGlobalNorm } from "../../src/train/adamw.js";
import { bucketedBatches, packedBatches } from "../../src/train/batches.js";
import { learningRate, warmupStepsFrom } from "../../src/train/schedule.js";

before(async () => {
  await initEngine({ backend: "cpu" });
});

describe("learning-rate schedules (HF Trainer's definitions)", () => {
  const s = { peak: 1, warmupSteps: 10, totalSteps: 110 };
  it("warms up linearly from 0", () => {
    assert.equal(learningRate({ ...s, kind: "cosine" }, 0), 0);
    assert.equal(learningRate({ ...s, kind: "cosine" }, 5), 0.5);
  });
  it("cosine: peak after warmup, half way at the middle, 0 at the end", () => {
    assert.equal(learningRate({ ...s, kind: "cosine" }, 10), 1);
    assert.ok(Math.abs(learningRate({ ...s, kind: "cosine" }, 60) - 0.5) < 1e-12);
    assert.ok(learningRate({ ...s, kind: "cosine" }, 110) < 1e-12);
  });
  it("linear decays to 0; constant stays", () => {
    assert.equal(learningRate({ ...s, kind: "linear" }, 60), 0.5);
    assert.equal(learningRate({ ...s, kind: "constant" }, 100), 1);
  });
  it("warmup ratio rounds up as HF does", () => {
    assert.equal(warmupStepsFrom(1218, { ratio: 0.03 }), 37);
    assert.equal(warmupStepsFrom(100, { steps: 7 }), 7);
  });
});

describe("AdamW", () => {
  it("matches the update rule of torch.optim.AdamW computed by hand", () => {
    const p = tf.variable(tf.tensor1d([1, -2]), true, "w");
    const opt = new AdamW({ beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, decay: () => true });
    const params = new Map([["w", p]]);
    // Reference in plain numbers.
    let ref = [1, -2];
    const m = [0, 0];
    const v = [0, 0];
    const gradsSeq = [
      [0.5, -1],
      [0.25, 2],
      [-1, 0.5],
    ];
    gradsSeq.forEach((g, i) => {
      const t = i + 1;
      const lr = 0.01;
      ref = ref.map((x, j) => {
        m[j] = 0.9 * (m[j] as number) + 0.1 * (g[j] as number);
        v[j] = 0.999 * (v[j] as number) + 0.001 * (g[j] as number) ** 2;
        const mh = (m[j] as number) / (1 - 0.9 ** t);
        const vh = (v[j] as number) / (1 - 0.999 ** t);
        return x - lr * x * 0.1 - (lr * mh) / (Math.sqrt(vh) + 1e-8);
      });
      const grad = tf.tensor1d(g);
      opt.apply(params, { w: grad }, lr);
      grad.dispose();
    });
    const got = Array.from(p.dataSync());
    for (const [j, x] of got.entries()) assert.ok(Math.abs(x - (ref[j] as number)) < 1e-6, `${x} vs ${ref[j]}`);
    opt.dispose();
    p.dispose();
  });

  it("excludes norms and embeddings from decay by default, and saves/restores its state", async () => {
    const a = tf.variable(tf.tensor1d([1]), true, "model.norm.weight");
    const opt = new AdamW({ weightDecay: 0.5 });
    const g = tf.tensor1d([0]);
    opt.apply(new Map([["model.norm.weight", a]]), { "model.norm.weight": g }, 0.1);
    assert.equal(a.dataSync()[0], 1, "no decay on a norm weight with zero gradient");
    const state = await opt.getState();
    const opt2 = new AdamW({ weightDecay: 0.5 });
    opt2.setState(state);
    assert.equal(opt2.step, 1);
    assert.deepEqual(Array.from((await opt2.getState()).moments["model.norm.weight"]!.v), [0]);
    for (const t of [a, g]) t.dispose();
    opt.dispose();
    opt2.dispose();
  });

  it("clips by global norm", () => {
    const grads = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
    const { norm, grads: clipped } = clipByGlobalNorm(grads, 1);
    assert.equal(norm, 5);
    const total = Math.hypot(...clipped.a!.dataSync(), ...clipped.b!.dataSync());
    assert.ok(Math.abs(total - 1) < 1e-5);
    for (const t of Object.values(clipped)) t.dispose();
  });
});

describe("batches", () => {
  it("packs a stream into shifted windows, in an order fixed by seed and epoch", () => {
    const tokens = Array.from({ length: 41 }, (_, i) => i);
    const src = packedBatches(tokens, { maxLength: 4, batchSize: 2, seed: 1 });
    assert.equal(src.batchesPerEpoch, 5);
    const b = src.epoch(0)[0]!;
    for (let r = 0; r < 2; r++) {
      for (let t = 0; t < 4; t++) assert.equal(b.labels[r * 4 + t], (b.inputIds[r * 4 + t] as number) + 1);
    }
    const again = packedBatches(tokens, { maxLength: 4, batchSize: 2, seed: 1 }).epoch(1);
    assert.deepEqual(
      again.map((x) => Array.from(x.inputIds)),
      src.epoch(1).map((x) => Array.from(x.inputIds)),
    );
    assert.notDeepEqual(
      src.epoch(0).map((x) => Array.from(x.inputIds)),
      src.epoch(1).map((x) => Array.from(x.inputIds)),
    );
  });

  it("pads instruction batches with -100 labels and a zero mask", () => {
    const seqs = Array.from({ length: 8 }, (_, i) => ({ inputIds: Array(2 + i).fill(5), labels: [...Array(1 + i).fill(-100), 7] }));
    const src = bucketedBatches(seqs, { batchSize: 4, seed: 3, padId: 0 });
    assert.equal(src.batchesPerEpoch, 2);
    for (const b of src.epoch(0)) {
      assert.equal(b.supervisedTokens, 4);
      for (let i = 0; i < b.inputIds.length; i++) if (b.attentionMask[i] === 0) assert.equal(b.labels[i], -100);
    }
  });
});
