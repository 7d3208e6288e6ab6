/**
 * The study's tokenizer: a BPE trained on a built world's pretraining corpus
 * and a sample of its instructions, cached per world and tokenizer settings.
 *
 * @example
 * const tok = await prepareTokenizer(settings.tokenizer, world, cacheRoot());
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { renderPrompt } from "../data/prompt.js";
import { loadTokenizer, type Tokenizer, trainBpeTokenizer } from "../tokenizer/index.js";
import { cached, cacheKey } from "./cache.js";
import type { StudySettings } from "./settings.js";
import type { PreparedWorld } from "./world.js";

/** The study's tokenizer, loaded from the cache, and its cache key (what the base model's key names). */
export interface PreparedTokenizer {
  tokenizer: Tokenizer;
  key: string;
}

/** Trains the tokenizer of `settings` on `world` in the cache under `cacheDir`, or finds it there, and loads it. */
export async function prepareTokenizer(
  settings: StudySettings["tokenizer"],
  world: PreparedWorld,
  cacheDir: string,
  onStatus?: (message: string) => void,
): Promise<PreparedTokenizer> {
  const { vocabSize, splitPunctuation } = settings;
  const tokConfig = { world: world.key, vocabSize, ...(splitPunctuation ? { splitPunctuation } : {}) };
  const tokDir = await cached(
    cacheDir,
    "tokenizer",
    tokConfig,
    async (dir) => (await trainStudyTokenizer(world.dir, vocabSize, { splitPunctuation: splitPunctuation ?? false })).save(dir),
    onStatus,
  );
  return { tokenizer: await loadTokenizer(tokDir), key: cacheKey("tokenizer", tokConfig) };
}

/** A BPE tokenizer on the world's pretraining corpus and a sample of its instructions (so prompt words are known). */
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
