/**
 * The study's building blocks for notebooks: a shared, cached synthetic world,
 * tokenizer and English-dominant base model; instruction tuning from the base;
 * QA and translation evaluation with the study's metrics; the competence probe.
 * Notebooks compose these; each call is deterministic in its seeds. The cache
 * folder defaults to cacheRoot() ($XALIGN_CACHE, else <home>/.cache/xalign).
 *
 * @example
 * const study = await Study.prepare(studySettings("quick"));
 * const tuned = await study.tune(await study.alpaca("en"), { seed: 0, label: "alpaca" });
 * const qa = await study.evaluateQa(tuned.model, "vi");
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { TrainSchema } from "../config/schema.js";
import { buildTranslationInstructions } from "../data/builders.js";
import type { InstructionExample } from "../data/example.js";
import { renderPrompt } from "../data/prompt.js";
import { floresFile } from "../data/readers/flores.js";
import { type EngineInfo, initEngine } from "../engine/index.js";
import { BLEU, CHRF, scoreWithConfidence } from "../eval/index.js";
import { qaScores } from "../eval/qa.js";
import { loadCheckpoint, saveCheckpoint } from "../model/checkpoint.js";
import { CONFIG_DEFAULTS, type LlamaConfig } from "../model/config.js";
import { generate } from "../model/generate.js";
import { LlamaModel } from "../model/llama.js";
import { buildSynthWorld, competenceProbe, type ProbeResult, type SynthQaSet } from "../synth/index.js";
import { loadTokenizer, type Tokenizer, trainBpeTokenizer } from "../tokenizer/index.js";
import { bucketedBatches, documentBatches, packedBatches } from "../train/batches.js";
import { trainingTokenizer } from "../train/experiment.js";
import { encodeExamples, readTextLines, tokenDocuments, tokenStream } from "../train/sequences.js";
import { generateTextsWithTorch, torchEngineWanted, trainOn } from "../train/torch-engine.js";
import type { TrainResult } from "../train/trainer.js";
import { modelPersistence } from "../train/weights.js";
import { DataError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { cached, cacheKey, cacheRoot, scratchDir } from "./cache.js";
import { answerPieces, copyProbe } from "./probes.js";
import type { StudySettings } from "./settings.js";

/** Display names of the synthetic stand-ins (the study's languages, plus the near-English control). */
export const LANGUAGE_NAMES: Record<string, string> = {
  en: "English",
  ar: "Arabic",
  el: "Greek",
  hi: "Hindi",
  tr: "Turkish",
  vi: "Vietnamese",
  zh: "Chinese",
  xx: "Near-English",
};

export interface TuneOptions {
  seed: number;
  label: string;
  /** Folder for checkpoints and metrics (default: a folder under the cache's scratch). */
  outDir?: string;
  /** Override the settings' epochs. */
  epochs?: number;
  /** Fixed number of optimiser steps instead of epochs. */
  maxSteps?: number;
  progress?: boolean;
  /** Keep checkpoints of the run (default false: metrics.jsonl only). */
  checkpoints?: boolean;
}

export interface Tuned {
  model: LlamaModel;
  result: TrainResult;
  examples: number;
}

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

export interface WorldManifest {
  preset: string;
  seed: number;
  mix: Record<string, number>;
  similarity: { code: string; sharedTokenRate: number; crossingRate: number; sentences: number }[];
  languages: { code: string; name: string; share: number; script: string; order: string }[];
  [key: string]: unknown;
}

/** What {@link Study.readingProbe} measures (fractions). */
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

/** What {@link Study.competence} returns. */
export interface Competence {
  rows: CompetenceRow[];
  /** competence.<lang> (held-out contains), competence.copy, competence.en.counterfactual / .memorised (percent). */
  metrics: Record<string, number>;
  /** Languages whose held-out contains is within 5 points of chance. */
  unlearned: string[];
  reading: ReadingProbe;
  languages: ProbeResult[];
}

export interface ArmSpec {
  label: string;
  seed: number;
  examples: readonly InstructionExample[];
  /** Training metrics go here. */
  outDir: string;
  qaLanguages?: string[];
  translationLanguages?: string[];
  progress?: boolean;
}

export interface ArmResult {
  label: string;
  seed: number;
  examples: number;
  steps: number;
  finalLoss: number;
  qa: Record<string, QaEvaluation>;
  translation: Record<string, TranslationEvaluation>;
}

/** Where {@link Study.prepare} keeps the shared artifacts. */
export interface StudyFolders {
  /** The cache of worlds, tokenizers and base models, and the scratch of tuning runs (default: cacheRoot()). */
  cacheDir?: string;
}

export class Study {
  private readonly qaSets = new Map<string, SynthQaSet>();
  /** Whether generation goes through the torch engine (decided once: "auto" probes for CUDA torch). */
  private torchGeneration: boolean | undefined;
  /** Weights of a tuned model saved for the torch runner, one folder per model, removed with the model. */
  private readonly torchWeights = new WeakMap<LlamaModel, string>();

  private constructor(
    readonly settings: StudySettings,
    readonly engine: EngineInfo,
    readonly worldDir: string,
    readonly tokenizer: Tokenizer,
    readonly baseDir: string,
    /** The cache folder the artifacts came from; tuning runs given no outDir and torch weights go to its scratch/. */
    readonly cacheDir: string,
  ) {}

  /** Builds or loads (from the cache) the world, the tokenizer and the pretrained base model. */
  static async prepare(
    settings: StudySettings,
    onStatus: (message: string) => void = (m) => console.log(m),
    folders: StudyFolders = {},
  ): Promise<Study> {
    const cacheDir = folders.cacheDir ?? cacheRoot();
    const engine = await initEngine({ backend: settings.backend });
    const w = settings.world;
    const worldConfig = {
      preset: w.preset,
      seed: settings.seed,
      sizes: w.sizes,
      mix: w.mix ?? null,
      // Only when set, so the keys of worlds built before these options existed stay valid.
      ...(w.qaShare !== undefined ? { qaShare: w.qaShare } : {}),
      ...(w.freshShare ? { freshShare: w.freshShare } : {}),
      ...(w.counterfactual ? { counterfactual: w.counterfactual } : {}),
      ...(w.questions !== undefined ? { questions: w.questions } : {}),
    };
    const worldDir = await cached(
      cacheDir,
      "world",
      worldConfig,
      async (dir) => {
        await buildSynthWorld(dir, {
          preset: settings.world.preset,
          seed: settings.seed,
          sizes: w.sizes,
          ...(w.mix ? { mix: w.mix } : {}),
          ...(w.qaShare !== undefined ? { pretrainQaShare: w.qaShare } : {}),
          ...(w.freshShare ? { pretrainFreshShare: w.freshShare } : {}),
          ...(w.counterfactual ? { counterfactual: w.counterfactual } : {}),
          ...(w.questions !== undefined ? { pretrainQuestions: w.questions } : {}),
        });
      },
      onStatus,
    );
    const { vocabSize, splitPunctuation } = settings.tokenizer;
    const tokConfig = { world: cacheKey("world", worldConfig), vocabSize, ...(splitPunctuation ? { splitPunctuation } : {}) };
    const tokDir = await cached(
      cacheDir,
      "tokenizer",
      tokConfig,
      async (dir) => (await trainStudyTokenizer(worldDir, vocabSize, { splitPunctuation: splitPunctuation ?? false })).save(dir),
      onStatus,
    );
    const tokenizer = await loadTokenizer(tokDir);
    const baseConfig = {
      tokenizer: cacheKey("tokenizer", tokConfig),
      model: settings.model,
      pretrain: settings.pretrain,
      seed: settings.seed,
    };
    const baseDir = await cached(cacheDir, "base", baseConfig, (dir) => pretrainBase(settings, worldDir, tokenizer, dir), onStatus);
    return new Study(settings, engine, worldDir, tokenizer, baseDir, cacheDir);
  }

  /** The world's manifest: languages, sizes, chance levels and measured similarity to English. */
  async worldManifest(): Promise<WorldManifest> {
    return JSON.parse(await readFile(join(this.worldDir, "manifest.json"), "utf8")) as WorldManifest;
  }

  /** Each study language's measured distance from English, as table rows. */
  async similarity(): Promise<{ lang: string; name: string; shared_token_rate: number; crossing_rate: number; pretrain_share: number }[]> {
    const m = await this.worldManifest();
    return m.similarity.map((s) => ({
      lang: s.code,
      name: LANGUAGE_NAMES[s.code] ?? s.code,
      shared_token_rate: s.sharedTokenRate,
      crossing_rate: s.crossingRate,
      pretrain_share: m.mix[s.code] ?? 0,
    }));
  }

  /** A fresh copy of the pretrained base model. */
  loadBase(): Promise<LlamaModel> {
    return loadCheckpoint(this.baseDir);
  }

  /** Alpaca-like instructions of the world in `lang` (epoch 0), as examples. */
  async alpaca(lang: string, limit?: number): Promise<InstructionExample[]> {
    const file = join(this.worldDir, "instructions", `alpaca.${lang}.json`);
    const records = JSON.parse(await readFile(file, "utf8")) as { instruction: string; input: string; output: string }[];
    return records
      .slice(0, limit ?? records.length)
      .map((r, i) => ({ id: `alpaca-${lang}:${i}`, ...r, lang, source: `alpaca-${lang}`, task: "general" }));
  }

  /** English–X sentence pairs of the training corpus (lines [offset, offset + count)). */
  async parallel(lang: string, count: number, offset = 0): Promise<{ src: string; tgt: string }[]> {
    const dir = join(this.worldDir, "parallel", `en-${lang}`);
    const [en, x] = await Promise.all([readLinesOf(join(dir, "train.en")), readLinesOf(join(dir, `train.${lang}`))]);
    if (offset + count > en.length) {
      throw new DataError("XA_STUDY_PAIRS", `asked for ${offset + count} pairs but en-${lang} has ${en.length}`, {
        file: dir,
        hint: "raise world.sizes.parallel",
      });
    }
    return en.slice(offset, offset + count).map((src, i) => ({ src, tgt: x[offset + i] as string }));
  }

  /** Translation instructions from the first `count` pairs: en→X ("target", the study's choice), X→en ("source") or both. */
  async translationExamples(lang: string, count: number, side: "target" | "source" | "both" = "target"): Promise<InstructionExample[]> {
    const pairs = await this.parallel(lang, count);
    const out: InstructionExample[] = [];
    const direction = side === "target" ? "forward" : side === "source" ? "reverse" : "both";
    for await (const ex of buildTranslationInstructions(pairs, {
      srcLang: "en",
      tgtLang: lang,
      direction,
      source: `parallel-en-${lang}`,
      names: studyNames(lang),
    })) {
      out.push(ex);
    }
    return out;
  }

  /** The XQuAD-like QA set of a language. */
  async qaSet(lang: string): Promise<SynthQaSet> {
    const hit = this.qaSets.get(lang);
    if (hit) return hit;
    const set = JSON.parse(await readFile(join(this.worldDir, "qa", `xquad.${lang}.json`), "utf8")) as SynthQaSet;
    this.qaSets.set(lang, set);
    return set;
  }

  /** The native-language instruction the world's Alpaca-like data uses for extractive QA (the most frequent one). */
  async qaInstruction(lang: string): Promise<string> {
    const counts = new Map<string, number>();
    for (const r of await this.alpaca(lang)) if (r.input.includes("\n")) counts.set(r.instruction, (counts.get(r.instruction) ?? 0) + 1);
    const best = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (!best)
      throw new DataError("XA_STUDY_QA_INSTRUCTION", `no extractive QA instruction in alpaca.${lang}.json`, {
        file: join(this.worldDir, "instructions"),
      });
    return best[0];
  }

  /** Instruction-tunes a fresh copy of the base model on `examples`. */
  async tune(examples: readonly InstructionExample[], options: TuneOptions): Promise<Tuned> {
    const s = this.settings.tune;
    const model = await this.loadBase();
    const tok = trainingTokenizer(this.tokenizer);
    const seqs = await encodeExamples(examples, tok, { maxLength: s.maxLength });
    const rng = new Rng(options.seed);
    const config = TrainSchema.parse({
      ...(options.maxSteps !== undefined ? { max_steps: options.maxSteps } : { epochs: options.epochs ?? s.epochs }),
      batch_size: s.batchSize,
      max_length: s.maxLength,
      lr: s.lr,
      warmup_ratio: s.warmupRatio,
      schedule: "cosine",
      weight_decay: 0,
      clip_norm: 1,
      keep_last: 1,
    });
    const result = await trainOn(this.settings.engine ?? "tfjs", {
      model,
      params: model.variables,
      train: bucketedBatches(seqs, { batchSize: s.batchSize, seed: rng.nextU32(), padId: tok.padId }),
      config,
      seed: options.seed,
      outDir: options.outDir ?? scratchDir(this.cacheDir, `tune-${options.label}-seed${options.seed}`),
      ...modelPersistence(model),
      label: options.label,
      progress: options.progress ?? true,
      checkpoints: options.checkpoints ?? false,
    });
    return { model, result, examples: seqs.length };
  }

  /**
   * One arm of a comparison: tunes on `examples`, evaluates QA (and optionally
   * translation) in each language, frees the model, and returns the numbers.
   */
  async runArm(arm: ArmSpec): Promise<ArmResult> {
    const tuned = await this.tune(arm.examples, {
      seed: arm.seed,
      label: `${arm.label} (seed ${arm.seed})`,
      outDir: arm.outDir,
      ...(arm.progress !== undefined ? { progress: arm.progress } : {}),
    });
    try {
      const qa: Record<string, QaEvaluation> = {};
      for (const lang of arm.qaLanguages ?? []) qa[lang] = await this.evaluateQa(tuned.model, lang);
      const translation: Record<string, TranslationEvaluation> = {};
      for (const lang of arm.translationLanguages ?? []) translation[lang] = await this.evaluateTranslation(tuned.model, lang);
      return {
        label: arm.label,
        seed: arm.seed,
        examples: tuned.examples,
        steps: tuned.result.steps,
        finalLoss: tuned.result.finalLoss,
        qa,
        translation,
      };
    } finally {
      await this.release(tuned.model);
    }
  }

  /**
   * Greedy continuations of prompts, batched: on TF.js, or through the torch
   * engine's runner when the study trains there (settings.engine "torch", or
   * "auto" with CUDA torch) — the same tokens on the same weights (test/train/torch-engine.test.ts).
   */
  async complete(model: LlamaModel, prompts: string[], maxNewTokens = this.settings.eval.maxNewTokens): Promise<string[]> {
    this.torchGeneration ??= torchEngineWanted(this.settings.engine);
    if (!this.torchGeneration) {
      return greedyComplete(model, this.tokenizer, prompts, { maxNewTokens, batchSize: this.settings.eval.batchSize });
    }
    let dir = this.torchWeights.get(model);
    if (!dir) {
      dir = scratchDir(this.cacheDir, "eval-weights");
      await mkdir(dir, { recursive: true });
      await saveCheckpoint(model, dir);
      this.torchWeights.set(model, dir);
    }
    const tok = trainingTokenizer(this.tokenizer);
    const ids = (await this.tokenizer.encodeBatch(prompts, { addBos: false, addEos: false })).map((r) => [tok.bosId, ...r]);
    const { texts } = await generateTextsWithTorch(dir, ids, this.tokenizer, {
      maxNewTokens,
      eosTokenId: tok.eosId,
      stopStrings: ["\n"],
    });
    return texts.map((t) => t.trim());
  }

  /** Frees a model and the weights folder the torch runner read it from, if any. */
  async release(model: LlamaModel): Promise<void> {
    model.dispose();
    const dir = this.torchWeights.get(model);
    if (dir) {
      this.torchWeights.delete(model);
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Extractive QA with the native-language instruction in the Alpaca prompt; the study's scores. */
  async evaluateQa(model: LlamaModel, lang: string, count = this.settings.eval.qaPerLanguage): Promise<QaEvaluation> {
    const set = await this.qaSet(lang);
    const instruction = await this.qaInstruction(lang);
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
    const predictions = await this.complete(
      model,
      picked.map((it) => it.prompt),
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
  async evaluateTranslation(
    model: LlamaModel,
    lang: string,
    count = this.settings.eval.translationsPerLanguage,
  ): Promise<TranslationEvaluation> {
    const [en, x] = await Promise.all([
      readLinesOf(floresFile(join(this.worldDir, "flores"), "en", "devtest")),
      readLinesOf(floresFile(join(this.worldDir, "flores"), lang, "devtest")),
    ]);
    const pairs = en.slice(0, count).map((src, i) => ({ src, tgt: x[i] as string }));
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
    const hypotheses = await this.complete(model, prompts, this.settings.eval.maxNewTokens * 2);
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
  async readingProbe(model: LlamaModel, limit = this.settings.eval.qaPerLanguage): Promise<ReadingProbe> {
    const answer = (prompts: string[]) => this.complete(model, prompts);
    const options = { limit, batchSize: this.settings.eval.batchSize };
    const en = await this.qaSet("en");
    const [heldOut] = await competenceProbe([en], answer, options);
    const file = join(this.worldDir, "qa", "counterfactual.en.json");
    const cfSet = existsSync(file) ? (JSON.parse(await readFile(file, "utf8")) as SynthQaSet) : undefined;
    const counterfactual = cfSet ? (await competenceProbe([cfSet], answer, options))[0] : undefined;
    const pieces = await answerPieces(en, this.tokenizer);
    const copy = copyProbe(model, trainingTokenizer(this.tokenizer).bosId, pieces, { spans: 64, seed: 7 });
    return { heldOut: heldOut as ProbeResult, ...(counterfactual ? { counterfactual } : {}), copy };
  }

  /**
   * The notebooks' competence table: the reading probes (English held-out, counterfactual, copy) and
   * plain-text QA in each other language, as percent rows, with the metrics a run records and the languages
   * within 5 points of chance ("not acquired").
   */
  async competence(model: LlamaModel, languages: string[]): Promise<Competence> {
    const reading = await this.readingProbe(model);
    const others = await this.probe(
      model,
      languages.filter((l) => l !== "en"),
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
  async probe(
    model: LlamaModel,
    languages: string[] = ["en", ...this.settings.languages],
    limit = this.settings.eval.qaPerLanguage,
  ): Promise<ProbeResult[]> {
    const sets = await Promise.all(languages.map((l) => this.qaSet(l)));
    return competenceProbe(sets, (prompts) => this.complete(model, prompts), { limit, batchSize: this.settings.eval.batchSize });
  }
}

/**
 * Greedy continuations of text prompts (BOS + prompt), batched, each cut at
 * the first newline: how the study's evaluations and the competence probe ask
 * a model for an answer.
 */
export async function greedyComplete(
  model: LlamaModel,
  tokenizer: Tokenizer,
  prompts: string[],
  options: { maxNewTokens: number; batchSize: number },
): Promise<string[]> {
  const tok = trainingTokenizer(tokenizer);
  const encoded = (await tokenizer.encodeBatch(prompts, { addBos: false, addEos: false })).map((r) => [tok.bosId, ...r]);
  // Batches of similar lengths (longest first), so little of each batch's prefill is padding; a row's
  // continuation does not depend on its batch (generate's batched rows equal one-at-a-time decoding).
  const order = encoded.map((_, i) => i).sort((a, b) => (encoded[b] as number[]).length - (encoded[a] as number[]).length || a - b);
  const out = new Array<string>(prompts.length);
  for (let i = 0; i < order.length; i += options.batchSize) {
    const rows = order.slice(i, i + options.batchSize);
    const ids = rows.map((r) => encoded[r] as number[]);
    const res = await generate(model, ids, { maxNewTokens: options.maxNewTokens, tokenizer, stopStrings: ["\n"], padTokenId: tok.padId });
    rows.forEach((r, k) => {
      out[r] = (res.texts?.[k] ?? "").trim();
    });
  }
  return out;
}

/** Template names of a study language (the synthetic control "xx" has no ISO 639 name). */
function studyNames(lang: string): { src: string; tgt: string } {
  return { src: "English", tgt: LANGUAGE_NAMES[lang] ?? lang };
}

async function readLinesOf(path: string): Promise<string[]> {
  const text = await readFile(path, "utf8");
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** A BPE tokenizer on the world's pretraining corpus, a sample of its instructions (so prompt words are known) and parallel text. */
export async function trainStudyTokenizer(
  worldDir: string,
  vocabSize: number,
  options: { splitPunctuation?: boolean } = {},
): Promise<Tokenizer> {
  const texts: string[] = [];
  const instructionsDir = join(worldDir, "instructions");
  for (const f of (await readdir(instructionsDir)).filter((n) => n.endsWith(".json")).sort()) {
    const records = JSON.parse(await readFile(join(instructionsDir, f), "utf8")) as {
      instruction: string;
      input: string;
      output: string;
    }[];
    for (const r of records.slice(0, 300)) texts.push(renderPrompt(r, "alpaca").prompt, r.output);
  }
  return trainBpeTokenizer({ texts, files: [join(worldDir, "pretrain", "corpus.txt")] }, { vocabSize, ...options });
}

/** The base model's LLaMA config: the study's sizes, tied embeddings, the tokenizer's vocabulary and special ids. */
export function baseModelConfig(model: StudySettings["model"], tokenizer: Tokenizer): LlamaConfig {
  const tok = trainingTokenizer(tokenizer);
  return {
    ...CONFIG_DEFAULTS,
    ...model,
    num_key_value_heads: model.num_attention_heads,
    vocab_size: tokenizer.vocabSize,
    tie_word_embeddings: true,
    bos_token_id: tok.bosId,
    eos_token_id: tok.eosId,
    pad_token_id: tok.padId,
  } as LlamaConfig;
}

/** Pretrains the base model on the world's imbalanced corpus and saves it (HF layout + tokenizer + metrics). */
async function pretrainBase(settings: StudySettings, worldDir: string, tokenizer: Tokenizer, dir: string): Promise<void> {
  const tok = trainingTokenizer(tokenizer);
  const p = settings.pretrain;
  const model = LlamaModel.init(baseModelConfig(settings.model, tokenizer), new Rng(settings.seed).fork("base-init"));
  try {
    const lines = await readTextLines([join(worldDir, "pretrain", "corpus.txt")]);
    const shape = { maxLength: p.maxLength, batchSize: p.batchSize, seed: settings.seed };
    await trainOn(settings.engine ?? "tfjs", {
      model,
      params: model.variables,
      train:
        p.packing === "documents" || p.packing === "isolated"
          ? documentBatches(await tokenDocuments(lines, tok), { ...shape, padId: tok.padId, isolate: p.packing === "isolated" })
          : packedBatches(await tokenStream(lines, tok), shape),
      config: TrainSchema.parse({
        max_steps: p.steps,
        batch_size: p.batchSize,
        max_length: p.maxLength,
        lr: p.lr,
        warmup_steps: p.warmupSteps,
        schedule: "cosine",
        weight_decay: 0.01,
        clip_norm: 1,
        keep_last: 1,
      }),
      seed: settings.seed,
      outDir: join(dir, "pretrain"),
      ...modelPersistence(model),
      label: "pretrain base",
    });
    await saveCheckpoint(model, dir);
    await tokenizer.save(dir);
  } finally {
    model.dispose();
  }
}
