/**
 * Cleaning filters for sentence pairs, applied in a fixed order; each removed
 * pair is counted under the first filter that removed it:
 * empty -> too short -> too long -> length ratio -> wrong script -> duplicate -> near duplicate.
 * Lengths are in UTF-16 code units of the trimmed text (characters for CJK).
 */
import { DataError } from "../util/errors.js";
import { language } from "./languages.js";
import type { SentencePair } from "./readers/aligned.js";

export interface CleanOptions {
  /** Drop pairs with an empty (whitespace-only) side. Default true. */
  dropEmpty?: boolean;
  /** Minimum length of each side. Default 1. */
  minLength?: number;
  /** Maximum length of each side. Default none. */
  maxLength?: number;
  /** Maximum longer/shorter length ratio. Default none. */
  maxRatio?: number;
  /** "exact": same pair of texts; "normalized": also case, spacing and punctuation ignored. Default "none". */
  dedupe?: "none" | "exact" | "normalized";
  /** ISO code of the language the target side must be written in (its Unicode script). */
  targetScript?: string;
  /** ISO code the source side must be written in. */
  sourceScript?: string;
  /** Fraction of letters that must be in the expected script. Default 0.5. */
  minScriptFraction?: number;
}

export const FILTER_NAMES = ["empty", "too short", "too long", "length ratio", "wrong script", "duplicate", "near duplicate"] as const;
export type FilterName = (typeof FILTER_NAMES)[number];

/** How many pairs came in, were kept, and were removed by each filter. */
export interface CleanCounts {
  input: number;
  kept: number;
  removed: Record<FilterName, number>;
}

function emptyCounts(): CleanCounts {
  return { input: 0, kept: 0, removed: Object.fromEntries(FILTER_NAMES.map((n) => [n, 0])) as Record<FilterName, number> };
}

/** A 53-bit hash of a string (two FNV-1a variants), so the duplicate sets hold numbers, not texts. */
export function hash53(text: string): number {
  return pairHash(text, "", false);
}

const NON_WORD = /[\s\p{P}\p{S}]+/gu;

/** Lower case with spaces, punctuation and symbols removed: the key of near-duplicate detection. */
export function normalizeForDedupe(text: string): string {
  return text.toLowerCase().replace(NON_WORD, "");
}

let foldTable: Uint16Array | undefined;

/**
 * Per BMP code unit, what normalisation makes of it: 0 = dropped (white space,
 * punctuation, symbols), else its lower-case code unit (itself where lower
 * case is not one code unit).
 */
function normalizationTable(): Uint16Array {
  if (foldTable) return foldTable;
  const table = new Uint16Array(0x10000);
  const nonWord = /[\s\p{P}\p{S}]/u;
  for (let c = 1; c < 0x10000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) {
      table[c] = c;
      continue;
    }
    const ch = String.fromCharCode(c);
    if (nonWord.test(ch)) continue;
    const lower = ch.toLowerCase();
    table[c] = lower.length === 1 ? lower.charCodeAt(0) : c;
  }
  foldTable = table;
  return table;
}

/** The two 32-bit halves of the last hashPairInto result (module scratch: no allocation per pair). */
let hashHi = 0;
let hashLo = 0;

function hashPairInto(a: string, b: string, normalized: boolean): void {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const fold = normalized ? normalizationTable() : undefined;
  for (let p = 0; p < 2; p++) {
    const text = p === 0 ? a : b;
    if (p === 1) {
      h1 = Math.imul(h1, 0x01000193);
      h2 = Math.imul(h2, 0x5bd1e995) ^ (h2 >>> 15);
    }
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      if (fold) {
        c = fold[c] as number;
        if (c === 0) continue;
      }
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 15);
    }
  }
  hashHi = h1 >>> 0;
  hashLo = h2 >>> 0;
}

/**
 * A 53-bit hash of `a + "\u0000" + b`, or with `normalized` of
 * `normalizeForDedupe(a) + "\u0000" + normalizeForDedupe(b)`, computed
 * without building those strings. The fast path lower-cases per code unit, so
 * it differs from normalizeForDedupe only for characters whose lower case is
 * longer (İ) and for astral symbols (emoji), which it keeps.
 */
export function pairHash(a: string, b: string, normalized: boolean): number {
  hashPairInto(a, b, normalized);
  return hashHi * 0x200000 + (hashLo & 0x1fffff);
}

/**
 * A set of 64-bit hashes in two typed arrays (open addressing, linear
 * probing): 8 bytes a slot and no allocation per insert, where a Set of
 * 53-bit numbers would box every key.
 */
class HashSet64 {
  private hi = new Uint32Array(1 << 12);
  private lo = new Uint32Array(1 << 12);
  private size = 0;

  /** True when (hi, lo) is in the set. */
  has(hi: number, lo: number): boolean {
    if (hi === 0 && lo === 0) lo = 1;
    const i = this.slot(hi, lo);
    return this.hi[i] !== 0 || this.lo[i] !== 0;
  }

  /** Adds (hi, lo); false when it was already there. */
  add(hi: number, lo: number): boolean {
    if (hi === 0 && lo === 0) lo = 1; // (0, 0) marks an empty slot
    if ((this.size + 1) * 2 > this.hi.length) this.grow();
    const i = this.slot(hi, lo);
    if (this.hi[i] !== 0 || this.lo[i] !== 0) return false;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.size++;
    return true;
  }

  /** The slot holding (hi, lo), or the empty slot where it would go. */
  private slot(hi: number, lo: number): number {
    const mask = this.hi.length - 1;
    let i = (Math.imul(hi ^ lo, 0x9e3779b1) >>> 0) & mask;
    for (;;) {
      const h = this.hi[i] as number;
      const l = this.lo[i] as number;
      if ((h === 0 && l === 0) || (h === hi && l === lo)) return i;
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const oldHi = this.hi;
    const oldLo = this.lo;
    this.hi = new Uint32Array(oldHi.length * 2);
    this.lo = new Uint32Array(oldLo.length * 2);
    this.size = 0;
    for (let i = 0; i < oldHi.length; i++) if (oldHi[i] !== 0 || oldLo[i] !== 0) this.add(oldHi[i] as number, oldLo[i] as number);
  }
}

/** Per BMP code unit: 0 not a letter, 1 a letter of the expected scripts, 2 another letter. */
type ScriptTable = Uint8Array;
const scriptTables = new Map<string, ScriptTable>();

/**
 * A lookup table for the scripts of a language, built once per script set, so
 * the per-pair check is a loop over char codes rather than regex matching.
 */
function scriptTable(lang: string): ScriptTable {
  const scripts = language(lang).scripts;
  const key = scripts.join("+");
  let table = scriptTables.get(key);
  if (table) return table;
  table = new Uint8Array(0x10000);
  const letter = /\p{L}/u;
  const expected = new RegExp(`[${scripts.map((s) => `\\p{Script=${s}}`).join("")}]`, "u");
  for (let c = 0; c < 0x10000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const ch = String.fromCharCode(c);
    if (letter.test(ch)) table[c] = expected.test(ch) ? 1 : 2;
  }
  scriptTables.set(key, table);
  return table;
}

/** Fraction of letters written in the table's scripts (1 when there are no letters). Astral letters count as other scripts. */
function scriptFraction(text: string, table: ScriptTable): number {
  let inScript = 0;
  let letters = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      letters++;
      i++;
      continue;
    }
    const k = table[c] as number;
    if (k !== 0) {
      letters++;
      if (k === 1) inScript++;
    }
  }
  return letters === 0 ? 1 : inScript / letters;
}

/**
 * A stateful pair filter (it remembers what it saw, for deduplication).
 *
 * @example
 * const cleaner = new PairCleaner({ maxLength: 200, maxRatio: 3, dedupe: "normalized", targetScript: "zh" });
 * if (cleaner.keep("Hello.", "你好。")) use(pair);
 * cleaner.counts.removed["wrong script"];
 */
export class PairCleaner {
  readonly counts: CleanCounts = emptyCounts();
  private readonly options: Required<Omit<CleanOptions, "targetScript" | "sourceScript">>;
  private readonly target: ScriptTable | undefined;
  private readonly source: ScriptTable | undefined;
  private readonly seen = new HashSet64();
  private readonly seenNormalized = new HashSet64();

  constructor(options: CleanOptions = {}) {
    this.options = {
      dropEmpty: options.dropEmpty ?? true,
      minLength: options.minLength ?? 1,
      maxLength: options.maxLength ?? Number.POSITIVE_INFINITY,
      maxRatio: options.maxRatio ?? Number.POSITIVE_INFINITY,
      dedupe: options.dedupe ?? "none",
      minScriptFraction: options.minScriptFraction ?? 0.5,
    };
    for (const [field, v] of Object.entries(this.options)) {
      if (typeof v === "number" && !(v >= 0))
        throw new DataError("XA_DATA_CLEAN", `${field} must be a non-negative number, got ${v}`, { field: `clean.${field}` });
    }
    if (!["none", "exact", "normalized"].includes(this.options.dedupe)) {
      throw new DataError("XA_DATA_CLEAN", `dedupe must be none, exact or normalized, got ${this.options.dedupe}`, {
        field: "clean.dedupe",
      });
    }
    this.target = options.targetScript ? scriptTable(options.targetScript) : undefined;
    this.source = options.sourceScript ? scriptTable(options.sourceScript) : undefined;
  }

  /** The first filter that removes this pair, or undefined when it is kept (and remembered). */
  check(src: string, tgt: string): FilterName | undefined {
    const o = this.options;
    const s = src.trim();
    const t = tgt.trim();
    if (o.dropEmpty && (s.length === 0 || t.length === 0)) return "empty";
    if (s.length < o.minLength || t.length < o.minLength) return "too short";
    if (s.length > o.maxLength || t.length > o.maxLength) return "too long";
    if (o.maxRatio !== Number.POSITIVE_INFINITY && Math.max(s.length, t.length) > o.maxRatio * Math.max(1, Math.min(s.length, t.length)))
      return "length ratio";
    if (this.target && scriptFraction(t, this.target) < o.minScriptFraction) return "wrong script";
    if (this.source && scriptFraction(s, this.source) < o.minScriptFraction) return "wrong script";
    if (o.dedupe !== "none") {
      // check both before remembering either, so a removed pair leaves no trace
      hashPairInto(s, t, false);
      const hi = hashHi;
      const lo = hashLo;
      if (this.seen.has(hi, lo)) return "duplicate";
      if (o.dedupe === "normalized") {
        hashPairInto(s, t, true);
        if (!this.seenNormalized.add(hashHi, hashLo)) return "near duplicate";
      }
      this.seen.add(hi, lo);
    }
    return undefined;
  }

  /** True when the pair passes every filter; updates the counts. */
  keep(src: string, tgt: string): boolean {
    this.counts.input++;
    const removedBy = this.check(src, tgt);
    if (removedBy === undefined) {
      this.counts.kept++;
      return true;
    }
    this.counts.removed[removedBy]++;
    return false;
  }
}

/**
 * Filters a stream of pairs.
 *
 * @example
 * const cleaner = new PairCleaner({ dedupe: "exact" });
 * for await (const pair of cleanPairs(readMosesPairs("a.en", "a.zh"), cleaner)) use(pair);
 */
export async function* cleanPairs<P extends Pick<SentencePair, "src" | "tgt">>(
  pairs: AsyncIterable<P> | Iterable<P>,
  cleaner: PairCleaner,
): AsyncGenerator<P> {
  for await (const pair of pairs) if (cleaner.keep(pair.src, pair.tgt)) yield pair;
}
