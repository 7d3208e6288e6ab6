/**
 * The study's evaluations of a model: extractive QA with the study's scores,
 * en→X translation with BLEU and chrF (95% CIs), the reading probe (held-out,
 * counterfactual, copy) and the competence table. Each asks the model through
 * the `complete` function it is given and reads the world it is given.
 *
 * @example
 * const ctx = { world, tokenizer, eval: settings.eval, complete: (m, p, n) => completer.complete(m, p, n) };
 * const qa = await evaluateQa(ctx, model, "vi", settings.eval.qaPerLanguage);
 */
import { buildTranslationInstructions } from "../data/builders.js";
import { renderPrompt } from "../data/prompt.js";
import { BLEU, CHRF, scoreWithConfidence } from "../eval/index.js";
import { qaScores } from "../eval/qa.js";
import type { LlamaModel } from "../model/llama.js";
import { competenceProbe, type ProbeResult } from "../synth/index.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { trainingTokenizer } from "../train/experiment.js";
import { answerPieces, copyProbe } from "./probes.js";
import type { StudySettings } from "./settings.js";
import { type StudyWorld, studyNames } from "./world.js";

export interface QaEvaluation {
  lang: string;
  count: number;
  /** The study's score: gold answer contained in the output (%). */
  contains: number;
  exactMatch: number;
  f1: number;
  /** Score of a type-correct guess from the passage (%). */
  chance: number;
  predictions: { id: string; prediction: string; answers: string[] }[];
}

export interface TranslationEvaluation {
  lang: string;
  count: number;
  bleu: number;
  bleuHalfWidth: number;
  chrf: number;
  chrfHalfWidth: number;
  signature: string;
  hypotheses: string[];
  references: string[];
}

/** What {@link readingProbe} measures (fractions). */
export interface ReadingProbe {
  heldOut: ProbeResult;
  counterfactual?: ProbeResult;
  /** Top-1 accuracy on the second copy of a repeated span of names and values. */
  copy: number;
}

/** One row of the competence table (percent). */
export interface CompetenceRow {
  probe: string;
  lang: string;
  contains: number;
  exact: number | null;
  /** Counterfactual rows: answered with the world's (memorised) value instead of the passage's. */
  memorised: number | null;
  chance: number | null;
  questions: number;
}

/** What {@link competence} returns. */
export interface Competence {
  rows: CompetenceRow[];
  /** competence.<lang> (held-out contains), competence.copy, competence.en.counterfactual / .memorised (percent). */
  metrics: Record<string, number>;
  /** Languages whose held-out contains is within 5 points of chance. */
  unlearned: string[];
  reading: ReadingProbe;
  languages: ProbeResult[];
}

/** What an evaluation reads and how it asks the model. */
export interface EvalContext {
  world: StudyWorld;
  tokenizer: Tokenizer;
  eval: StudySettings["eval"];
  /** Greedy continuations of prompts, cut at the first newline (see complete.ts). */
  complete: (model: LlamaModel, prompts: string[], maxNewTokens: number) => Promise<string[]>;
}

/** Extractive QA with the native-language instruction in the Alpaca prompt; the study's scores. */
export async function evaluateQa(ctx: EvalContext, model: LlamaModel, lang: string, count: number): Promise<QaEvaluation> {
  const set = await ctx.world.qaSet(lang);
  const instruction = await ctx.world.qaInstruction(lang);
  const items: { id: string; prompt: string; answers: string[]; chance: number }[] = [];
  for (const doc of set.data) {
    for (const p of doc.paragraphs) {
      for (const q of p.qas)
        items.push({
          id: q.id,
          prompt: renderPrompt({ instruction, input: `${p.context}\n${q.question}`, output: "" }, "alpaca").prompt,
          answers: q.answers.map((a) => a.text),
          chance: q.chance ?? set.chance,
        });
    }
  }
  const picked = items.slice(0, count);
  const predictions = await ctx.complete(
    model,
    picked.map((it) => it.prompt),
    ctx.eval.maxNewTokens,
  );
  const scores = qaScores(picked.map((it, i) => ({ prediction: predictions[i] ?? "", answers: it.answers, lang })));
  return {
    lang,
    count: picked.length,
    contains: scores.contains,
    exactMatch: scores.exactMatch,
    f1: scores.f1,
    chance: (100 * picked.reduce((a, it) => a + it.chance, 0)) / Math.max(1, picked.length),
    predictions: picked.map((it, i) => ({ id: it.id, prediction: predictions[i] ?? "", answers: it.answers })),
  };
}

/** en→X translation of the held-out (Flores-like) devtest sentences with template 0; BLEU and chrF with 95% CIs. */
export async function evaluateTranslation(
  ctx: EvalContext,
  model: LlamaModel,
  lang: string,
  count: number,
): Promise<TranslationEvaluation> {
  const pairs = await ctx.world.devtestPairs(lang, count);
  const prompts: string[] = [];
  for await (const ex of buildTranslationInstructions(pairs, {
    srcLang: "en",
    tgtLang: lang,
    template: 0,
    source: "flores",
    names: studyNames(lang),
  })) {
    prompts.push(renderPrompt(ex, "alpaca").prompt);
  }
  const hypotheses = await ctx.complete(model, prompts, ctx.eval.maxNewTokens * 2);
  const references = pairs.map((p) => p.tgt);
  const tokenize = /\p{Script=Han}/u.test(references.join("")) ? "zh" : "13a";
  const bleu = scoreWithConfidence(new BLEU({ tokenize }), hypotheses, [references], { samples: 1000 });
  const chrf = scoreWithConfidence(new CHRF(), hypotheses, [references], { samples: 1000 });
  return {
    lang,
    count: pairs.length,
    bleu: bleu.score,
    bleuHalfWidth: bleu.confidence?.halfWidth ?? 0,
    chrf: chrf.score,
    chrfHalfWidth: chrf.confidence?.halfWidth ?? 0,
    signature: String(bleu.signature ?? ""),
    hypotheses,
    references,
  };
}

/**
 * Can a model read? Plain-text English QA on held-out people (reading required), on counterfactual
 * passages (train people with fresh facts: contains, and how often it answers from memory) and the copy
 * probe, so "cannot read", "cannot copy" and "answers from memory" are told apart. The counterfactual row
 * needs a world built with `world.counterfactual` > 0.
 */
export async function readingProbe(ctx: EvalContext, model: LlamaModel, limit: number): Promise<ReadingProbe> {
  const answer = (prompts: string[]) => ctx.complete(model, prompts, ctx.eval.maxNewTokens);
  const options = { limit, batchSize: ctx.eval.batchSize };
  const en = await ctx.world.qaSet("en");
  const [heldOut] = await competenceProbe([en], answer, options);
  const cfSet = await ctx.world.counterfactualQaSet();
  const counterfactual = cfSet ? (await competenceProbe([cfSet], answer, options))[0] : undefined;
  const pieces = await answerPieces(en, ctx.tokenizer);
  const copy = copyProbe(model, trainingTokenizer(ctx.tokenizer).bosId, pieces, { spans: 64, seed: 7 });
  return { heldOut: heldOut as ProbeResult, ...(counterfactual ? { counterfactual } : {}), copy };
}

/**
 * The notebooks' competence table: the reading probes (English held-out, counterfactual, copy) and
 * plain-text QA in each other language, as percent rows, with the metrics a run records and the languages
 * within 5 points of chance ("not acquired").
 */
export async function competence(ctx: EvalContext, model: LlamaModel, languages: string[]): Promise<Competence> {
  const reading = await readingProbe(ctx, model, ctx.eval.qaPerLanguage);
  const others = await probe(
    ctx,
    model,
    languages.filter((l) => l !== "en"),
    ctx.eval.qaPerLanguage,
  );
  const pct = (x: number) => Math.round(1000 * x) / 10;
  const row = (probe: string, r: ProbeResult): CompetenceRow => ({
    probe,
    lang: r.language,
    contains: pct(r.accuracy),
    exact: pct(r.exact),
    memorised: r.memorised !== undefined ? pct(r.memorised) : null,
    chance: pct(r.chance),
    questions: r.questions,
  });
  const rows = [row("held-out people", reading.heldOut)];
  if (reading.counterfactual) rows.push(row("counterfactual (train names, fresh facts)", reading.counterfactual));
  rows.push({
    probe: "copy a repeated span (top-1)",
    lang: "en",
    contains: pct(reading.copy),
    exact: null,
    memorised: null,
    chance: null,
    questions: 64,
  });
  for (const r of others) rows.push(row("held-out people", r));
  const metrics: Record<string, number> = { "competence.copy": pct(reading.copy) };
  for (const r of [reading.heldOut, ...others]) metrics[`competence.${r.language}`] = pct(r.accuracy);
  if (reading.counterfactual) {
    metrics["competence.en.counterfactual"] = pct(reading.counterfactual.accuracy);
    metrics["competence.en.memorised"] = pct(reading.counterfactual.memorised ?? 0);
  }
  const unlearned = [reading.heldOut, ...others].filter((r) => r.accuracy <= r.chance + 0.05).map((r) => r.language);
  return { rows, metrics, unlearned, reading, languages: others };
}

/** Plain-text QA accuracy of an untuned model per language, next to chance (has it learned the language at all?). */
export async function probe(ctx: EvalContext, model: LlamaModel, languages: string[], limit: number): Promise<ProbeResult[]> {
  const sets = await Promise.all(languages.map((l) => ctx.world.qaSet(l)));
  return competenceProbe(sets, (prompts) => ctx.complete(model, prompts, ctx.eval.maxNewTokens), {
    limit,
    batchSize: ctx.eval.batchSize,
  });
}
