import assert from "node:assert/strict";
import { test } from "node:test";
import { type BackendName, initEngine, probeBackends, tf } from "../../src/engine/index.js";
import { ReferenceLlama, referenceBatch, TEST_LLAMA } from "../../src/engine/reference.js";

const STEPS = 3;

async function lossesOn(backend: BackendName): Promise<number[]> {
  await initEngine({ backend });
  const model = ReferenceLlama.init(TEST_LLAMA, 11);
  const batch = referenceBatch(TEST_LLAMA, 2, 11);
  const losses: number[] = [];
  const before = tf.memory().numTensors;
  for (let i = 0; i < STEPS; i++) losses.push(await model.trainStep(batch));
  const after = tf.memory().numTensors;
  model.dispose();
  batch.dispose();
  // Adam creates its two moments per variable on the first step, nothing after.
  assert.ok(after - before <= 2 * model.params.size, `${backend}: ${after - before} tensors leaked per ${STEPS} steps`);
  return losses;
}

test("the seeded LLaMA training step gives the same losses on every available backend (1e-4)", async (t) => {
  const probes = await probeBackends();
  const available = probes.filter((p) => p.available && p.name !== "tensorflow").map((p) => p.name);
  for (const p of probes.filter((q) => !q.available)) t.diagnostic(`${p.name} not in this run: ${p.reason}`);
  assert.ok(available.includes("cpu") && available.includes("wasm"), "cpu and wasm must always be available");
  const reference = await lossesOn("cpu");
  assert.equal(reference.length, STEPS);
  assert.ok(reference.every(Number.isFinite));
  // Adam must actually train: the loss on the same batch goes down.
  assert.ok((reference[STEPS - 1] as number) < (reference[0] as number), `loss did not fall: ${reference.join(", ")}`);
  for (const backend of available.filter((b) => b !== "cpu")) {
    const losses = await lossesOn(backend);
    t.diagnostic(`${backend}: ${losses.map((l) => l.toFixed(6)).join(" ")}`);
    for (let i = 0; i < STEPS; i++) {
      const diff = Math.abs((losses[i] as number) - (reference[i] as number));
      assert.ok(diff <= 1e-4, `${backend} step ${i}: loss ${losses[i]} vs cpu ${reference[i]} (|diff| ${diff})`);
    }
  }
});
