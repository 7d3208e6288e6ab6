import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import type { LlamaModel } from "../../src/model/llama.js";
import { copyProbe } from "../../src/study/probes.js";

await initEngine({ backend: "cpu" });

const VOCAB = 40;
/** A stand-in model whose logits at position p put all mass on the token `lag` positions back (lag 0: itself). */
function lookBack(lag: number): LlamaModel {
  return {
    forward(ids: tf.Tensor2D) {
      const [b, t] = ids.shape;
      const data = ids.arraySync();
      const logits = new Float32Array(b * t * VOCAB);
      for (let r = 0; r < b; r++)
        for (let p = 0; p < t; p++) logits[(r * t + p) * VOCAB + ((data[r] as number[])[Math.max(0, p - lag)] as number)] = 1;
      return tf.tensor3d(logits, [b, t, VOCAB]);
    },
  } as unknown as LlamaModel;
}

describe("copy probe", () => {
  const pieces = [[5, 6], [7], [8, 9, 10], [11], [12, 13], [14], [15, 16]];
  it("a model that copies from one span back scores 1; one that repeats its input scores near 0", () => {
    const length = 12;
    assert.equal(copyProbe(lookBack(length - 1), 1, pieces, { spans: 20, length, seed: 3 }), 1);
    assert.ok(copyProbe(lookBack(0), 1, pieces, { spans: 20, length, seed: 3 }) < 0.1);
  });
  it("refuses an empty piece list", () => {
    assert.throws(() => copyProbe(lookBack(0), 1, [[]]), /no non-empty pieces/);
  });
});
