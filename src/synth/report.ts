/**
 * The presets' similarity table for datasets/README.md, generated from a
 * build manifest so the documented figures are the measured ones.
 */
import type { SynthManifest } from "./build.js";
import type { LanguageSpec } from "./language.js";
import type { Similarity } from "./similarity.js";

/**
 * Orders languages from most to least English-like: by shared-token rate
 * (descending), ties broken by crossing rate (ascending), then by code.
 */
export function orderBySimilarity(rows: readonly Similarity[]): Similarity[] {
  return [...rows].sort((a, b) => b.sharedTokenRate - a.sharedTokenRate || a.crossingRate - b.crossingRate || (a.code < b.code ? -1 : 1));
}

/**
 * A markdown table of each language's settings and measured similarity, in
 * {@link orderBySimilarity} order; with `bpe` (from presetBpeSharing) a last
 * column gives the shared-token rate under a trained BPE.
 *
 * @example
 * similarityTable(manifest); // "| code | stands for | share | ... |"
 */
export function similarityTable(manifest: Pick<SynthManifest, "languages" | "similarity">, bpe?: Record<string, number>): string {
  const specs = new Map<string, LanguageSpec>(manifest.languages.map((l) => [l.code, l]));
  const head = `| code | stands for | share | script | order | adjectives | adpositions | morphology | questions | articles | spaces | shared-token rate | crossing rate |${bpe ? " BPE shared-token rate |" : ""}`;
  const rule = `|---|---|---:|---|---|---|---|---|---|---|---|---:|---:|${bpe ? "---:|" : ""}`;
  const rows = orderBySimilarity(manifest.similarity).map((s) => {
    const l = specs.get(s.code) as LanguageSpec;
    const yn = (b: boolean) => (b ? "yes" : "no");
    return `| ${s.code} | ${l.name} | ${l.share} | ${l.script} | ${l.order.toUpperCase()} | ${l.adjectives} noun | ${l.adpositions === "pre" ? "prepositions" : "postpositions"} | ${l.morphology} | ${l.questions} | ${yn(l.articles)} | ${yn(l.spaces)} | ${s.sharedTokenRate.toFixed(3)} | ${s.crossingRate.toFixed(3)} |${bpe ? ` ${(bpe[s.code] ?? 0).toFixed(3)} |` : ""}`;
  });
  return [head, rule, ...rows].join("\n");
}
