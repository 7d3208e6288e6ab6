import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import { chooseToken, generate, type LlamaConfig, LlamaModel } from "../../src/model/index.js";
import { Rng } from "../../src/util/rng.js";

await initEngine({ backend: "cpu" });

const cfg: LlamaConfig = {
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
  pad_token_id: null,
};

/** Greedy decoding by recomputing the full sequence every step: the reference for the cached path. */
function greedyWithoutCache(model: LlamaModel, prompt: number[], steps: number): number[] {
  const seq = [...prompt];
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const next = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d([seq], [1, seq.length], "int32"));
      return tf.argMax(tf.slice(logits, [0, seq.length - 1, 0], [1, 1, cfg.vocab_size]), -1).dataSync()[0] as number;
    });
    out.push(next);
    seq.push(next);
  }
  return out;
}

describe("generate", () => {
  const model = LlamaModel.init(cfg, new Rng(4), { initializerRange: 0.3 });
  const prompts = [
    [1, 10, 11, 12, 13, 14, 15],
    [1, 20],
    [1, 30, 31, 32],
  ];

  it("greedy cached decoding equals recomputing the full sequence, for a batch of different lengths", async () => {
    await generate(model, prompts, { maxNewTokens: 2 }); // builds the model's cached inference weights
    const before = tf.memory().numTensors;
    const out = await generate(model, prompts, { maxNewTokens: 12, eosTokenId: [] });
    assert.equal(tf.memory().numTensors, before, "generate leaks no tensors");
    for (const [i, prompt] of prompts.entries()) {
      assert.deepEqual(out.tokens[i], greedyWithoutCache(model, prompt, 12), `prompt ${i}`);
      assert.equal(out.finishReasons[i], "length");
    }
    assert.equal(out.texts, undefined);
  });

  it("stops at EOS and at stop strings", async () => {
    const free = await generate(model, [prompts[0]!], { maxNewTokens: 12, eosTokenId: [] });
    const third = free.tokens[0]![2]!;
    const stopped = await generate(model, [prompts[0]!], { maxNewTokens: 12, eosTokenId: third });
    const firstAt = free.tokens[0]!.indexOf(third);
    assert.deepEqual(stopped.tokens[0], free.tokens[0]!.slice(0, firstAt));
    assert.equal(stopped.finishReasons[0], "eos");
    const tokenizer = { decode: async (ids: number[]) => ids.map((i) => `<${i}>`).join("") };
    const stopAt = `<${free.tokens[0]![4]}>`;
    const byString = await generate(model, [prompts[0]!], { maxNewTokens: 12, eosTokenId: [], tokenizer, stopStrings: [stopAt] });
    assert.equal(byString.finishReasons[0], "stop");
    const text = byString.texts![0]!;
    assert.ok(!text.includes(stopAt));
    assert.ok(
      free.tokens[0]!.map((i) => `<${i}>`)
        .join("")
        .startsWith(text),
    );
  });

  it("decodes a step's texts in one decodeBatch call where the decoder has one, with the same results", async () => {
    const free = await generate(model, prompts, { maxNewTokens: 10, eosTokenId: [] });
    // An EOS that only row 1 meets, a stop string that only row 0 meets; row 2 runs to the length limit.
    const eos = free.tokens[1]![6]!;
    const stop = `<${free.tokens[0]![4]}>`;
    const text = async (ids: number[]) => ids.map((i) => `<${i}>`).join("");
    let single = 0;
    let batches = 0;
    const plain = {
      decode: async (ids: number[]) => {
        single++;
        return text(ids);
      },
    };
    const options = { maxNewTokens: 10, eosTokenId: [eos], stopStrings: [stop] };
    const one = await generate(model, prompts, { ...options, tokenizer: plain });
    const decodes = single;
    const batched = {
      ...plain,
      decodeBatch: async (lists: number[][]) => {
        batches++;
        return Promise.all(lists.map(text));
      },
    };
    const many = await generate(model, prompts, { ...options, tokenizer: batched });
    assert.deepEqual(many, one);
    assert.deepEqual(one.finishReasons, ["stop", "eos", "length"]);
    assert.equal(single, decodes, "decodeBatch replaces decode");
    assert.ok(batches <= 10 && batches < decodes, `${batches} decodeBatch calls for ${decodes} decodes`);
  });

  it("samples deterministically for a seed, with temperature, top-k and top-p", async () => {
    const options = { maxNewTokens: 10, doSample: true, temperature: 1.5, topK: 20, topP: 0.95, eosTokenId: [] };
    const a = await generate(model, prompts, { ...options, seed: 5 });
    const b = await generate(model, prompts, { ...options, seed: 5 });
    const c = await generate(model, prompts, { ...options, seed: 6 });
    assert.deepEqual(a.tokens, b.tokens);
    assert.notDeepEqual(a.tokens, c.tokens);
    const logits = new Float32Array([0, 5, 4.9, -1, 3]);
    const rng = new Rng(1);
    for (let i = 0; i < 50; i++) {
      assert.ok([1, 2].includes(chooseToken(logits, { doSample: true, topK: 2 }, rng)));
      assert.equal(chooseToken(logits, { doSample: true, topP: 0.01 }, rng), 1);
    }
    assert.equal(chooseToken(logits, {}, rng), 1);
    const ties = new Float32Array([2, 2, 9, 2]);
    for (let i = 0; i < 20; i++)
      assert.ok([0, 2].includes(chooseToken(ties, { doSample: true, topK: 2 }, rng)), "ties at the cut-off never push out a larger logit");
  });

  it("notices changed weights (the cached fused weights are rebuilt)", async () => {
    const other = LlamaModel.init(cfg, new Rng(4), { initializerRange: 0.3 });
    const first = await generate(other, [prompts[0]!], { maxNewTokens: 6, eosTokenId: [] });
    const before = tf.memory().numTensors;
    const w = other.weight("model.layers.1.self_attn.v_proj.weight");
    const scaled = tf.mul(w, 5);
    w.assign(scaled);
    scaled.dispose();
    const second = await generate(other, [prompts[0]!], { maxNewTokens: 6, eosTokenId: [] });
    assert.deepEqual(second.tokens[0], greedyWithoutCache(other, prompts[0]!, 6));
    assert.notDeepEqual(second.tokens, first.tokens);
    assert.equal(tf.memory().numTensors, before, "the old fused weights are disposed");
    other.dispose();
  });
});
