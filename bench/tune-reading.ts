/**
 * Does instruction tuning keep the base model's reading? (issue 16, deviation 20 in
 * notebooks/experiments/016-reading-preregistration.md.) Tunes the study's cached base model (MODE, quick by
 * default; build it first with notebook 00 or `npm start`) on notebook 00's CoIT mixture for LANG (English
 * Alpaca, the language's Alpaca, en→X translation instructions) and scores QA in English and LANG (contains,
 * next to chance) and en→X BLEU / chrF, with the instructions either as the cached world wrote them
 * (INSTR=world) or drawn from the same world with `instructionFreshFacts` (INSTR=fresh: invented people, fresh
 * facts, so an answer can only be read from its passage). LR and EPOCHS override the tuning settings; SEED
 * (0). Prints one JSON line with a few greedy English QA answers next to their gold.
 *
 *   INSTR=fresh LR=1e-3 EPOCHS=6 npx tsx bench/tune-reading.ts
 */
import { Study, type StudyMode, studySettings } from "../src/study/index.js";
import { freshNamePool, Realizer, renderInstruction, SynthWorld } from "../src/synth/index.js";

const mode = (process.env.MODE ?? "quick") as StudyMode;
const lang = process.env.LANG_X ?? "vi";
const instr = process.env.INSTR === "fresh" ? "fresh" : "world";
const defaults = studySettings(mode).tune;
const lr = Number(process.env.LR ?? defaults.lr);
const epochs = Number(process.env.EPOCHS ?? defaults.epochs);
const seed = Number(process.env.SEED ?? 0);
const settings = studySettings(mode, { tune: { lr, epochs } });
const study = await Study.prepare(settings);
const n = settings.tune.examplesPerSource;

async function alpaca(code: string) {
  if (instr === "world") return study.alpaca(code, n);
  // The build's own streams and option: what a world built with instructionFreshFacts writes to instructions/.
  const sw = new SynthWorld(settings.world.preset, settings.seed);
  const block = freshNamePool(sw.world, sw.rng("fresh-names"));
  const writer = new Realizer(sw.realizer(code).language, block.names);
  return sw
    .instructionPlans(n, 0, block)
    .map((p, i) => ({ id: `alpaca-${code}:${i}`, ...renderInstruction(writer, p), lang: code, source: `alpaca-${code}`, task: "general" }));
}

const examples = [...(await alpaca("en")), ...(await alpaca(lang)), ...(await study.translationExamples(lang, n, "target"))];
const tuned = await study.tune(examples, { seed, label: `tune-reading-${instr}`, progress: false });
const en = await study.evaluateQa(tuned.model, "en");
const x = await study.evaluateQa(tuned.model, lang);
const tr = await study.evaluateTranslation(tuned.model, lang);
tuned.model.dispose();
console.log(
  JSON.stringify({
    instr,
    lang,
    lr,
    epochs,
    seed,
    finalLoss: tuned.result.finalLoss,
    qa: { en: en.contains, [lang]: x.contains, chance: en.chance },
    bleu: tr.bleu,
    chrf: tr.chrf,
    answers: en.predictions.slice(0, 8).map((p) => `${p.prediction} | ${p.answers[0]}`),
  }),
);
