/**
 * Can the quick-mode model and trainer learn to copy at all? Trains the quick base model's shape (d128, 3
 * layers, 4 heads, vocab 3000; CANON=4 by default) on BOS + span + span sequences of random tokens and
 * prints the copy probe (spans of 8 and of 20 tokens) every 100 steps. The span length varies from step to
 * step (LENGTHS, default 6-24): with one fixed length the model can copy by position ("the token `length`
 * back") without content-based lookup, which the probe at that same length cannot tell apart from reading
 * (FIXED=12 reproduces that: the probe at 12 reaches 1.0 while at other lengths it stays near 0).
 *
 *   CANON=4 STEPS=1500 npx tsx bench/copy-task.ts
 */
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../src/engine/index.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../src/model/config.js";
import { LlamaModel } from "../src/model/llama.js";
import { copyProbe } from "../src/study/probes.js";
import { Rng } from "../src/util/rng.js";

const canon = Number(process.env.CANON ?? 4);
const steps = Number(process.env.STEPS ?? 300);
await initEngine({ backend: "wasm" });
const cfg: LlamaConfig = {
  ...CONFIG_DEFAULTS,
  hidden_size: 128,
  intermediate_size: 352,
  num_hidden_layers: 3,
  num_attention_heads: 4,
  num_key_value_heads: 4,
  vocab_size: 3000,
  max_position_embeddings: 256,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
  ...(canon > 0 ? { canon_width: canon } : {}),
};
const model = LlamaModel.init(cfg, new Rng(1));
const rng = new Rng(2);
const fixed = Number(process.env.FIXED ?? 0);
const [minLength, maxLength] = (process.env.LENGTHS ?? "6-24").split("-").map(Number) as [number, number];
const probePieces = Array.from({ length: 300 }, (_, i) => [10 + i]);
const optimizer = tf.train.adam(3e-3);
for (let step = 0; step <= steps; step++) {
  const rows: number[][] = [];
  const labels: number[][] = [];
  const length = fixed || minLength + rng.int(maxLength - minLength + 1);
  for (let b = 0; b < 16; b++) {
    const span = Array.from({ length }, () => 10 + rng.int(300));
    const row = [1, ...span, ...span];
    rows.push(row.slice(0, -1));
    labels.push(row.slice(1));
  }
  const ids = tf.tensor2d(rows, undefined, "int32");
  const targets = tf.tensor2d(labels, undefined, "int32");
  const cost = optimizer.minimize(() => model.loss(ids, targets), true, model.trainableVariables()) as tf.Scalar;
  const loss = cost.dataSync()[0] as number;
  tf.dispose([cost, ids, targets]);
  if (step % 100 === 0) {
    const probe = (length: number) => copyProbe(model, 1, probePieces, { spans: 32, length, seed: 3 }).toFixed(3);
    const at = fixed ? ` ${fixed}: ${probe(fixed)},` : "";
    console.log(`canon ${canon} step ${step} loss ${loss.toFixed(3)} copy probe at length${at} 8: ${probe(8)}, 20: ${probe(20)}`);
  }
}
