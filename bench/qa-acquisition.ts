/**
 * Does a base model learn to read? The harness of issue 16's pre-registered runs (plan and results in
 * notebooks/README.md, "Can the base model read?"). Builds the quick-mode world (optionally with more
 * pretraining documents and fresh-fact QA documents), trains the study's tokenizer on it, pretrains the
 * quick-mode base model from scratch for a token budget, and at EVALS points probes: held-out English QA
 * (contains and exact, next to chance), counterfactual English QA (train people, fresh facts: contains and
 * the memorised-answer rate) and the copy probe; at the end also every study language. One JSON line per
 * evaluation goes to OUT.
 *
 * Env: CANON (canon_width; quick mode's, 4, when absent; 0 is a plain LLaMA), PACK (doc | window), SEED (init and data order, 1), TOKENS (real tokens, 2e6),
 * DOCS (pretraining documents, 20000), QA (share with questions, 0.3), FRESH (share of those with fresh
 * facts, 0), QUESTIONS (per QA document, at most; 2), ISOLATE (1: attention and positions per document inside a packed row), PUNCT (1: the tokenizer keeps punctuation
 * out of word pieces), MIX (pretraining shares, e.g. en=1; the world's default), TIE (0: an untied head), INIT
 * (initialisation std, 0.02), LR (3e-3), BATCH (rows per step, 8),
 * ORDER (random: a QA document's questions drawn and ordered at random; passage, the default: its first facts in order),
 * COPY (share of extra documents that are BOS + span + span of 4-24 tokens drawn from the corpus's own
 * tokens, a content-copy curriculum mixed into pretraining; 0),
 * NAMES (fresh: fresh-fact QA documents are about invented people with names the world does not use),
 * PERROW (documents per row at most; 1: one document per row, as the issue's prototypes), WD (AdamW weight
 * decay, 0.01), B2 (Adam beta2, 0.999), NODECAY (comma-separated name patterns kept out of decay; the trainer's
 * default norm,bias,embed_tokens; the prototypes': norm,canon, which decays the tied embedding),
 * LAYERS (decoder layers; quick mode's when absent),
 * EVALS (4),
 * THREADS (1), OUT (/tmp/qaexp/results.jsonl), SAVE (a folder for the final model and tokenizer).
 *
 *   CANON=4 PACK=doc TOKENS=9e6 DOCS=150000 npx tsx bench/qa-acquisition.ts
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TrainSchema } from "../src/config/schema.js";
import { initEngine } from "../src/engine/index.js";
import { LlamaModel } from "../src/model/llama.js";
import { baseModelConfig } from "../src/study/base.js";
import { greedyComplete } from "../src/study/complete.js";
import { answerPieces, copyProbe } from "../src/study/probes.js";
import { STUDY_LANGUAGES, studySettings } from "../src/study/settings.js";
import { trainStudyTokenizer } from "../src/study/tokenizer.js";
import { buildSynthWorld, competenceProbe, parseMix, type SynthQaSet } from "../src/synth/index.js";
import { loadTokenizer } from "../src/tokenizer/index.js";
import { documentBatches, packedBatches } from "../src/train/batches.js";
import { trainingTokenizer } from "../src/train/experiment.js";
import { readTextLines, tokenDocuments } from "../src/train/sequences.js";
import { train } from "../src/train/trainer.js";
import { Rng } from "../src/util/rng.js";

const quick = studySettings("quick");
const E = (k: string, d: number) => Number(process.env[k] ?? d);
// CANON sets the width outright (0: a plain LLaMA); absent, quick mode's model keeps its own (4 since X3).
const canon = E("CANON", quick.model.canon_width ?? 0);
const pack = process.env.PACK ?? "doc";
const isolate = process.env.ISOLATE === "1";
const seed = E("SEED", 1);
const budget = E("TOKENS", 2e6);
const docsN = E("DOCS", quick.world.sizes.pretrain ?? 20000);
const qa = E("QA", 0.3);
const fresh = E("FRESH", 0);
const questions = E("QUESTIONS", 2);
const order = process.env.ORDER === "random" ? "random" : "passage";
const freshNames = process.env.NAMES === "fresh";
const lr = E("LR", quick.pretrain.lr);
const evals = E("EVALS", 4);
const perRow = process.env.PERROW ? E("PERROW", 0) : undefined;
const wd = E("WD", 0.01);
const beta2 = E("B2", 0.999);
const noDecay = process.env.NODECAY?.split(",");
const { maxLength: len } = quick.pretrain;
const bs = E("BATCH", quick.pretrain.batchSize);
const out = process.env.OUT ?? "/tmp/qaexp/results.jsonl";
const run = `${process.env.LAYERS ? `layers${process.env.LAYERS}-` : ""}${process.env.COPY ? `copy${process.env.COPY}-` : ""}${process.env.TIE === "0" ? "untied-" : ""}${process.env.INIT ? `init${process.env.INIT}-` : ""}${process.env.MIX ? `mix${process.env.MIX}-` : ""}canon${canon}-${pack}${isolate ? "-isolated" : ""}${process.env.PUNCT === "1" ? "-punct" : ""}-seed${seed}-tok${budget}-docs${docsN}-qa${qa}-fresh${fresh}${questions !== 2 ? `-q${questions}` : ""}${order === "random" ? "-qrandom" : ""}${freshNames ? "-fnames" : ""}-lr${lr}${bs !== quick.pretrain.batchSize ? `-bs${bs}` : ""}${perRow ? `-perrow${perRow}` : ""}${wd !== 0.01 ? `-wd${wd}` : ""}${beta2 !== 0.999 ? `-b2${beta2}` : ""}${noDecay ? `-nodecay${noDecay.join("+")}` : ""}`;
const mix = process.env.MIX ? parseMix(process.env.MIX) : undefined;
const worldDir = `/tmp/qaexp/world${process.env.MIX ? `-mix${process.env.MIX}` : ""}-docs${docsN}-qa${qa}-fresh${fresh}${questions !== 2 ? `-q${questions}` : ""}${order === "random" ? "-qrandom" : ""}${freshNames ? "-fnames" : ""}`;
mkdirSync("/tmp/qaexp", { recursive: true });
await initEngine({ backend: "wasm", threads: E("THREADS", 1) });
if (!existsSync(join(worldDir, "manifest.json")))
  await buildSynthWorld(worldDir, {
    preset: quick.world.preset,
    seed: quick.seed,
    sizes: { ...quick.world.sizes, pretrain: docsN },
    pretrainQaShare: qa,
    pretrainFreshShare: fresh,
    pretrainQuestions: questions,
    pretrainQuestionOrder: order,
    pretrainFreshNames: freshNames,
    counterfactual: 100,
    ...(mix ? { mix } : {}),
  });
const punct = process.env.PUNCT === "1";
const tokDir = join(worldDir, punct ? "tokenizer-punct" : "tokenizer");
if (!existsSync(join(tokDir, "tokenizer.json")))
  await (await trainStudyTokenizer(worldDir, quick.tokenizer.vocabSize, { splitPunctuation: punct })).save(tokDir);
const tokenizer = await loadTokenizer(tokDir);
const tok = trainingTokenizer(tokenizer);
const untied = process.env.TIE === "0";
const layers = process.env.LAYERS ? E("LAYERS", quick.model.num_hidden_layers) : undefined;
const config = {
  ...baseModelConfig(layers ? { ...quick.model, num_hidden_layers: layers } : quick.model, tokenizer),
  canon_width: canon,
  ...(untied ? { tie_word_embeddings: false } : {}),
};
const initStd = E("INIT", 0.02);
const model = LlamaModel.init(config, new Rng(seed).fork("base-init"), { initializerRange: initStd });
const lines = await readTextLines([join(worldDir, "pretrain", "corpus.txt")]);
const docs = await tokenDocuments(lines, tok);
const copyShare = E("COPY", 0);
if (copyShare > 0) {
  // Tokens as the corpus uses them (frequent ones more often), so copying is learned on the text's own pieces.
  const rng = new Rng(seed).fork("copy-documents");
  const pool = docs.flatMap((d) => [...d.subarray(1, -1)]);
  const n = Math.round((docs.length * copyShare) / (1 - copyShare));
  for (let i = 0; i < n; i++) {
    const span = Array.from({ length: 4 + rng.int(21) }, () => pool[rng.int(pool.length)] as number);
    docs.push(Int32Array.from([tok.bosId, ...span, ...span, tok.eosId]));
  }
}
const corpusTokens = docs.reduce((a, d) => a + d.length, 0);
const packed =
  pack === "doc"
    ? documentBatches(docs, {
        maxLength: len,
        batchSize: bs,
        seed,
        padId: tok.padId,
        isolate,
        ...(perRow ? { maxPerRow: perRow } : {}),
      })
    : undefined;
const source = packed ?? packedBatches(Int32Array.from(docs.flatMap((d) => [...d])), { maxLength: len, batchSize: bs, seed });
const fill = packed?.packing.fill ?? 1;
const steps = Math.round(budget / (bs * len * fill));
console.log(
  `${run}: corpus ${corpusTokens} tokens, fill ${fill.toFixed(3)}, ${steps} steps = ${(budget / corpusTokens).toFixed(2)} epochs`,
);
const set = (name: string): SynthQaSet => JSON.parse(readFileSync(join(worldDir, "qa", name), "utf8"));
const heldOut = set("xquad.en.json");
const counterfactual = set("counterfactual.en.json");
const pieces = await answerPieces(heldOut, tokenizer);
const answer = (p: string[]) => greedyComplete(model, tokenizer, p, { maxNewTokens: 8, batchSize: 50 });
const t0 = Date.now();
const evaluate = async (step: number, final: boolean) => {
  const t = Date.now();
  const [en] = await competenceProbe([heldOut], answer, { limit: 200, batchSize: 50 });
  const shown = heldOut.data.slice(0, 3).flatMap((d) => d.paragraphs.flatMap((p) => p.qas.map((q) => ({ p, q }))));
  const said = await answer(shown.map(({ p, q }) => `${p.context} ${q.question}`));
  for (const [i, { q }] of shown.entries()) console.log(`  ${q.question} -> ${JSON.stringify(said[i])} (gold ${q.answers[0]?.text})`);
  const [cf] = await competenceProbe([counterfactual], answer, { limit: 150, batchSize: 50 });
  const copy = copyProbe(model, tok.bosId, pieces, { spans: 64, seed: 7 });
  const languages = final
    ? await competenceProbe(
        STUDY_LANGUAGES.map((l) => set(`xquad.${l}.json`)),
        answer,
        { limit: 60, batchSize: 60 },
      )
    : [];
  const row = {
    run,
    step,
    tokens: Math.round(step * bs * len * fill),
    seconds: Math.round((t - t0) / 1000),
    evalSeconds: Math.round((Date.now() - t) / 1000),
    en: { contains: en?.accuracy, exact: en?.exact, chance: en?.chance },
    counterfactual: { contains: cf?.accuracy, memorised: cf?.memorised, chance: cf?.chance },
    copy,
    languages: Object.fromEntries(languages.map((r) => [r.language, { contains: r.accuracy, chance: r.chance }])),
  };
  console.log(JSON.stringify(row));
  appendFileSync(out, `${JSON.stringify(row)}\n`);
};
const every = Math.max(1, Math.round(steps / evals));
await train({
  model,
  params: model.variables,
  train: source,
  validation: documentBatches(docs.slice(0, 400), { maxLength: len, batchSize: bs, seed: 2, padId: tok.padId }),
  config: TrainSchema.parse({
    max_steps: steps,
    batch_size: bs,
    max_length: len,
    lr,
    warmup_steps: Math.round(steps * 0.03),
    schedule: "cosine",
    weight_decay: wd,
    beta2,
    ...(noDecay ? { no_decay: noDecay } : {}),
    clip_norm: 1,
    eval_every: every,
    eval_batches: 1,
  }),
  seed,
  outDir: `/tmp/qaexp/run-${run}-${process.pid}`,
  saveModel: async () => {},
  loadModel: async () => {},
  checkpoints: false,
  progress: false,
  onStep: (r) => {
    if (r.step % 200 === 0) console.log(`step ${r.step}/${steps} loss ${r.loss.toFixed(3)} ${((Date.now() - t0) / 1000).toFixed(0)}s`);
  },
  onEvaluate: async (step) => {
    await evaluate(step, step === steps);
    return {};
  },
});
if (process.env.SAVE) {
  const { saveCheckpoint } = await import("../src/model/checkpoint.js");
  await saveCheckpoint(model, process.env.SAVE);
  await tokenizer.save(process.env.SAVE);
}
