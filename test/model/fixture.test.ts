import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import { loadCheckpoint, readSafetensors, type TensorRecord, toHfLayout } from "../../src/model/index.js";
import { fixture } from "../helpers.js";

const dir = fixture("tiny-llama");

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** The golden fixture from an independent implementation: logits, loss and every gradient. */
for (const backend of ["cpu", "wasm", "webgpu"] as const) {
  describe(`tiny-llama fixture on ${backend}`, () => {
    it("matches the reference logits, loss and gradients", async (t) => {
      try {
        await initEngine({ backend });
      } catch (err) {
        if (backend !== "webgpu") throw err;
        t.skip(`webgpu is not available here: ${(err as Error).message.split("\n")[0]}`);
        return;
      }
      const ref: Record<string, TensorRecord> = await readSafetensors(`${dir}/reference.safetensors`);
      const model = await loadCheckpoint(dir);
      after(() => model.dispose());
      const ids = ref.input_ids!;
      const labels = ref.labels!;
      const inputIds = tf.tensor2d(ids.data as Int32Array, ids.shape as [number, number], "int32");
      // The fixture marks ignored positions with -1; HF uses -100. Both are negative, both ignored.
      const labelT = tf.tensor2d(labels.data as Int32Array, labels.shape as [number, number], "int32");
      const before = tf.memory().numTensors;
      const logits = model.forward(inputIds);
      assert.deepEqual(logits.shape, ref.logits!.shape);
      const logitErr = maxAbsDiff(await logits.data(), ref.logits!.data);
      logits.dispose();
      assert.ok(logitErr < 1e-4, `logits max abs error ${logitErr}`);
      assert.equal(tf.memory().numTensors, before, "forward leaks no tensors");

      const { value, grads } = tf.variableGrads(() => model.loss(inputIds, labelT));
      const loss = (await value.data())[0] as number;
      assert.ok(Math.abs(loss - (ref.loss!.data[0] as number)) < 1e-5, `loss ${loss} vs ${ref.loss!.data[0]}`);
      let checked = 0;
      let worst = 0;
      for (const [name, variable] of model.variables) {
        const g = grads[variable.name];
        assert.ok(g, `gradient for ${name}`);
        const hf = toHfLayout(name, g);
        const want = ref[`grad.${name}`];
        assert.ok(want, `reference gradient for ${name}`);
        const rel = maxAbsDiff(await hf.data(), want.data) / maxAbs(want.data);
        assert.ok(rel < 1e-4, `${name}: gradient relative error ${rel}`);
        worst = Math.max(worst, rel);
        hf.dispose();
        checked++;
      }
      assert.equal(checked, 2 * 9 + 2);
      t.diagnostic(
        `${backend}: logits max abs error ${logitErr.toExponential(2)}, loss ${loss} (reference ${ref.loss!.data[0]}), worst gradient relative error ${worst.toExponential(2)}`,
      );
      value.dispose();
      tf.dispose(grads);
      assert.equal(tf.memory().numTensors, before, "a gradient step leaks no tensors");
      inputIds.dispose();
      labelT.dispose();
    });
  });
}
