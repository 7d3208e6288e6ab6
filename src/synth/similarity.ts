/**
 * Measured similarity of a language to the base: the shared-token rate under
 * one common tokenizer, and the word-alignment crossing rate, exact because
 * the generator knows which words express which leaves.
 */
import type { Rng } from "../util/rng.js";
import type { Grammar } from "./grammar.js";
import type { Realized, Realizer } from "./realize.js";
import { parallelSentence } from "./tasks.js";

/** The common tokenizer: runs of letters/digits, and each Han character alone (no spaces there). */
export function commonTokens(text: string): string[] {
  return text.toLowerCase().match(/\p{Script=Han}|[^\s\p{P}\p{Script=Han}]+/gu) ?? [];
}

export interface Similarity {
  code: string;
  /** Share of the language's tokens whose type also occurs in the English side. */
  sharedTokenRate: number;
  /** Share of pairs of alignment links that cross (0 for monotone order). */
  crossingRate: number;
  sentences: number;
}

/** Alignment links (English word, target word) for one sentence pair. */
export function alignmentLinks(english: Realized, target: Realized): [number, number][] {
  const pos = new Map<number, number>();
  english.ids.forEach((ids, i) => {
    for (const id of ids) pos.set(id, i);
  });
  const links: [number, number][] = [];
  const seen = new Set<number>();
  target.ids.forEach((ids, j) => {
    for (const id of ids) {
      const i = pos.get(id);
      if (i === undefined || seen.has(i * 1000 + j)) continue;
      seen.add(i * 1000 + j);
      links.push([i, j]);
    }
  });
  return links;
}

/** Number of crossing pairs and of all pairs among links. */
export function crossings(links: readonly [number, number][]): { crossing: number; pairs: number } {
  let crossing = 0;
  let pairs = 0;
  for (let a = 0; a < links.length; a++) {
    for (let b = a + 1; b < links.length; b++) {
      const [i1, j1] = links[a] as [number, number];
      const [i2, j2] = links[b] as [number, number];
      if (i1 === i2 || j1 === j2) continue;
      pairs++;
      if ((i1 - i2) * (j1 - j2) < 0) crossing++;
    }
  }
  return { crossing, pairs };
}

/**
 * Measures each language against the base on `n` parallel sentences.
 *
 * @example
 * measureSimilarity(grammar, english, [zh], new Rng(0), 2000)[0].sharedTokenRate;
 */
export function measureSimilarity(g: Grammar, english: Realizer, languages: readonly Realizer[], rng: Rng, n = 2000): Similarity[] {
  const sentences = Array.from({ length: n }, () => parallelSentence(g, rng));
  const en = sentences.map((s) => english.sentence(s.clause));
  const enTypes = new Set(en.flatMap((r) => commonTokens(r.text)));
  return languages.map((lang) => {
    let shared = 0;
    let total = 0;
    let crossing = 0;
    let pairs = 0;
    sentences.forEach((s, k) => {
      const real = lang.sentence(s.clause);
      for (const t of commonTokens(real.text)) {
        total++;
        if (enTypes.has(t)) shared++;
      }
      const c = crossings(alignmentLinks(en[k] as Realized, real));
      crossing += c.crossing;
      pairs += c.pairs;
    });
    return {
      code: lang.language.spec.code,
      sharedTokenRate: total ? shared / total : 0,
      crossingRate: pairs ? crossing / pairs : 0,
      sentences: n,
    };
  });
}
