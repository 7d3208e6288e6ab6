// Child process for the kill-during-save test: trains, and announces each
// save on stdout from inside the save, then sleeps so the parent can kill it.
import { setTimeout as sleep } from "node:timers/promises";
import { TrainSchema } from "../../src/config/schema.js";
import { initEngine } from "../../src/engine/index.js";
import { saveCheckpoint } from "../../src/model/checkpoint.js";
import type { LlamaConfig } from "../../src/model/config.js";
import { LlamaModel } from "../../src/model/llama.js";
import { packedBatches } from "../../src/train/batches.js";
import { train } from "../../src/train/trainer.js";
import { modelPersistence } from "../../src/train/weights.js";
import { Rng } from "../../src/util/rng.js";

const outDir = process.argv[2] as string;
await initEngine({ backend: "cpu" });
const config = {
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 50,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 64,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
} as LlamaConfig;
const model = LlamaModel.init(config, new Rng(7));
const tokens = Array.from({ length: 2000 }, (_, i) => (i * 7 + Math.floor(i / 13)) % 50);
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
