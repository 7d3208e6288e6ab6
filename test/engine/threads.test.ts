import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { initEngine, tf, wasmThreadsCount } from "../../src/engine/index.js";
import { ReferenceLlama, referenceBatch, TEST_LLAMA } from "../../src/engine/reference.js";
import { repoRoot, tempDir } from "../helpers.js";

test("wasm threads start in Node and train to the same losses as one thread", async () => {
  // With the native addon on, threads go to BLAS; this test is about wasm's own threads.
  const engine = await initEngine({ backend: "wasm", threads: 2, native: false });
  assert.equal(engine.backend, "wasm");
  assert.equal(wasmThreadsCount(), 2, engine.reason);
  assert.match(engine.device, /2 threads/);
  const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]);
  assert.deepEqual(Array.from(tf.matMul(a, b).dataSync()), [4, 5, 10, 11]);
  const model = ReferenceLlama.init(TEST_LLAMA, 11);
  const batch = referenceBatch(TEST_LLAMA, 2, 11);
  const loss = await model.trainStep(batch);
  // parity.test.ts pins the same seeded step on one thread / the cpu backend.
  assert.ok(Math.abs(loss - 4.169502) < 1e-4, `first loss ${loss}`);
  model.dispose();
  batch.dispose();
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
