import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import {
  causalLmLoss,
  configFromJson,
  KvCache,
  type LlamaConfig,
  LlamaModel,
  readConfig,
  validateConfig,
  writeConfig,
} from "../../src/model/index.js";
import { ConfigError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { tempDir } from "../helpers.js";

await initEngine({ backend: "cpu" });

const tiny: LlamaConfig = {
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 32,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 8,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: null,
};

function ids(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0]!.length], "int32");
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] as number);
}

describe("config", () => {
  it("rejects sizes that do not fit together, naming the field", () => {
    const cases: [Partial<LlamaConfig>, string][] = [
      [{ num_attention_heads: 3 }, "num_attention_heads"],
      [{ num_key_value_heads: 3 }, "num_key_value_heads"],
      [{ hidden_size: 0 }, "hidden_size"],
      [{ vocab_size: 0 }, "vocab_size"],
      [{ num_hidden_layers: 1.5 }, "num_hidden_layers"],
      [{ rms_norm_eps: -1 }, "rms_norm_eps"],
      [{ eos_token_id: 99 }, "eos_token_id"],
    ];
    for (const [change, field] of cases) {
      assert.throws(
        () => validateConfig({ ...tiny, ...change }),
        (e: unknown) => e instanceof ConfigError && e.field === field && e.code === "XA_MODEL_CONFIG",
        field,
      );
    }
  });

  it("fills Hugging Face defaults and round-trips config.json", async () => {
    const cfg = configFromJson({ hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 4, vocab_size: 32 });
    assert.equal(cfg.num_key_value_heads, 4);
    assert.equal(cfg.rms_norm_eps, 1e-6);
    assert.equal(cfg.tie_word_embeddings, false);
    assert.equal(cfg.pad_token_id, null);
    assert.throws(() => configFromJson({ ...tiny, model_type: "gpt2" }), ConfigError);
    const { dir, cleanup } = await tempDir();
    try {
      await writeConfig(dir, tiny);
      assert.deepEqual(await readConfig(dir), tiny);
      await assert.rejects(readConfig(`${dir}/missing`), ConfigError);
    } finally {
      await cleanup();
    }
  });
});

describe("LlamaModel", () => {
  it("initialises deterministically from a seed", () => {
    const a = LlamaModel.init(tiny, new Rng(7));
    const b = LlamaModel.init(tiny, new Rng(7));
    const c = LlamaModel.init(tiny, new Rng(8));
    const name = "model.layers.1.mlp.up_proj.weight";
    assert.equal(maxDiff(a.weight(name), b.weight(name)), 0);
    assert.ok(maxDiff(a.weight(name), c.weight(name)) > 0);
    assert.equal(a.numParameters(), 2 * 32 * 16 + 2 * (16 * 16 * 2 + 16 * 8 * 2 + 3 * 16 * 24 + 32) + 16);
    for (const m of [a, b, c]) m.dispose();
  });

  it("passes a finite-difference gradient check", () => {
    const model = LlamaModel.init({ ...tiny, tie_word_embeddings: true }, new Rng(3), { initializerRange: 0.3 });
    const input = ids([
      [1, 5, 9, 3, 7, 2],
      [4, 4, 8, 1, 6, 0],
    ]);
    const labels = ids([
      [5, 9, 3, 7, 2, -100],
      [-100, 8, 1, 6, 0, 3],
    ]);
    const { grads } = tf.variableGrads(() => model.loss(input, labels));
    const rng = new Rng(11);
    const eps = 1e-2;
    for (const name of [
      "model.embed_tokens.weight",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.1.mlp.down_proj.weight",
      "model.norm.weight",
    ]) {
      const variable = model.weight(name);
      const grad = grads[variable.name]!.dataSync();
      const base = variable.dataSync().slice();
      for (let trial = 0; trial < 3; trial++) {
        const i = rng.int(base.length);
        const lossAt = (delta: number) => {
          const w = base.slice();
          w[i] = (w[i] as number) + delta;
          variable.assign(tf.tensor(w, variable.shape));
          return tf.tidy(() => model.loss(input, labels).dataSync()[0] as number);
        };
        const numeric = (lossAt(eps) - lossAt(-eps)) / (2 * eps);
        variable.assign(tf.tensor(base, variable.shape));
        const analytic = grad[i] as number;
        assert.ok(
          Math.abs(numeric - analytic) < 2e-3 + 0.02 * Math.abs(analytic),
          `${name}[${i}]: numeric ${numeric} vs analytic ${analytic}`,
        );
      }
    }
    tf.dispose(grads);
    model.dispose();
  });

  it("gives padded rows the logits of the unpadded sequence (left and right padding)", () => {
    const model = LlamaModel.init(tiny, new Rng(5), { initializerRange: 0.2 });
    const alone = model.forward(ids([[1, 7, 3, 9]]));
    const batch = model.forward(
      ids([
        [0, 0, 1, 7, 3, 9],
        [1, 7, 3, 9, 0, 0],
      ]),
      {
        attentionMask: [
          [0, 0, 1, 1, 1, 1],
          [1, 1, 1, 1, 0, 0],
        ],
      },
    );
    const explicit = model.forward(ids([[1, 7, 3, 9]]), { positionIds: [[0, 1, 2, 3]] });
    assert.equal(maxDiff(explicit, alone), 0);
    const shifted = model.forward(ids([[1, 7, 3, 9]]), { positionIds: [[0, 2, 5, 6]] });
    assert.ok(maxDiff(shifted, alone) > 1e-4, "relative positions matter (a uniform shift would not: RoPE is relative)");
    tf.dispose([explicit, shifted]);
    const left = tf.slice(batch, [0, 2, 0], [1, 4, tiny.vocab_size]);
    const right = tf.slice(batch, [1, 0, 0], [1, 4, tiny.vocab_size]);
    assert.ok(maxDiff(left, alone) < 1e-5, `left padding differs by ${maxDiff(left, alone)}`);
    assert.ok(maxDiff(right, alone) < 1e-5, `right padding differs by ${maxDiff(right, alone)}`);
    tf.dispose([alone, batch, left, right]);
    model.dispose();
  });

  for (const kv of [4, 2, 1]) {
    it(`cached decoding equals a full forward (${kv} key/value heads)`, () => {
      const model = LlamaModel.init({ ...tiny, num_key_value_heads: kv }, new Rng(kv), { initializerRange: 0.2 });
      const seq = [1, 7, 3, 9, 12, 30, 4, 5, 6, 11];
      const full = model.forward(ids([seq]));
      const before = tf.memory().numTensors;
      const cache = new KvCache(tiny.num_hidden_layers);
      const inputs = [ids([seq.slice(0, 4)]), ...seq.slice(4).map((token) => ids([[token]]))];
      const parts = inputs.map((input) => model.forward(input, { cache }));
      const stitched = tf.concat(parts, 1);
      assert.equal(cache.length, seq.length);
      assert.ok(maxDiff(stitched, full) < 1e-5, `cached logits differ by ${maxDiff(stitched, full)}`);
      tf.dispose([...inputs, ...parts, stitched]);
      cache.dispose();
      assert.equal(tf.memory().numTensors, before, "the cache releases its tensors");
      tf.dispose(full);
      model.dispose();
    });
  }

  it("computes the loss by picking targets, ignoring negative labels", () => {
    const logits = tf.tensor3d([
      [
        [1, 2, 3],
        [0, 0, 5],
        [2, 2, 2],
      ],
    ]);
    const labels = ids([[2, -100, 0]]);
    const loss = causalLmLoss(logits, labels).dataSync()[0] as number;
    const expected = (Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 3 + Math.log(3)) / 2;
    assert.ok(Math.abs(loss - expected) < 1e-6);
    assert.equal(causalLmLoss(logits, ids([[-100, -100, -100]])).dataSync()[0], 0);
    assert.throws(() => causalLmLoss(logits, ids([[1, 2]])));
    tf.dispose([logits, labels]);
  });

  it("routes every projection through linear(), where an adapter adds its delta", () => {
    const model = LlamaModel.init(tiny, new Rng(9));
    const input = ids([[1, 2, 3]]);
    const base = model.forward(input);
    assert.equal(model.projectionModules().length, 2 * 7);
    const seen: string[] = [];
    for (const m of model.projectionModules()) {
      model.setAdapter(m, (x) => {
        seen.push(m);
        const out = model.weight(`${m}.weight`).shape[1]!;
        return tf.zeros([x.shape[0], out]);
      });
    }
    const same = model.forward(input);
    assert.equal(seen.length, 14);
    assert.ok(maxDiff(base, same) < 1e-5);
    model.setAdapter("model.layers.0.self_attn.v_proj", (x) => tf.fill([x.shape[0], 8], 0.5) as tf.Tensor2D);
    const changed = model.forward(input);
    assert.ok(maxDiff(base, changed) > 1e-3);
    assert.throws(() => model.setAdapter("model.norm", undefined));
    tf.dispose([input, base, same, changed]);
    model.dispose();
  });

  it("leaks no tensors in a forward or a training step; frozen weights get no gradient", () => {
    const model = LlamaModel.init(tiny, new Rng(1));
    model.setTrainable((name) => !name.includes("embed"));
    assert.equal(model.trainableVariables().length, model.variables.size - 1);
    const input = ids([[1, 2, 3, 4]]);
    const labels = ids([[2, 3, 4, -100]]);
    const optimizer = tf.train.sgd(0.1);
    const step = () => optimizer.minimize(() => model.loss(input, labels), false, model.trainableVariables());
    step();
    const before = tf.memory().numTensors;
    const embed = model.weight("model.embed_tokens.weight").dataSync().slice();
    step();
    tf.tidy(() => {
      model.forward(input);
    });
    model.forward(input).dispose();
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(model.weight("model.embed_tokens.weight").dataSync(), embed);
    tf.dispose([input, labels]);
    model.dispose();
  });
});
