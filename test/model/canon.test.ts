import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import { loadCheckpoint, saveCheckpoint } from "../../src/model/checkpoint.js";
import { configFromJson, configToJson, generate, type LlamaConfig, LlamaModel } from "../../src/model/index.js";
import { KvCache } from "../../src/model/kvcache.js";
import { Rng } from "../../src/util/rng.js";
import { tempDir } from "../helpers.js";
import { randomModel } from "./random-model.js";

await initEngine({ backend: "cpu" });

const plain: LlamaConfig = {
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 50,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 64,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
};
const canon: LlamaConfig = { ...plain, canon_width: 4 };
const CANON_WEIGHT = "model.layers.1.self_attn.canon.weight";

/** A canon model with non-zero convolution taps. */
const canonModel = (seed = 3): LlamaModel => randomModel(canon, seed);

function logitsOf(model: LlamaModel, ids: number[][]): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d(ids, undefined, "int32")).dataSync() as Float32Array);
}

describe("canon convolution", () => {
  it("config: canon_width round-trips through config.json and bad values name the field", () => {
    assert.equal(configFromJson(configToJson(canon)).canon_width, 4);
    assert.equal(configFromJson(configToJson(plain)).canon_width, undefined);
    assert.throws(() => configFromJson({ ...configToJson(plain), canon_width: 2.5 }), /canon_width must be an integer/);
  });

  it("starts as the identity: a fresh canon model computes the plain model's logits", () => {
    const a = LlamaModel.init(plain, new Rng(5), { initializerRange: 0.3 });
    const b = LlamaModel.init(canon, new Rng(5), { initializerRange: 0.3 });
    assert.deepEqual(
      tf.tidy(() =>
        b
          .weight(CANON_WEIGHT)
          .dataSync()
          .every((x) => x === 0),
      ),
      true,
    );
    const ids = [[1, 7, 9, 11, 13]];
    assert.deepEqual(logitsOf(b, ids), logitsOf(a, ids));
    a.dispose();
    b.dispose();
  });

  it("is causal and mixes only the previous width-1 positions", () => {
    const model = canonModel();
    const base = logitsOf(model, [[1, 7, 9, 11, 13, 15]]);
    const changed = logitsOf(model, [[1, 7, 9, 11, 13, 16]]);
    const v = canon.vocab_size;
    assert.deepEqual(changed.subarray(0, 5 * v), base.subarray(0, 5 * v), "earlier positions do not see a later token");
    assert.notDeepEqual(changed.subarray(5 * v), base.subarray(5 * v));
    model.dispose();
  });

  it("its gradient matches central finite differences", () => {
    const model = canonModel(7);
    const ids = tf.tensor2d([[1, 5, 9, 13, 17, 21, 25]], undefined, "int32");
    const labels = tf.tensor2d([[5, 9, 13, 17, 21, 25, 29]], undefined, "int32");
    const v = model.weight(CANON_WEIGHT);
    const { grads } = tf.variableGrads(() => model.loss(ids, labels), [v]);
    const g = grads[v.name]?.dataSync() as Float32Array;
    const original = v.dataSync().slice();
    const h = 1e-2;
    for (const i of [0, 5, 33, 70, 127]) {
      const at = (delta: number) => {
        const w = original.slice();
        w[i] = (w[i] as number) + delta;
        v.assign(tf.tensor2d(w, v.shape as [number, number]));
        return tf.tidy(() => model.loss(ids, labels).dataSync()[0] as number);
      };
      const numeric = (at(h) - at(-h)) / (2 * h);
      assert.ok(Math.abs(numeric - (g[i] as number)) < 2e-3 + 2e-2 * Math.abs(numeric), `tap ${i}: ${numeric} vs ${g[i]}`);
    }
    model.dispose();
  });

  it("a KV cache carries the convolution's inputs: cached decoding equals full recomputation", () => {
    const model = canonModel(9);
    const prompt = [1, 10, 11, 12, 13];
    const cache = new KvCache(canon.num_hidden_layers);
    const seq = [...prompt];
    const cached: number[] = [];
    let step = tf.tidy(() => model.forward(tf.tensor2d([seq], undefined, "int32"), { cache, logits: "last" }));
    for (let i = 0; i < 6; i++) {
      const next = tf.tidy(() => tf.argMax(step, -1).dataSync()[0] as number);
      step.dispose();
      cached.push(next);
      seq.push(next);
      step = tf.tidy(() => model.forward(tf.tensor2d([[next]], undefined, "int32"), { cache, logits: "last" }));
    }
    step.dispose();
    cache.dispose();
    const full: number[] = [];
    const again = [...prompt];
    for (let i = 0; i < 6; i++) {
      const logits = logitsOf(model, [again]);
      const last = logits.subarray((again.length - 1) * canon.vocab_size);
      const next = last.indexOf(Math.max(...last));
      full.push(next);
      again.push(next);
    }
    assert.deepEqual(cached, full);
    model.dispose();
  });

  it("batched left-padded generation equals one prompt at a time", async () => {
    const model = canonModel(11);
    const prompts = [
      [1, 10, 11, 12, 13, 14, 15],
      [1, 20],
      [1, 30, 31, 32],
    ];
    const batched = await generate(model, prompts, { maxNewTokens: 8, eosTokenId: [], padTokenId: 0 });
    for (const [i, p] of prompts.entries()) {
      const one = await generate(model, [p], { maxNewTokens: 8, eosTokenId: [], padTokenId: 0 });
      assert.deepEqual(batched.tokens[i], one.tokens[0], `prompt ${i}`);
    }
    model.dispose();
  });

  it("segments isolate packed documents: each gets the logits it gets alone", () => {
    const model = canonModel(17);
    const a = [1, 4, 8, 15, 16];
    const b = [1, 23, 42, 7];
    const row = [...a, ...b, 0, 0, 0];
    const segments = Int32Array.from([1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0]);
    const v = canon.vocab_size;
    const packed = tf.tidy(() => model.forward(tf.tensor2d([row], undefined, "int32"), { segments }).dataSync() as Float32Array);
    const close = (x: Float32Array, y: Float32Array) => x.every((e, i) => Math.abs(e - (y[i] as number)) < 1e-4);
    assert.ok(close(packed.subarray(0, a.length * v), logitsOf(model, [a])), "first document");
    assert.ok(close(packed.subarray(a.length * v, (a.length + b.length) * v), logitsOf(model, [b])), "second document");
    assert.throws(
      () => model.forward(tf.tensor2d([row], undefined, "int32"), { segments: segments.subarray(1) }),
      /segments need 12 entries/,
    );
    const leaky = tf.tidy(() => model.forward(tf.tensor2d([row], undefined, "int32")).dataSync() as Float32Array);
    assert.ok(!close(leaky.subarray(a.length * v, (a.length + b.length) * v), logitsOf(model, [b])), "without segments it attends across");
    model.dispose();
  });

  it("saves and loads with the checkpoint (config field and the per-layer weights)", async () => {
    const model = canonModel(13);
    const { dir, cleanup } = await tempDir();
    try {
      await saveCheckpoint(model, dir);
      const back = await loadCheckpoint(dir);
      assert.equal(back.config.canon_width, 4);
      const ids = [[1, 4, 8, 15, 16, 23, 42]];
      assert.deepEqual(logitsOf(back, ids), logitsOf(model, ids));
      back.dispose();
    } finally {
      model.dispose();
      await cleanup();
    }
  });
});
