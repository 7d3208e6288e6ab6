import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { initEngine, tf, wasmThreadsCount } from "../../src/engine/index.js";
import { repoRoot, tempDir } from "../helpers.js";
import { llamaStepper, TEST_MODEL } from "./llamaStep.js";

test("wasm threads start in Node and train to the same losses as one thread", async () => {
  // With the native addon on, threads go to BLAS; this test is about wasm's own threads.
  const engine = await initEngine({ backend: "wasm", threads: 2, native: false });
  assert.equal(engine.backend, "wasm");
  assert.equal(wasmThreadsCount(), 2, engine.reason);
  assert.match(engine.device, /2 threads/);
  const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]);
  assert.deepEqual(Array.from(tf.matMul(a, b).dataSync()), [4, 5, 10, 11]);
  const stepper = llamaStepper(TEST_MODEL, 11);
  const losses = [await stepper.step(), await stepper.step()];
  // The same seeded model and batch as parity.test.ts, whose cpu backend gives these losses
  // (at initialisation, and after one AdamW step).
  assert.ok(Math.abs((losses[0] as number) - 4.166932) < 1e-4, `first loss ${losses[0]}`);
  assert.ok(Math.abs((losses[1] as number) - 4.07357) < 1e-4, `second loss ${losses[1]}`);
  stepper.dispose();
  tf.dispose([a, b]);
});

test("a process that used wasm threads still exits by itself", async () => {
  const compiled = import.meta.url.endsWith(".js");
  const engineModule = fileURLToPath(new URL(`../../src/engine/index.${compiled ? "js" : "ts"}`, import.meta.url));
  const { dir, cleanup } = await tempDir();
  try {
    const script = join(dir, "threads.mjs");
    await writeFile(
      script,
      `import { initEngine, tf } from ${JSON.stringify(pathToFileURL(engineModule).href)};
       await initEngine({ backend: "wasm", threads: 2, native: false });
       tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])).dataSync();
       console.log("done");`,
    );
    const child = spawnSync(process.execPath, [...(compiled ? [] : ["--import", "tsx"]), script], {
      cwd: repoRoot(),
      timeout: 60_000,
      encoding: "utf8",
    });
    assert.equal(child.signal, null, "the process hung (live pthread workers) and was killed");
    assert.equal(child.status, 0, child.stderr.slice(0, 2000));
    assert.match(child.stdout, /done/);
  } finally {
    await cleanup();
  }
});
