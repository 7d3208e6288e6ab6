/**
 * The study's synthetic world: its cached build (keyed by the world settings)
 * and `StudyWorld`, the reader of a built world's files — manifest and
 * similarity, Alpaca-like instructions, parallel pairs and translation
 * instructions, the XQuAD-like QA sets, the Flores-like devtest pairs.
 *
 * @example
 * const world = await prepareWorld(studySettings("quick"), cacheRoot());
 * const pairs = await new StudyWorld(world.dir).parallel("vi", 100);
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { buildTranslationInstructions } from "../data/builders.js";
import type { InstructionExample } from "../data/example.js";
import { floresFile } from "../data/readers/flores.js";
import { buildSynthWorld, type SynthQaSet } from "../synth/index.js";
import { readTextLines } from "../train/sequences.js";
import { DataError } from "../util/errors.js";
import { cached, cacheKey } from "./cache.js";
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

export interface WorldManifest {
  preset: string;
  seed: number;
  mix: Record<string, number>;
  similarity: { code: string; sharedTokenRate: number; crossingRate: number; sentences: number }[];
  languages: { code: string; name: string; share: number; script: string; order: string }[];
  [key: string]: unknown;
}

/** A built world in the cache: its folder and its cache key (what the tokenizer's key names). */
export interface PreparedWorld {
  dir: string;
  key: string;
}

/** Builds the world of `settings` in the cache under `cacheDir`, or finds it there. */
export async function prepareWorld(
  settings: StudySettings,
  cacheDir: string,
  onStatus?: (message: string) => void,
): Promise<PreparedWorld> {
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
    ...(w.questionOrder && w.questionOrder !== "passage" ? { questionOrder: w.questionOrder } : {}),
    ...(w.freshNames ? { freshNames: true } : {}),
    ...(w.freshInstructions ? { freshInstructions: true } : {}),
  };
  const dir = await cached(
    cacheDir,
    "world",
    worldConfig,
    async (out) => {
      await buildSynthWorld(out, {
        preset: settings.world.preset,
        seed: settings.seed,
        sizes: w.sizes,
        ...(w.mix ? { mix: w.mix } : {}),
        ...(w.qaShare !== undefined ? { pretrainQaShare: w.qaShare } : {}),
        ...(w.freshShare ? { pretrainFreshShare: w.freshShare } : {}),
        ...(w.counterfactual ? { counterfactual: w.counterfactual } : {}),
        ...(w.questions !== undefined ? { pretrainQuestions: w.questions } : {}),
        ...(w.questionOrder ? { pretrainQuestionOrder: w.questionOrder } : {}),
        ...(w.freshNames ? { pretrainFreshNames: true } : {}),
        ...(w.freshInstructions ? { instructionFreshFacts: true } : {}),
      });
    },
    onStatus,
  );
  return { dir, key: cacheKey("world", worldConfig) };
}

/** Template names of a study language (the synthetic control "xx" has no ISO 639 name). */
export function studyNames(lang: string): { src: string; tgt: string } {
  return { src: "English", tgt: LANGUAGE_NAMES[lang] ?? lang };
}

/** Reads a built world's files (QA sets are read once and kept). */
export class StudyWorld {
  private readonly qaSets = new Map<string, SynthQaSet>();

  constructor(readonly dir: string) {}

  /** The world's manifest: languages, sizes, chance levels and measured similarity to English. */
  async manifest(): Promise<WorldManifest> {
    return JSON.parse(await readFile(join(this.dir, "manifest.json"), "utf8")) as WorldManifest;
  }

  /** Each study language's measured distance from English, as table rows. */
  async similarity(): Promise<{ lang: string; name: string; shared_token_rate: number; crossing_rate: number; pretrain_share: number }[]> {
    const m = await this.manifest();
    return m.similarity.map((s) => ({
      lang: s.code,
      name: LANGUAGE_NAMES[s.code] ?? s.code,
      shared_token_rate: s.sharedTokenRate,
      crossing_rate: s.crossingRate,
      pretrain_share: m.mix[s.code] ?? 0,
    }));
  }

  /** Alpaca-like instructions of the world in `lang` (epoch 0), as examples. */
  async alpaca(lang: string, limit?: number): Promise<InstructionExample[]> {
    const file = join(this.dir, "instructions", `alpaca.${lang}.json`);
    const records = JSON.parse(await readFile(file, "utf8")) as { instruction: string; input: string; output: string }[];
    return records
      .slice(0, limit ?? records.length)
      .map((r, i) => ({ id: `alpaca-${lang}:${i}`, ...r, lang, source: `alpaca-${lang}`, task: "general" }));
  }

  /** English–X sentence pairs of the training corpus (lines [offset, offset + count)). */
  async parallel(lang: string, count: number, offset = 0): Promise<{ src: string; tgt: string }[]> {
    const dir = join(this.dir, "parallel", `en-${lang}`);
    const [en, x] = await Promise.all([readTextLines([join(dir, "train.en")]), readTextLines([join(dir, `train.${lang}`)])]);
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

  /** The first `count` en–X pairs of the held-out (Flores-like) devtest sentences. */
  async devtestPairs(lang: string, count: number): Promise<{ src: string; tgt: string }[]> {
    const [en, x] = await Promise.all([
      readTextLines([floresFile(join(this.dir, "flores"), "en", "devtest")]),
      readTextLines([floresFile(join(this.dir, "flores"), lang, "devtest")]),
    ]);
    return en.slice(0, count).map((src, i) => ({ src, tgt: x[i] as string }));
  }

  /** The XQuAD-like QA set of a language. */
  async qaSet(lang: string): Promise<SynthQaSet> {
    const hit = this.qaSets.get(lang);
    if (hit) return hit;
    const set = JSON.parse(await readFile(join(this.dir, "qa", `xquad.${lang}.json`), "utf8")) as SynthQaSet;
    this.qaSets.set(lang, set);
    return set;
  }

  /** The English counterfactual QA set (train people with fresh facts), when the world was built with one. */
  async counterfactualQaSet(): Promise<SynthQaSet | undefined> {
    const file = join(this.dir, "qa", "counterfactual.en.json");
    return existsSync(file) ? (JSON.parse(await readFile(file, "utf8")) as SynthQaSet) : undefined;
  }

  /** The native-language instruction the world's Alpaca-like data uses for extractive QA (the most frequent one). */
  async qaInstruction(lang: string): Promise<string> {
    const counts = new Map<string, number>();
    for (const r of await this.alpaca(lang)) if (r.input.includes("\n")) counts.set(r.instruction, (counts.get(r.instruction) ?? 0) + 1);
    const best = [...counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (!best)
      throw new DataError("XA_STUDY_QA_INSTRUCTION", `no extractive QA instruction in alpaca.${lang}.json`, {
        file: join(this.dir, "instructions"),
      });
    return best[0];
  }
}
