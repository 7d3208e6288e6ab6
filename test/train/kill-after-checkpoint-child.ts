// Child process for the resume-metrics test: trains like trainer.test.ts's
// run() helper, announces on stdout when step STOP has been logged (after the
// last checkpoint), then waits to be killed with SIGKILL.
import { setTimeout as sleep } from "node:timers/promises";
import { TrainSchema } from "../../src/config/schema.js";
import { initEngine } from "../../src/engine/index.js";
import { LlamaModel } from "../../src/model/llama.js";
import { packedBatches } from "../../src/train/batches.js";
import { train } from "../../src/train/trainer.js";
import { modelPersistence } from "../../src/train/weights.js";
import { Rng } from "../../src/util/rng.js";
import { TINY_CONFIG, TINY_TOKENS } from "./tiny-model.js";

const outDir = process.argv[2] as string;
const cfg = TrainSchema.parse(JSON.parse(process.argv[3] as string));
const stop = Number(process.argv[4]);
await initEngine({ backend: "cpu" });
const model = LlamaModel.init(TINY_CONFIG, new Rng(7));
await train({
  model,
  params: model.variables,
  train: packedBatches(TINY_TOKENS, { maxLength: cfg.max_length, batchSize: cfg.batch_size, seed: 3 }),
  config: cfg,
  seed: 3,
  outDir,
  ...modelPersistence(model),
  // beforeStep(i) runs before step i+1, so by then step i's metrics row and any checkpoint are written.
  beforeStep: (i) => {
    if (i === stop) {
      process.stdout.write("LOGGED\n");
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
    }
  },
  progress: false,
});
await sleep(0);
