/**
 * Does a base model acquire plain-text (extractive) QA under a pretraining setting? Builds the quick-mode
 * world with a given share of QA documents, pretrains the quick-mode base model from scratch and probes
 * English, Vietnamese and the control language xx every EVAL steps (60 questions each, next to chance).
 * Env: QA (share of documents with questions, 0.3), DOCS (20000), STEPS (2000), LR (3e-3), BS (8), LEN (128),
 * D/FFN/L/H (model), EVAL (500). Uses the cached quick-mode tokenizer (run notebook 00 first).
 *
 *   QA=0.8 STEPS=3000 npx tsx bench/qa-acquisition.ts
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TrainSchema } from "../src/config/schema.js";
import { initEngine } from "../src/engine/index.js";
import { LlamaModel } from "../src/model/llama.js";
import { studySettings } from "../src/study/settings.js";
import { baseModelConfig, greedyComplete } from "../src/study/study.js";
import { buildSynthWorld, competenceProbe } from "../src/synth/index.js";
import { loadTokenizer } from "../src/tokenizer/index.js";
import { packedBatches } from "../src/train/batches.js";
import { trainingTokenizer } from "../src/train/experiment.js";
import { readTextLines, tokenStream } from "../src/train/sequences.js";
import { train } from "../src/train/trainer.js";
import { Rng } from "../src/util/rng.js";

const quick = studySettings("quick");
const E = (k: string, d: number) => Number(process.env[k] ?? d);
const qa = E("QA", 0.3),
  docs = E("DOCS", quick.world.sizes.pretrain ?? 20000),
  steps = E("STEPS", quick.pretrain.steps),
  lr = E("LR", quick.pretrain.lr),
  bs = E("BS", quick.pretrain.batchSize),
  len = E("LEN", quick.pretrain.maxLength);
const tag = `qa${qa}-docs${docs}`;
const worldDir = `/tmp/qaexp/world-${tag}`;
await initEngine({ backend: "wasm" });
if (!existsSync(join(worldDir, "manifest.json")))
  await buildSynthWorld(worldDir, {
    preset: quick.world.preset,
    seed: quick.seed,
    sizes: { ...quick.world.sizes, pretrain: docs },
    pretrainQaShare: qa,
  });
const cacheDir = process.env.XALIGN_CACHE ?? ".cache/xalign";
const cachedTokenizer = existsSync(cacheDir) ? readdirSync(cacheDir).find((n) => n.startsWith("tokenizer-")) : undefined;
const tokenizerDir = process.env.TOKENIZER ?? (cachedTokenizer ? join(cacheDir, cachedTokenizer) : undefined);
if (!tokenizerDir) throw new Error(`no tokenizer-* folder in ${cacheDir}: run notebook 00 in quick mode first, or set TOKENIZER=DIR`);
const tokenizer = await loadTokenizer(tokenizerDir);
const tok = trainingTokenizer(tokenizer);
const config = baseModelConfig(
  {
    ...quick.model,
    hidden_size: E("D", quick.model.hidden_size),
    intermediate_size: E("FFN", quick.model.intermediate_size),
    num_hidden_layers: E("L", quick.model.num_hidden_layers),
    num_attention_heads: E("H", quick.model.num_attention_heads),
  },
  tokenizer,
);
const model = LlamaModel.init(config, new Rng(1).fork("base-init"));
const tokens = await tokenStream(await readTextLines([join(worldDir, "pretrain", "corpus.txt")]), tok);
console.log(
  `${tag} tokens ${tokens.length} steps ${steps} bs ${bs} len ${len} => ${((steps * bs * len) / tokens.length).toFixed(2)} epochs`,
);
const sets = ["en", "vi", "xx"].map((l) => JSON.parse(readFileSync(join(worldDir, "qa", `xquad.${l}.json`), "utf8")));
const evalEvery = E("EVAL", 500);
const t0 = Date.now();
await train({
  model,
  params: model.variables,
  train: packedBatches(tokens, { maxLength: len, batchSize: bs, seed: 1 }),
  validation: packedBatches(tokens.slice(0, 20000), { maxLength: len, batchSize: bs, seed: 2 }),
  config: TrainSchema.parse({
    max_steps: steps,
    batch_size: bs,
    max_length: len,
    lr,
    warmup_steps: Math.round(steps * 0.03),
    schedule: "cosine",
    weight_decay: 0.01,
    clip_norm: 1,
    eval_every: evalEvery,
    eval_batches: 2,
  }),
  seed: 1,
  outDir: `/tmp/qaexp/run-${tag}-${process.pid}`,
  saveModel: async () => {},
  loadModel: async () => {},
  checkpoints: false,
  progress: false,
  onEvaluate: async (step) => {
    const r = await competenceProbe(sets, (p) => greedyComplete(model, tokenizer, p, { maxNewTokens: 10, batchSize: 30 }), {
      limit: 60,
      batchSize: 30,
    });
    console.log(
      `step ${step} ${((Date.now() - t0) / 1000).toFixed(0)}s`,
      r.map((x) => `${x.language} ${(x.accuracy * 100).toFixed(0)}% (chance ${(x.chance * 100).toFixed(0)})`).join("  "),
    );
    return {};
  },
});
