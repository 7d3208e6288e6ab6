/**
 * What a quick-model training step costs on each layer path (wasm + native addon): the whole-layer kernel
 * (plain LLaMA), the per-op layer path of the same model, and the per-op path with the canon convolution
 * (issue 16's base models), with and without isolated-document segments. Batch 8 x 128, Adam, 50 timed steps
 * after 10 warm-up steps, one thread.
 *
 *   npx tsx bench/layer-path.ts
 */
import * as tf from "@tensorflow/tfjs";
import { useFusedLayers } from "../src/engine/fused.js";
import { initEngine } from "../src/engine/index.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../src/model/config.js";
import { LlamaModel } from "../src/model/llama.js";
import { Rng } from "../src/util/rng.js";

await initEngine({ backend: "wasm", threads: 1 });
const base: LlamaConfig = {
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
};
const [B, T] = [8, 128];
// Three documents per row: 40, 40 and 48 tokens.
const segments = Int32Array.from({ length: B * T }, (_, i) => 1 + Math.min(2, Math.floor((i % T) / 40)));
const rows: { path: string; fused: boolean; cfg: LlamaConfig; segments?: Int32Array }[] = [
  { path: "whole-layer kernel, plain", fused: true, cfg: base },
  { path: "per-op layer, plain", fused: false, cfg: base },
  { path: "per-op layer, canon 4", fused: true, cfg: { ...base, canon_width: 4 } },
  { path: "per-op layer, canon 4, isolated documents", fused: true, cfg: { ...base, canon_width: 4 }, segments },
];
for (const row of rows) {
  useFusedLayers(row.fused);
  const model = LlamaModel.init(row.cfg, new Rng(1));
  const rng = new Rng(2);
  const ids = tf.tensor2d(
    Int32Array.from({ length: B * T }, () => rng.int(3000)),
    [B, T],
    "int32",
  );
  const labels = tf.tensor2d(
    Int32Array.from({ length: B * T }, () => rng.int(3000)),
    [B, T],
    "int32",
  );
  const optimizer = tf.train.adam(1e-3);
  let start = 0;
  for (let s = 0; s < 60; s++) {
    if (s === 10) start = performance.now();
    const cost = optimizer.minimize(() => model.loss(ids, labels, undefined, row.segments), true, model.trainableVariables());
    cost?.dataSync();
    cost?.dispose();
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(`${row.path.padEnd(44)} ${((50 * B * T) / seconds).toFixed(0).padStart(6)} tokens/s`);
  tf.dispose([ids, labels]);
  model.dispose();
}
useFusedLayers(true);
