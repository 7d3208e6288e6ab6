// A random model for tests that compare two computations of the same model: a large initialisation (so
// differences show) and, with canon_width, non-zero convolution taps (init gives zeros, the identity, which
// would test nothing).
import * as tf from "@tensorflow/tfjs";
import { type LlamaConfig, LlamaModel } from "../../src/model/index.js";
import { Rng } from "../../src/util/rng.js";

export function randomModel(cfg: LlamaConfig, seed: number): LlamaModel {
  const model = LlamaModel.init(cfg, new Rng(seed), { initializerRange: 0.3 });
  const rng = new Rng(seed + 100);
  for (let l = 0; l < cfg.num_hidden_layers && (cfg.canon_width ?? 0) > 0; l++) {
    const v = model.weight(`model.layers.${l}.self_attn.canon.weight`);
    v.assign(
      tf.tensor2d(
        Float32Array.from({ length: v.size }, () => rng.normal() * 0.5),
        v.shape as [number, number],
      ),
    );
  }
  return model;
}
