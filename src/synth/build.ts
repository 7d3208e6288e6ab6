/**
 * `buildSynthWorld`: every data set of a preset's languages, written in the
 * formats the data toolkit reads, plus a manifest with settings, sizes,
 * chance levels, measured similarity and file hashes. All sizes are checked
 * before the first file is written; each file is written atomically.
 */
import { join } from "node:path";
import { FLORES_CODES } from "../data/readers/flores.js";
import { ConfigError } from "../util/errors.js";
import { sha256, writeFileAtomic } from "../util/fs.js";
import { BASE_SPEC, type LanguageSpec } from "./language.js";
import { type Preset, presetName, resolvePreset } from "./presets.js";
import { Realizer } from "./realize.js";
import { measureSimilarity, type Similarity } from "./similarity.js";
import { SynthWorld } from "./synth-world.js";
import {
  type AlpacaItem,
  heldOutFacts,
  locateLeaf,
  planCounterfactualPassage,
  planQaPassage,
  pretrainDocument,
  type QuestionOrder,
  renderInstruction,
  renderPassage,
} from "./tasks.js";
import { freshNamePool, RELATIONS } from "./world.js";

/** How much of everything to generate. Counts are per language unless noted. */
export interface SynthSizes {
  people: number;
  heldOutPeople: number;
  places: number;
  /** Parallel training pairs per language (English-X). */
  parallel: number;
  /** Flores-like held-out sentences (multi-way parallel). */
  dev: number;
  devtest: number;
  /** Alpaca-like instructions per language (the same tasks in every language). */
  instructions: number;
  /** XQuAD-like passages (1-3 questions each), held-out people only. */
  qa: number;
  /** Pretraining documents (lines), all languages together. */
  pretrain: number;
}

export const DEFAULT_SIZES: SynthSizes = {
  people: 1500,
  heldOutPeople: 300,
  places: 120,
  parallel: 10000,
  dev: 500,
  devtest: 500,
  instructions: 2000,
  qa: 300,
  pretrain: 30000,
};

export interface SynthBuildOptions {
  /** A preset group ("paper", "ladder"), a language code, codes joined by commas, or custom specs. */
  preset: Preset;
  seed: number;
  sizes?: Partial<SynthSizes>;
  /** Pretraining share per language code ("en" included); unnamed languages split the rest equally. */
  mix?: Record<string, number>;
  /** Instruction sets to write, each sampled fresh (epoch 0 in instructions/, epoch k in instructions/epoch-k/). */
  instructionEpochs?: number;
  /** Share of pretraining documents followed by questions and answers (plain-text QA). */
  pretrainQaShare?: number;
  /**
   * Share of those QA documents whose people get freshly drawn facts (default 0): answerable only by
   * reading the passage, never from memory of the world.
   */
  pretrainFreshShare?: number;
  /** Questions (with answers) after each QA pretraining document, at most (default 2). */
  pretrainQuestions?: number;
  /** Which of a QA document's questions are asked, in what order (default "passage"; see QuestionOrder). */
  pretrainQuestionOrder?: QuestionOrder;
  /**
   * Fresh-fact QA documents are about invented people (default false): each gets a name the world does not use
   * (two syllables, like every person's), so the names in them are as new to the tokenizer and the model as the
   * held-out people's are. Needs pretrainFreshShare > 0.
   */
  pretrainFreshNames?: boolean;
  /**
   * Every instruction (every epoch, every language) is about invented people with freshly drawn facts (default
   * false), named as pretrainFreshNames names them, so an instruction's answer can only come from its passage.
   * Off, instructions are about train people with the world's facts, which pretraining taught: QA instructions
   * can then be answered from memory, and tuning on them teaches a model to answer held-out questions from
   * memory too (issue 16, deviation 20).
   */
  instructionFreshFacts?: boolean;
  /**
   * Counterfactual QA passages per language (default 0): train people with freshly drawn facts, written
   * to qa/counterfactual.<lang>.json with each question's memorised (world) answer, for the probe.
   */
  counterfactual?: number;
  /** Sentences used to measure similarity to English. */
  similaritySentences?: number;
  /** Called with a short label as each part is done. */
  onProgress?: (label: string, done: number, total: number) => void;
}

export interface ManifestFile {
  path: string;
  sha256: string;
  bytes: number;
  /** Lines for text files, records for JSON. */
  count: number;
}

/** The version of the generated data: bumped whenever the same seed would give different bytes. */
export const SYNTH_FORMAT = 1;

export interface SynthManifest {
  generator: string;
  format: number;
  preset: string;
  seed: number;
  sizes: SynthSizes;
  mix: Record<string, number>;
  pretrainQaShare: number;
  pretrainFreshShare?: number;
  pretrainQuestions?: number;
  pretrainQuestionOrder?: QuestionOrder;
  pretrainFreshNames?: boolean;
  instructionFreshFacts?: boolean;
  counterfactual?: number;
  languages: LanguageSpec[];
  /** Chance level of each QA set (mean over its questions of 1 / same-type candidates in the passage). */
  qaChance: Record<string, number>;
  qaQuestions: number;
  similarity: Similarity[];
  heldOutFacts: number;
  files: ManifestFile[];
}

const SIZE_KEYS = Object.keys(DEFAULT_SIZES) as (keyof SynthSizes)[];

/**
 * Parses "parallel=8000,dev=500" into sizes; unknown keys and bad numbers are ConfigErrors.
 *
 * @example
 * parseSizes("parallel=2000,qa=50"); // { parallel: 2000, qa: 50 }
 */
export function parseSizes(text: string): Partial<SynthSizes> {
  const out: Partial<SynthSizes> = {};
  for (const part of text.split(",").filter((p) => p.trim() !== "")) {
    const [key, value] = part.split("=").map((s) => s.trim());
    if (!SIZE_KEYS.includes(key as keyof SynthSizes)) {
      throw new ConfigError("XA_SYNTH_SIZE", `unknown size "${key}"`, { field: "sizes", hint: `use ${SIZE_KEYS.join(", ")}` });
    }
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new ConfigError("XA_SYNTH_SIZE", `size ${key}=${value} is not a non-negative integer`, { field: `sizes.${key}` });
    out[key as keyof SynthSizes] = n;
  }
  return out;
}

/** Parses "en=0.9,zh=0.02" into pretraining shares. */
export function parseMix(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(",").filter((p) => p.trim() !== "")) {
    const [key, value] = part.split("=").map((s) => s.trim());
    const n = Number(value);
    if (!key || !(n >= 0 && n <= 1))
      throw new ConfigError("XA_SYNTH_MIX", `mix entry "${part}" needs a language code and a share in [0, 1]`, { field: "mix" });
    out[key] = n;
  }
  return out;
}

/** The full pretraining mix: named shares kept, the rest split equally among unnamed languages. */
export function resolveMix(codes: readonly string[], mix: Record<string, number> = {}): Record<string, number> {
  const all = ["en", ...codes];
  for (const k of Object.keys(mix)) {
    if (!all.includes(k))
      throw new ConfigError("XA_SYNTH_MIX", `mix names "${k}", which is not in this build`, {
        field: "mix",
        hint: `use ${all.join(", ")}`,
      });
  }
  const given = { en: 0.86, ...mix } as Record<string, number>;
  const named = all.filter((c) => given[c] !== undefined);
  const rest = 1 - named.reduce((s, c) => s + (given[c] as number), 0);
  const unnamed = all.filter((c) => given[c] === undefined);
  if (rest < -1e-9 || (unnamed.length === 0 && Math.abs(rest) > 1e-6)) {
    throw new ConfigError("XA_SYNTH_MIX", `pretraining shares sum to ${(1 - rest).toFixed(4)}, not 1`, {
      field: "mix",
      hint: "make the shares add up to 1",
    });
  }
  const out: Record<string, number> = {};
  for (const c of all) out[c] = given[c] ?? Math.max(0, rest) / unnamed.length;
  return out;
}

function checkSizes(s: SynthSizes): void {
  for (const k of SIZE_KEYS) {
    if (!Number.isInteger(s[k]) || s[k] < 0)
      throw new ConfigError("XA_SYNTH_SIZE", `size ${k}=${s[k]} is not a non-negative integer`, { field: `sizes.${k}` });
  }
  const facts = s.heldOutPeople * RELATIONS.length;
  if (s.dev + s.devtest > facts) {
    throw new ConfigError(
      "XA_SYNTH_SIZE",
      `dev (${s.dev}) + devtest (${s.devtest}) sentences need more held-out facts than the world has (${facts})`,
      {
        field: "sizes.dev",
        hint: `lower dev/devtest or raise heldOutPeople (each held-out person gives ${RELATIONS.length} facts)`,
      },
    );
  }
}

const lines = (xs: readonly string[]) => (xs.length ? `${xs.join("\n")}\n` : "");

/**
 * Generates and writes a synthetic world's data sets under `outDir`.
 *
 * @example
 * const manifest = await buildSynthWorld("out/synth", { preset: "paper", seed: 1 });
 * manifest.files.length;
 */
export async function buildSynthWorld(outDir: string, options: SynthBuildOptions): Promise<SynthManifest> {
  const specs = resolvePreset(options.preset);
  const sizes: SynthSizes = { ...DEFAULT_SIZES, ...options.sizes };
  checkSizes(sizes);
  const mix = resolveMix(
    specs.map((s) => s.code),
    options.mix,
  );
  const qaShare = options.pretrainQaShare ?? 0.3;
  if (!(qaShare >= 0 && qaShare <= 1))
    throw new ConfigError("XA_SYNTH_SHARE", `pretrainQaShare ${qaShare} is outside [0, 1]`, { field: "pretrainQaShare" });
  const freshShare = options.pretrainFreshShare ?? 0;
  if (!(freshShare >= 0 && freshShare <= 1))
    throw new ConfigError("XA_SYNTH_SHARE", `pretrainFreshShare ${freshShare} is outside [0, 1]`, { field: "pretrainFreshShare" });
  const perDoc = options.pretrainQuestions ?? 2;
  if (!Number.isInteger(perDoc) || perDoc < 1 || perDoc > 8)
    throw new ConfigError("XA_SYNTH_SIZE", `pretrainQuestions ${perDoc} is not an integer in [1, 8]`, { field: "pretrainQuestions" });
  const order = options.pretrainQuestionOrder ?? "passage";
  if (order !== "passage" && order !== "random")
    throw new ConfigError("XA_SYNTH_ORDER", `pretrainQuestionOrder "${String(order)}" is neither "passage" nor "random"`, {
      field: "pretrainQuestionOrder",
      hint: 'use "random" (questions drawn and ordered at random) or "passage" (the first facts, in passage order)',
    });
  const freshNames = options.pretrainFreshNames ?? false;
  if (typeof freshNames !== "boolean")
    throw new ConfigError("XA_SYNTH_NAMES", `pretrainFreshNames ${String(freshNames)} is not true or false`, {
      field: "pretrainFreshNames",
    });
  if (freshNames && freshShare === 0)
    throw new ConfigError("XA_SYNTH_NAMES", "pretrainFreshNames needs fresh-fact QA documents, but pretrainFreshShare is 0", {
      field: "pretrainFreshNames",
      hint: "set pretrainFreshShare above 0 (e.g. 1), or leave pretrainFreshNames off",
    });
  const freshInstructions = options.instructionFreshFacts ?? false;
  if (typeof freshInstructions !== "boolean")
    throw new ConfigError("XA_SYNTH_NAMES", `instructionFreshFacts ${String(freshInstructions)} is not true or false`, {
      field: "instructionFreshFacts",
    });
  const counterfactual = options.counterfactual ?? 0;
  if (!Number.isInteger(counterfactual) || counterfactual < 0)
    throw new ConfigError("XA_SYNTH_SIZE", `counterfactual ${counterfactual} is not a non-negative integer`, { field: "counterfactual" });
  const epochs = options.instructionEpochs ?? 1;
  if (!Number.isInteger(epochs) || epochs < 1 || epochs > 100) {
    throw new ConfigError("XA_SYNTH_SIZE", `instructionEpochs ${epochs} is not an integer in [1, 100]`, { field: "instructionEpochs" });
  }
  const progress = options.onProgress ?? (() => {});
  const sw = new SynthWorld(options.preset, options.seed, {
    people: sizes.people,
    heldOutPeople: sizes.heldOutPeople,
    places: sizes.places,
  });
  const { world, grammar: g, english, languages: realizers } = sw;
  const all = [english, ...realizers];
  // Invented people's names follow the world's in these realisers' name lists (world indices unchanged, so
  // they write the world's people exactly as `all` does).
  const block = freshNames || freshInstructions ? freshNamePool(world, sw.rng("fresh-names")) : undefined;
  const writers = block ? all.map((r) => new Realizer(r.language, block.names)) : all;
  const files = new Map<string, { text: string; count: number }>();
  const steps = 6 + realizers.length;
  let step = 0;

  // Parallel corpora, one independent stream per language.
  for (const r of realizers) {
    const { en, text: xx } = sw.parallel(r.language.spec.code, sizes.parallel);
    const dir = `parallel/en-${r.language.spec.code}`;
    files.set(`${dir}/train.en`, { text: lines(en), count: en.length });
    files.set(`${dir}/train.${r.language.spec.code}`, { text: lines(xx), count: xx.length });
    progress(`parallel en-${r.language.spec.code}`, ++step, steps);
  }

  // Flores-like held-out sets: distinct held-out facts, multi-way parallel.
  const [devFacts, devtestFacts] = heldOutFacts(world, sw.rng("flores"), sizes.dev, sizes.devtest);
  const phrasing = sw.rng("flores-phrasing");
  for (const [split, facts] of [
    ["dev", devFacts],
    ["devtest", devtestFacts],
  ] as const) {
    const sentences = (facts ?? []).map((f) => g.fact(f.person, f.relation, phrasing));
    for (const r of all) {
      const out = sentences.map((s) => r.sentence(s.clause).text);
      files.set(`flores/${split}/${floresName(r.language.spec.code)}.${split}`, { text: lines(out), count: out.length });
    }
  }
  progress("flores", ++step, steps);

  // Alpaca-like instructions: one plan, realised in every language; a fresh sample per epoch.
  for (let epoch = 0; epoch < epochs; epoch++) {
    const plans = sw.instructionPlans(sizes.instructions, epoch, freshInstructions ? block : undefined);
    for (const r of writers) {
      const items: AlpacaItem[] = plans.map((p) => renderInstruction(r, p));
      const dir = epoch === 0 ? "instructions" : `instructions/epoch-${epoch}`;
      files.set(`${dir}/alpaca.${r.language.spec.code}.json`, { text: `${JSON.stringify(items, null, 1)}\n`, count: items.length });
    }
  }
  progress("instructions", ++step, steps);

  // XQuAD-like QA over held-out people.
  const qrng = sw.rng("qa");
  const qa = Array.from({ length: sizes.qa }, () => planQaPassage(g, qrng));
  const questions = qa.reduce((n, p) => n + p.questions.length, 0);
  const chance = questions ? qa.reduce((s, p) => s + p.questions.reduce((t, q) => t + q.chance, 0), 0) / questions : 0;
  const qaChance: Record<string, number> = {};
  for (const r of all) {
    const code = r.language.spec.code;
    const data = qa.map((p, i) => {
      const passage = renderPassage(r, p.sentences);
      return {
        title: `synth-${i}`,
        paragraphs: [
          {
            context: passage.text,
            qas: p.questions.map((q, k) => {
              const a = locateLeaf(passage, q.sentence, q.leaf);
              return {
                id: `synth-${i}-${k}`,
                question: r.sentence(q.question.clause).text,
                answers: [{ text: a.text, answer_start: a.start }],
                answer_type: q.question.type,
                chance: round(q.chance),
              };
            }),
          },
        ],
      };
    });
    qaChance[code] = round(chance);
    const doc = { version: `xalign-synth-${SYNTH_FORMAT}`, language: code, chance: round(chance), data };
    files.set(`qa/xquad.${code}.json`, { text: `${JSON.stringify(doc, null, 1)}\n`, count: questions });
  }
  progress("qa", ++step, steps);

  // Counterfactual QA over train people with fresh facts, and the answer a model recalling the world would give.
  if (counterfactual > 0) {
    const crng = sw.rng("counterfactual");
    const plans = Array.from({ length: counterfactual }, () => planCounterfactualPassage(g, crng));
    for (const r of all) {
      const code = r.language.spec.code;
      const data = plans.map((p, i) => {
        const passage = renderPassage(r, p.fresh.sentences);
        const recalled = renderPassage(r, p.world);
        return {
          title: `counterfactual-${i}`,
          paragraphs: [
            {
              context: passage.text,
              qas: p.fresh.questions.map((q, k) => {
                const a = locateLeaf(passage, q.sentence, q.leaf);
                return {
                  id: `counterfactual-${i}-${k}`,
                  question: r.sentence(q.question.clause).text,
                  answers: [{ text: a.text, answer_start: a.start }],
                  answer_type: q.question.type,
                  chance: round(q.chance),
                  memorised: locateLeaf(recalled, q.sentence, q.leaf).text,
                };
              }),
            },
          ],
        };
      });
      const n = plans.reduce((a, p) => a + p.fresh.questions.length, 0);
      const mean = plans.reduce((a, p) => a + p.fresh.questions.reduce((t, q) => t + q.chance, 0), 0) / Math.max(1, n);
      const doc = { version: `xalign-synth-${SYNTH_FORMAT}`, language: code, chance: round(mean), data };
      files.set(`qa/counterfactual.${code}.json`, { text: `${JSON.stringify(doc, null, 1)}\n`, count: n });
    }
  }

  // The imbalanced pretraining corpus: one document per line, languages drawn by the mix.
  const prng = sw.rng("pretrain");
  const weights = all.map((r) => mix[r.language.spec.code] as number);
  const docs: string[] = [];
  const langs: string[] = [];
  for (let i = 0; i < sizes.pretrain; i++) {
    const r = writers[prng.weighted(weights)] as Realizer;
    docs.push(pretrainDocument(g, r, prng, qaShare, freshShare, perDoc, order, freshNames ? block : undefined));
    langs.push(r.language.spec.code);
  }
  files.set("pretrain/corpus.txt", { text: lines(docs), count: docs.length });
  files.set("pretrain/corpus.langs", { text: lines(langs), count: langs.length });
  progress("pretrain", ++step, steps);

  const similarity = roundSimilarity(measureSimilarity(g, english, realizers, sw.rng("similarity"), options.similaritySentences ?? 2000));
  progress("similarity", ++step, steps);

  const listed: ManifestFile[] = [];
  for (const [path, f] of [...files].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    await writeFileAtomic(join(outDir, path), f.text);
    listed.push({ path, sha256: sha256(f.text), bytes: Buffer.byteLength(f.text), count: f.count });
  }
  const manifest: SynthManifest = {
    generator: "xalign synth build",
    format: SYNTH_FORMAT,
    preset: presetName(options.preset),
    seed: options.seed,
    sizes,
    mix,
    pretrainQaShare: qaShare,
    ...(freshShare > 0 ? { pretrainFreshShare: freshShare } : {}),
    ...(counterfactual > 0 ? { counterfactual } : {}),
    ...(perDoc !== 2 ? { pretrainQuestions: perDoc } : {}),
    ...(order !== "passage" ? { pretrainQuestionOrder: order } : {}),
    ...(freshNames ? { pretrainFreshNames: true } : {}),
    ...(freshInstructions ? { instructionFreshFacts: true } : {}),
    languages: [BASE_SPEC, ...specs],
    qaChance,
    qaQuestions: questions,
    similarity,
    heldOutFacts: world.heldOutPeople.length * RELATIONS.length,
    files: listed,
  };
  await writeFileAtomic(join(outDir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  progress("manifest", ++step, steps);
  return manifest;
}

function roundSimilarity(rows: Similarity[]): Similarity[] {
  return rows.map((s) => ({ ...s, sharedTokenRate: round(s.sharedTokenRate), crossingRate: round(s.crossingRate) }));
}

/**
 * The similarity rows a build of `preset` with this seed and world would
 * record in its manifest, without generating any data set.
 *
 * @example
 * similarityTable(presetSimilarity("ladder", 1));
 */
export function presetSimilarity(
  preset: Preset,
  seed: number,
  world: Partial<Pick<SynthSizes, "people" | "heldOutPeople" | "places">> = {},
  sentences = 2000,
): Pick<SynthManifest, "languages" | "similarity"> {
  const sw = new SynthWorld(preset, seed, world);
  return {
    languages: [BASE_SPEC, ...sw.specs],
    similarity: roundSimilarity(measureSimilarity(sw.grammar, sw.english, sw.languages, sw.rng("similarity"), sentences)),
  };
}

/** Flores-101 file names for the study's codes (what the data toolkit's Flores reader looks for), else the code. */
export function floresName(code: string): string {
  return FLORES_CODES[code]?.flores101 ?? code;
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}
