import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine, nativeStatus } from "../../src/engine/index.js";
import {
  generate,
  KvCache,
  type LlamaConfig,
  type LlamaModel,
  loadCheckpoint,
  maskPositions,
  NativeDecoder,
} from "../../src/model/index.js";
import { fixture } from "../helpers.js";
import { randomModel } from "./random-model.js";

const status = nativeStatus();
const skip = status.available ? false : `native decoding needs the addon, which is off here: ${status.reason}`;
if (status.available) await initEngine({ backend: "wasm" });

const gqa: LlamaConfig = {
  hidden_size: 48,
  intermediate_size: 80,
  num_hidden_layers: 3,
  num_attention_heads: 6,
  num_key_value_heads: 2,
  vocab_size: 97,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 64,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
};

const prompts = [
  [1, 10, 11, 12, 13, 14, 15, 16, 17],
  [1, 20],
  [1, 30, 31, 32, 33],
  [1, 40, 41],
];

/** Greedy tokens of both paths, asserting that the native one ran (the per-op one is forced with native: false). */
async function bothPaths(model: LlamaModel, batch: number[][], maxNewTokens: number, eos: number[] = []) {
  assert.equal(NativeDecoder.unsupported(model), undefined, "native decoding is available for this model");
  const native = await generate(model, batch, { maxNewTokens, eosTokenId: eos });
  const perOp = await generate(model, batch, { maxNewTokens, eosTokenId: eos, native: false });
  return { native, perOp };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/**
 * Prefill then `steps` greedy steps through NativeDecoder and through the per-op forward with a KvCache,
 * on left-padded `batch`; returns the largest logit difference of each step.
 */
function logitDifferences(model: LlamaModel, batch: number[][], steps: number, chunk?: number): number[] {
  const cfg = model.config;
  const width = Math.max(...batch.map((p) => p.length));
  let masks = batch.map((p) => [...new Array(width - p.length).fill(0), ...p.map(() => 1)]);
  let input = batch.map((p) => [...new Array(width - p.length).fill(0), ...p]);
  const plan = model.inferenceWeights();
  const decoder = NativeDecoder.open(model, plan, batch.length, width + steps, { chunk }) as NativeDecoder;
  assert.ok(decoder, "a native decoder opens");
  const cache = new KvCache(cfg.num_hidden_layers);
  const diffs: number[] = [];
  try {
    for (let s = 0; s <= steps; s++) {
      const t = input[0]!.length;
      const native = decoder.step(
        input,
        masks.map((m) => maskPositions(m, t)),
        masks.map((m) => m.slice(m.length - t)),
      );
      const reference = tf.tidy(() => {
        const ids = tf.tensor2d(input, [batch.length, t], "int32");
        return model.forward(ids, { attentionMask: masks, cache, logits: "last", inferenceWeights: plan }).dataSync() as Float32Array;
      });
      diffs.push(maxAbsDiff(native, reference));
      assert.equal(decoder.length, cache.length, "both caches hold the same positions");
      // Feed each row's per-op argmax to both, so the steps stay comparable even if a near-tie differed.
      input = batch.map((_, b) => {
        const row = reference.subarray(b * cfg.vocab_size, (b + 1) * cfg.vocab_size);
        return [row.indexOf(Math.max(...row))];
      });
      masks = masks.map((m) => [...m, 1]);
    }
  } finally {
    decoder.dispose();
    cache.dispose();
  }
  return diffs;
}

describe("native decoding", { skip }, () => {
  it("the fixture model: greedy tokens equal the per-op path's, and logits agree within 1e-4", async () => {
    const model = await loadCheckpoint(fixture("tiny-llama"));
    after(() => model.dispose());
    const batch = [
      [1, 100, 101, 102],
      [1, 7],
    ];
    const { native, perOp } = await bothPaths(model, batch, 10);
    assert.deepEqual(native.tokens, perOp.tokens);
    assert.ok(native.tokens.every((row) => row.length === 10));
    for (const d of logitDifferences(model, batch, 4)) assert.ok(d < 1e-4, `logit difference ${d}`);
  });

  for (const canonWidth of [0, 4]) {
    for (const tied of [true, false]) {
      const cfg: LlamaConfig = { ...gqa, tie_word_embeddings: tied, ...(canonWidth ? { canon_width: canonWidth } : {}) };
      const name = `GQA (6 heads, 2 kv heads), ${tied ? "tied" : "untied"} head, canon_width ${canonWidth}`;

      it(`${name}: greedy tokens of left-padded prompts equal the per-op path's`, async () => {
        const model = randomModel(cfg, 7 + canonWidth);
        after(() => model.dispose());
        const { native, perOp } = await bothPaths(model, prompts, 16);
        assert.deepEqual(native.tokens, perOp.tokens);
        assert.ok(new Set(native.tokens.flat()).size > 3, "the continuations are not a constant token");
      });

      it(`${name}: each left-padded row gives what it gives alone`, async () => {
        const model = randomModel(cfg, 11 + canonWidth);
        after(() => model.dispose());
        const batched = await generate(model, prompts, { maxNewTokens: 12, eosTokenId: [] });
        for (const [i, p] of prompts.entries()) {
          const alone = await generate(model, [p], { maxNewTokens: 12, eosTokenId: [] });
          assert.deepEqual(batched.tokens[i], alone.tokens[0], `prompt ${i}`);
        }
      });

      it(`${name}: logits agree with the per-op path within 1e-4 for prefill and 4 steps`, () => {
        const model = randomModel(cfg, 13 + canonWidth);
        after(() => model.dispose());
        const diffs = logitDifferences(model, prompts, 4);
        assert.equal(diffs.length, 5);
        for (const d of diffs) assert.ok(d < 1e-4, `logit differences ${diffs}`);
      });
    }
  }

  it("prefill in passes of a few positions (rows split, padding skipped) agrees with the per-op path within 1e-4", () => {
    const model = randomModel({ ...gqa, canon_width: 4 }, 29);
    after(() => model.dispose());
    // chunk 3: the 9-token row runs in three pieces, the short rows share passes with pieces of others.
    for (const chunk of [1, 3, 7]) {
      const diffs = logitDifferences(model, prompts, 3, chunk);
      for (const d of diffs) assert.ok(d < 1e-4, `chunk ${chunk}: logit differences ${diffs}`);
    }
  });

  it("prompts with shared prefixes (computed once in the prefill) agree with the per-op path and give their one-at-a-time tokens", async () => {
    const model = randomModel({ ...gqa, canon_width: 4 }, 33);
    after(() => model.dispose());
    const template = [1, 50, 51, 52, 53, 54, 55, 56, 57, 58];
    const shared = [
      [...template, 60, 61, 62, 63, 80, 81], // computes everything
      [...template, 70, 71, 82], // the template from row 0
      [...template, 70, 71, 83, 84, 85], // 12 tokens from row 1, whose first 10 are row 0's (the canon window spans both)
      [1, 90, 91], // shares only BOS: computes everything
      [...template, 60, 61, 62, 63, 80, 81], // row 0 again: computes only its last position
      template, // all but its last token from row 0
    ];
    for (const chunk of [undefined, 3, 7]) {
      const diffs = logitDifferences(model, shared, 4, chunk);
      for (const d of diffs) assert.ok(d < 1e-4, `chunk ${chunk}: logit differences ${diffs}`);
    }
    const batched = await generate(model, shared, { maxNewTokens: 10, eosTokenId: [] });
    assert.deepEqual(batched.tokens[4], batched.tokens[0]);
    for (const [i, p] of shared.entries()) {
      const alone = await generate(model, [p], { maxNewTokens: 10, eosTokenId: [], native: false });
      assert.deepEqual(batched.tokens[i], alone.tokens[0], `prompt ${i}`);
    }
  });

  it("batch 128 with rows stopping at EOS (compacted out) gives each prompt's one-at-a-time per-op tokens", async () => {
    const model = randomModel({ ...gqa, canon_width: 4 }, 31);
    after(() => model.dispose());
    let seed = 5;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed;
    };
    const batch = Array.from({ length: 128 }, () => [1, ...Array.from({ length: 1 + (next() % 24) }, () => 3 + (next() % 90))]);
    const maxNewTokens = 8;
    const free = await generate(model, batch, { maxNewTokens, eosTokenId: [] });
    // The EOS: the token most rows produce within their first three, so many rows stop early and others run on.
    const counts = new Map<number, number>();
    for (const row of free.tokens) for (const t of new Set(row.slice(0, 3))) counts.set(t, (counts.get(t) ?? 0) + 1);
    const eos = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
    const batched = await generate(model, batch, { maxNewTokens, eosTokenId: [eos] });
    const stopped = batched.finishReasons.filter((r) => r === "eos").length;
    assert.ok(stopped > 8 && stopped < 120, `${stopped} of 128 rows stop at the EOS`);
    for (const [i, p] of batch.entries()) {
      const alone = await generate(model, [p], { maxNewTokens, eosTokenId: [eos], native: false });
      assert.deepEqual(batched.tokens[i], alone.tokens[0], `prompt ${i}`);
      assert.equal(batched.finishReasons[i], alone.finishReasons[0], `prompt ${i}`);
    }
  });

  it("rows that stop at EOS leave the native batch, and the others go on as on the per-op path", async () => {
    const model = randomModel({ ...gqa, canon_width: 4 }, 21);
    after(() => model.dispose());
    const free = await generate(model, prompts, { maxNewTokens: 14, eosTokenId: [] });
    // An EOS that one row meets early (its third token) and that some other row never meets.
    const eos = free.tokens[0]![2]!;
    assert.ok(
      free.tokens.some((row) => !row.includes(eos)),
      "the chosen EOS leaves some row running",
    );
    const { native, perOp } = await bothPaths(model, prompts, 14, [eos]);
    assert.deepEqual(native.tokens, perOp.tokens);
    assert.deepEqual(native.finishReasons, perOp.finishReasons);
    assert.equal(native.finishReasons[0], "eos");
    assert.ok(native.finishReasons.includes("length"));
  });

  it("sampling with a seed draws the same tokens as the per-op path", async () => {
    const model = randomModel(gqa, 23);
    after(() => model.dispose());
    const options = { maxNewTokens: 12, eosTokenId: [], doSample: true, temperature: 0.9, topK: 20, topP: 0.95, seed: 5 };
    const native = await generate(model, prompts, options);
    const perOp = await generate(model, prompts, { ...options, native: false });
    assert.deepEqual(native.tokens, perOp.tokens);
  });

  it("rejects out-of-vocabulary ids, overfull sessions and use after dispose", () => {
    const model = randomModel(gqa, 25);
    after(() => model.dispose());
    const decoder = NativeDecoder.open(model, model.inferenceWeights(), 1, 3) as NativeDecoder;
    assert.throws(() => decoder.step([[gqa.vocab_size]], [[0]], [[1]]), /outside the vocabulary/);
    assert.throws(() => decoder.step([[1, 2, 3, 4]], [[0, 1, 2, 3]], [[1, 1, 1, 1]]), /capacity/);
    assert.equal(decoder.step([[1, 2, 3]], [[0, 1, 2]], [[1, 1, 1]]).length, gqa.vocab_size);
    assert.throws(() => decoder.step([[4]], [[3]], [[1]]), /capacity/);
    decoder.dispose();
    assert.throws(() => decoder.step([[4]], [[0]], [[1]]), /after dispose/);
  });

  it("models with adapters decode on the per-op path", () => {
    const model = randomModel(gqa, 27);
    after(() => model.dispose());
    model.setAdapter("model.layers.0.self_attn.q_proj", (x) => tf.zeros([x.shape[0], gqa.hidden_size]) as tf.Tensor2D);
    assert.match(NativeDecoder.unsupported(model) ?? "", /adapters/);
    assert.equal(NativeDecoder.open(model, model.inferenceWeights(), 1, 4), undefined);
  });
});
