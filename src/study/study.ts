/**
 * The `Study` facade for notebooks: a shared, cached synthetic world,
 * tokenizer and English-dominant base model; instruction tuning from the base;
 * QA and translation evaluation with the study's metrics; the competence probe.
 * Notebooks compose these; each call is deterministic in its seeds. The work
 * is done by world.ts, tokenizer.ts, base.ts, tune.ts, complete.ts and
 * evaluate.ts, which take their folders as arguments; the cache folder
 * defaults here to cacheRoot() ($XALIGN_CACHE, else <home>/.cache/xalign).
 *
 * @example
 * const study = await Study.prepare(studySettings("quick"));
 * const tuned = await study.tune(await study.alpaca("en"), { seed: 0, label: "alpaca" });
 * const qa = await study.evaluateQa(tuned.model, "vi");
 */
import type { InstructionExample } from "../data/example.js";
import { type EngineInfo, initEngine } from "../engine/index.js";
import { loadCheckpoint } from "../model/checkpoint.js";
import type { LlamaModel } from "../model/llama.js";
import type { ProbeResult, SynthQaSet } from "../synth/index.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { prepareBase } from "./base.js";
import { cacheRoot, scratchDir } from "./cache.js";
import { ModelCompleter } from "./complete.js";
import {
  type Competence,
  competence,
  type EvalContext,
  evaluateQa,
  evaluateTranslation,
  probe,
  type QaEvaluation,
  type ReadingProbe,
  readingProbe,
  type TranslationEvaluation,
} from "./evaluate.js";
import type { StudySettings } from "./settings.js";
import { prepareTokenizer } from "./tokenizer.js";
import { type Tuned, type TuneOptions, tuneModel } from "./tune.js";
import { prepareWorld, StudyWorld, type WorldManifest } from "./world.js";

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
  /** Wall seconds of the arm's tuning. */
  tuneSeconds: number;
  /** Wall seconds of the arm's evaluation (every QA and translation evaluation, generation and scoring). */
  evalSeconds: number;
}

/** An arm's evaluations of a tuned model (see {@link Study.evaluateArm}). */
export interface ArmEvaluation {
  qa: Record<string, QaEvaluation>;
  translation: Record<string, TranslationEvaluation>;
  /** Wall seconds of them all. */
  seconds: number;
}

/** Where {@link Study.prepare} keeps the shared artifacts. */
export interface StudyFolders {
  /** The cache of worlds, tokenizers and base models, and the scratch of tuning runs (default: cacheRoot()). */
  cacheDir?: string;
}

export class Study {
  private readonly world: StudyWorld;
  private readonly completer: ModelCompleter;
  private readonly evalContext: EvalContext;

  private constructor(
    readonly settings: StudySettings,
    readonly engine: EngineInfo,
    readonly worldDir: string,
    readonly tokenizer: Tokenizer,
    readonly baseDir: string,
    /** The cache folder the artifacts came from; tuning runs given no outDir and torch weights go to its scratch/. */
    readonly cacheDir: string,
  ) {
    this.world = new StudyWorld(worldDir);
    this.completer = new ModelCompleter(tokenizer, settings, cacheDir);
    this.evalContext = {
      world: this.world,
      tokenizer,
      eval: settings.eval,
      complete: (model, prompts, maxNewTokens) => this.complete(model, prompts, maxNewTokens),
    };
  }

  /** Builds or loads (from the cache) the world, the tokenizer and the pretrained base model. */
  static async prepare(
    settings: StudySettings,
    onStatus: (message: string) => void = (m) => console.log(m),
    folders: StudyFolders = {},
  ): Promise<Study> {
    const cacheDir = folders.cacheDir ?? cacheRoot();
    const engine = await initEngine({ backend: settings.backend });
    const world = await prepareWorld(settings, cacheDir, onStatus);
    const tok = await prepareTokenizer(settings.tokenizer, world, cacheDir, onStatus);
    const baseDir = await prepareBase(settings, world, tok, cacheDir, onStatus);
    return new Study(settings, engine, world.dir, tok.tokenizer, baseDir, cacheDir);
  }

  /** The world's manifest: languages, sizes, chance levels and measured similarity to English. */
  worldManifest(): Promise<WorldManifest> {
    return this.world.manifest();
  }

  /** Each study language's measured distance from English, as table rows. */
  similarity(): Promise<{ lang: string; name: string; shared_token_rate: number; crossing_rate: number; pretrain_share: number }[]> {
    return this.world.similarity();
  }

  /** A fresh copy of the pretrained base model. */
  loadBase(): Promise<LlamaModel> {
    return loadCheckpoint(this.baseDir);
  }

  /** Alpaca-like instructions of the world in `lang` (epoch 0), as examples. */
  alpaca(lang: string, limit?: number): Promise<InstructionExample[]> {
    return this.world.alpaca(lang, limit);
  }

  /** English–X sentence pairs of the training corpus (lines [offset, offset + count)). */
  parallel(lang: string, count: number, offset = 0): Promise<{ src: string; tgt: string }[]> {
    return this.world.parallel(lang, count, offset);
  }

  /** Translation instructions from the first `count` pairs: en→X ("target", the study's choice), X→en ("source") or both. */
  translationExamples(lang: string, count: number, side: "target" | "source" | "both" = "target"): Promise<InstructionExample[]> {
    return this.world.translationExamples(lang, count, side);
  }

  /** The XQuAD-like QA set of a language. */
  qaSet(lang: string): Promise<SynthQaSet> {
    return this.world.qaSet(lang);
  }

  /** The native-language instruction the world's Alpaca-like data uses for extractive QA (the most frequent one). */
  qaInstruction(lang: string): Promise<string> {
    return this.world.qaInstruction(lang);
  }

  /** Instruction-tunes a fresh copy of the base model on `examples`. */
  async tune(examples: readonly InstructionExample[], options: TuneOptions): Promise<Tuned> {
    const model = await this.loadBase();
    const outDir = options.outDir ?? scratchDir(this.cacheDir, `tune-${options.label}-seed${options.seed}`);
    return tuneModel(model, this.tokenizer, this.settings, examples, { ...options, outDir });
  }

  /**
   * One arm of a comparison: tunes on `examples`, evaluates QA (and optionally
   * translation) in each language, frees the model, and returns the numbers.
   */
  async runArm(arm: ArmSpec): Promise<ArmResult> {
    const started = performance.now();
    const tuned = await this.tune(arm.examples, {
      seed: arm.seed,
      label: `${arm.label} (seed ${arm.seed})`,
      outDir: arm.outDir,
      ...(arm.progress !== undefined ? { progress: arm.progress } : {}),
    });
    const tuneSeconds = (performance.now() - started) / 1000;
    try {
      const { qa, translation, seconds } = await this.evaluateArm(tuned.model, arm);
      return {
        label: arm.label,
        seed: arm.seed,
        examples: tuned.examples,
        steps: tuned.result.steps,
        finalLoss: tuned.result.finalLoss,
        qa,
        translation,
        tuneSeconds,
        evalSeconds: seconds,
      };
    } finally {
      await this.release(tuned.model);
    }
  }

  /** An arm's evaluations of a tuned model: QA, then en→X translation, in each of its languages; timed. */
  async evaluateArm(model: LlamaModel, arm: Pick<ArmSpec, "qaLanguages" | "translationLanguages">): Promise<ArmEvaluation> {
    const started = performance.now();
    const qa: Record<string, QaEvaluation> = {};
    for (const lang of arm.qaLanguages ?? []) qa[lang] = await this.evaluateQa(model, lang);
    const translation: Record<string, TranslationEvaluation> = {};
    for (const lang of arm.translationLanguages ?? []) translation[lang] = await this.evaluateTranslation(model, lang);
    return { qa, translation, seconds: (performance.now() - started) / 1000 };
  }

  /**
   * Greedy continuations of prompts, batched: on TF.js, or through the torch
   * engine's runner when the study trains there (settings.engine "torch", or
   * "auto" with CUDA torch) — the same tokens on the same weights (test/train/torch-engine.test.ts).
   */
  complete(model: LlamaModel, prompts: string[], maxNewTokens = this.settings.eval.maxNewTokens): Promise<string[]> {
    return this.completer.complete(model, prompts, maxNewTokens);
  }

  /** Frees a model and the weights folder the torch runner read it from, if any. */
  release(model: LlamaModel): Promise<void> {
    return this.completer.release(model);
  }

  /** Extractive QA with the native-language instruction in the Alpaca prompt; the study's scores. */
  evaluateQa(model: LlamaModel, lang: string, count = this.settings.eval.qaPerLanguage): Promise<QaEvaluation> {
    return evaluateQa(this.evalContext, model, lang, count);
  }

  /** en→X translation of the held-out (Flores-like) devtest sentences with template 0; BLEU and chrF with 95% CIs. */
  evaluateTranslation(model: LlamaModel, lang: string, count = this.settings.eval.translationsPerLanguage): Promise<TranslationEvaluation> {
    return evaluateTranslation(this.evalContext, model, lang, count);
  }

  /**
   * Can a model read? Plain-text English QA on held-out people, on counterfactual passages and the copy
   * probe (see evaluate.ts). The counterfactual row needs a world built with `world.counterfactual` > 0.
   */
  readingProbe(model: LlamaModel, limit = this.settings.eval.qaPerLanguage): Promise<ReadingProbe> {
    return readingProbe(this.evalContext, model, limit);
  }

  /**
   * The notebooks' competence table: the reading probes (English held-out, counterfactual, copy) and
   * plain-text QA in each other language, as percent rows, with the metrics a run records and the languages
   * within 5 points of chance ("not acquired").
   */
  competence(model: LlamaModel, languages: string[]): Promise<Competence> {
    return competence(this.evalContext, model, languages);
  }

  /** Plain-text QA accuracy of an untuned model per language, next to chance (has it learned the language at all?). */
  probe(
    model: LlamaModel,
    languages: string[] = ["en", ...this.settings.languages],
    limit = this.settings.eval.qaPerLanguage,
  ): Promise<ProbeResult[]> {
    return probe(this.evalContext, model, languages, limit);
  }
}
