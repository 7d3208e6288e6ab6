import assert from "node:assert/strict";
import { test } from "node:test";
import { type BackendName, initEngine, probeBackends, tf } from "../../src/engine/index.js";
import { llamaStepper, TEST_MODEL } from "./llamaStep.js";

const STEPS = 3;

async function lossesOn(backend: BackendName): Promise<number[]> {
  await initEngine({ backend });
  const stepper = llamaStepper(TEST_MODEL, 11);
  const losses: number[] = [];
  const counts = [tf.memory().numTensors];
  for (let i = 0; i < STEPS; i++) {
    losses.push(await stepper.step());
    counts.push(tf.memory().numTensors);
  }
  const variables = stepper.model.variables.size;
  stepper.dispose();
  // AdamW creates its two moments per variable on the first step (the model may cache a few tables
  // for the native kernels), nothing after.
  const first = (counts[1] as number) - (counts[0] as number);
  assert.ok(first <= 2 * variables + 8, `${backend}: the first step added ${first} tensors (${variables} variables)`);
  assert.equal(counts.at(-1), counts[1], `${backend}: tensors after each step ${counts.join(", ")}`);
  return losses;
}

test("the seeded LlamaModel training step gives the same losses on every available backend (1e-4)", async (t) => {
  const probes = await probeBackends();
  const available = probes.filter((p) => p.available && p.name !== "tensorflow").map((p) => p.name);
  for (const p of probes.filter((q) => !q.available)) t.diagnostic(`${p.name} not in this run: ${p.reason}`);
  assert.ok(available.includes("cpu") && available.includes("wasm"), "cpu and wasm must always be available");
  const reference = await lossesOn("cpu");
  assert.equal(reference.length, STEPS);
  assert.ok(reference.every(Number.isFinite));
  // AdamW must actually train: the loss on the same batch goes down.
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
