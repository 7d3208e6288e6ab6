/**
 * Shared-token rate under a trained subword tokenizer: a byte-fallback BPE
 * (src/tokenizer, the kind the notebooks train) learned on the same parallel
 * sentences in every language at once. Unlike the word-level rate it sees
 * shared stems under suffixes and shared name pieces; it depends on the
 * tokenizer trainer, so it is reported in tables but kept out of manifests.
 */
import { trainBpeTokenizer } from "../tokenizer/index.js";
import type { Preset } from "./presets.js";
import { SynthWorld } from "./synth-world.js";
import { parallelSentence } from "./tasks.js";
import type { WorldSizes } from "./world.js";

/**
 * Per language: the share of its BPE tokens (by occurrence) whose id also
 * occurs on the English side, for the sentences `presetSimilarity` measures.
 *
 * @example
 * await presetBpeSharing("paper", 1); // { ar: 0.37, ..., xx: 0.85 }
 */
export async function presetBpeSharing(
  preset: Preset,
  seed: number,
  vocabSize = 4000,
  world: Partial<WorldSizes> = {},
  sentences = 2000,
): Promise<Record<string, number>> {
  const sw = new SynthWorld(preset, seed, world);
  const rng = sw.rng("similarity");
  const clauses = Array.from({ length: sentences }, () => parallelSentence(sw.grammar, rng).clause);
  const en = clauses.map((c) => sw.english.sentence(c).text);
  const sides = sw.languages.map((r) => clauses.map((c) => r.sentence(c).text));
  const specs = sw.specs;
  const tok = await trainBpeTokenizer({ texts: [en.join("\n"), ...sides.map((s) => s.join("\n"))] }, { vocabSize });
  const enIds = new Set((await tok.encodeBatch(en)).flat());
  const out: Record<string, number> = {};
  for (let i = 0; i < specs.length; i++) {
    const ids = (await tok.encodeBatch(sides[i] as string[])).flat();
    const shared = ids.filter((id) => enIds.has(id)).length;
    out[(specs[i] as { code: string }).code] = Math.round((ids.length ? shared / ids.length : 0) * 1000) / 1000;
  }
  return out;
}
