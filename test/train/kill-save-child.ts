// Child process for the kill-during-save test: trains, and announces each
// save on stdout from inside the save, then sleeps so the parent can kill it.
import { setTimeout as sleep } from "node:timers/promises";
import { TrainSchema } from "../../src/config/schema.js";
import { initEngine } from "../../src/engine/index.js";
import { saveCheckpoint } from "../../src/model/checkpoint.js";
import { LlamaModel } from "../../src/model/llama.js";
import { packedBatches } from "../../src/train/batches.js";
import { train } from "../../src/train/trainer.js";
import { modelPersistence } from "../../src/train/weights.js";
import { Rng } from "../../src/util/rng.js";
import { TINY_CONFIG, TINY_TOKENS } from "./tiny-model.js";

const outDir = process.argv[2] as string;
await initEngine({ backend: "cpu" });
const config = TINY_CONFIG;
const model = LlamaModel.init(config, new Rng(7));
const tokens = TINY_TOKENS;
const persistence = modelPersistence(model);
let saves = 0;
await train({
  model,
  params: model.variables,
  train: packedBatches(tokens, { maxLength: 16, batchSize: 2, seed: 3 }),
  config: TrainSchema.parse({ max_steps: 6, batch_size: 2, max_length: 16, save_every: 1, keep_last: 5 }),
  seed: 3,
  outDir,
  loadModel: persistence.loadModel,
  saveModel: async (dir) => {
    saves++;
    await saveCheckpoint(model, dir);
    if (saves === 3) {
      // Half-written: weights are there, optimizer and trainer state are not yet.
      process.stdout.write("SAVING\n");
      await sleep(60_000);
    }
  },
  progress: false,
});
