/**
 * Shared-token rate under a trained subword tokenizer: a byte-fallback BPE
 * (src/tokenizer, the kind the notebooks train) learned on the same parallel
 * sentences in every language at once. Unlike the word-level rate it sees
 * shared stems under suffixes and shared name pieces; it depends on the
 * tokenizer trainer, so it is reported in tables but kept out of manifests.
 */
import { trainBpeTokenizer } from "../tokenizer/index.js";
import { Rng } from "../util/rng.js";
import { DEFAULT_SIZES, type SynthSizes } from "./build.js";
import { Grammar } from "./grammar.js";
import { BASE_SPEC, deriveLanguage } from "./language.js";
import { presetLanguages } from "./presets.js";
import { Realizer } from "./realize.js";
import { parallelSentence } from "./tasks.js";
import { generateWorld } from "./world.js";

/**
 * Per language: the share of its BPE tokens (by occurrence) whose id also
 * occurs on the English side, for the sentences `presetSimilarity` measures.
 *
 * @example
 * await presetBpeSharing("paper", 1); // { ar: 0.37, ..., xx: 0.85 }
 */
export async function presetBpeSharing(
  preset: string,
  seed: number,
  vocabSize = 4000,
  world: Partial<Pick<SynthSizes, "people" | "heldOutPeople" | "places">> = {},
  sentences = 2000,
): Promise<Record<string, number>> {
  const specs = presetLanguages(preset);
  const sizes = { ...DEFAULT_SIZES, ...world };
  const root = new Rng(seed);
  const w = generateWorld(root.fork("world"), { people: sizes.people, heldOutPeople: sizes.heldOutPeople, places: sizes.places });
  const g = new Grammar(w);
  const rng = root.fork("similarity");
  const clauses = Array.from({ length: sentences }, () => parallelSentence(g, rng).clause);
  const english = new Realizer(deriveLanguage(BASE_SPEC), w.names);
  const en = clauses.map((c) => english.sentence(c).text);
  const sides = specs.map((s) => {
    const r = new Realizer(deriveLanguage(s), w.names);
    return clauses.map((c) => r.sentence(c).text);
  });
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
