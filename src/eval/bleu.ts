/**
 * BLEU (Papineni et al., 2002) exactly as sacreBLEU 2.x computes it: the
 * same tokenisers, clipped n-gram counts with the closest (then shorter)
 * reference length, the four smoothing methods of Chen & Cherry (2014), the
 * effective-order option for sentence BLEU, and sacreBLEU's signature.
 *
 * Speed: tokens get per-segment ids and n-grams are counted as packed numbers
 * in small reusable hash tables; 100k segment pairs take about 1.6 s of CPU
 * (BENCHMARKS.md, "Evaluation").
 */
import { AnalysisError } from "../util/errors.js";
import { formatFixed, pyRstrip, pySplit } from "./pytext.js";
import { collectReferences } from "./references.js";
import { type CorpusMetric, MetricScore, type ReferenceStreams, type SegmentStatistics, sumStatistics } from "./score.js";
import { Signature } from "./signature.js";
import { type BleuTokenizer, type BleuTokenizerName, getBleuTokenizer } from "./tokenizers.js";

/** BLEU smoothing methods (Chen & Cherry 2014): none, floor (method 1), add-k (method 2), exp (method 3, mteval's). */
export type SmoothMethod = "none" | "floor" | "add-k" | "exp";

/** Default smoothing values, as sacreBLEU sets them. */
export const SMOOTH_DEFAULTS: Readonly<Record<SmoothMethod, number | undefined>> = {
  none: undefined,
  floor: 0.1,
  "add-k": 1,
  exp: undefined,
};

/** BLEU settings; defaults are sacreBLEU's. */
export interface BLEUOptions {
  /** Lowercase hypotheses and references first (signature `case:lc`). */
  lowercase?: boolean;
  /** A tokeniser name or object (default "13a"); spBLEU: `spmTokenizer(model)`. */
  tokenize?: BleuTokenizerName | BleuTokenizer;
  /** Default "exp". */
  smoothMethod?: SmoothMethod;
  /** The value for floor (default 0.1) and add-k (default 1). */
  smoothValue?: number;
  /** Highest n-gram order (default 4). */
  maxNgramOrder?: number;
  /** Drop orders with no n-grams from the geometric mean; use for sentence BLEU. */
  effectiveOrder?: boolean;
}

/** BLEU with its statistics, printed as sacreBLEU prints it. */
export class BLEUScore extends MetricScore {
  readonly ratio: number;

  constructor(
    score: number,
    readonly counts: number[],
    readonly totals: number[],
    readonly precisions: number[],
    readonly bp: number,
    readonly sysLen: number,
    readonly refLen: number,
  ) {
    super("BLEU", score);
    this.ratio = refLen ? sysLen / refLen : 0;
  }

  protected override verbose(): string {
    const prec = this.precisions.map((p) => formatFixed(p, 1)).join("/");
    return `${prec} (BP = ${formatFixed(this.bp, 3)} ratio = ${formatFixed(this.ratio, 3)} hyp_len = ${this.sysLen} ref_len = ${this.refLen})`;
  }
}

// mteval's floor for log(0), kept so "no smoothing" scores match to the digit.
const LOG_ZERO = -9999999999;

/**
 * Corpus and sentence BLEU.
 *
 * @example
 * const bleu = new BLEU();
 * const s = bleu.corpusScore(["The cat sat on the mat."], [["The cat sat on the mat."]]);
 * s.score; // 100
 * s.format(); // "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 100.00 100.0/100.0/100.0/100.0 (BP = ...)"
 */
export class BLEU implements CorpusMetric<BLEUScore> {
  readonly lowercase: boolean;
  readonly tokenizer: BleuTokenizer;
  readonly smoothMethod: SmoothMethod;
  readonly smoothValue: number | undefined;
  readonly maxNgramOrder: number;
  readonly effectiveOrder: boolean;

  constructor(options: BLEUOptions = {}) {
    this.lowercase = options.lowercase ?? false;
    this.tokenizer = getBleuTokenizer(options.tokenize ?? "13a");
    this.smoothMethod = options.smoothMethod ?? "exp";
    if (!(this.smoothMethod in SMOOTH_DEFAULTS)) {
      throw new AnalysisError("XA_EVAL_SMOOTH", `unknown smoothing method "${this.smoothMethod}"`, {
        field: "smoothMethod",
        hint: "use none, floor, add-k or exp",
      });
    }
    this.smoothValue = options.smoothValue;
    this.maxNgramOrder = options.maxNgramOrder ?? 4;
    if (!Number.isInteger(this.maxNgramOrder) || this.maxNgramOrder < 1) {
      throw new AnalysisError("XA_EVAL_ORDER", `maxNgramOrder must be a positive integer, got ${this.maxNgramOrder}`, {
        field: "maxNgramOrder",
      });
    }
    this.effectiveOrder = options.effectiveOrder ?? false;
  }

  /** The tokens BLEU counts for one segment (lowercasing, tokeniser, whitespace split). */
  tokens(segment: string): string[] {
    const s = pyRstrip(this.lowercase ? segment.toLowerCase() : segment);
    return this.tokenizer.tokens ? this.tokenizer.tokens(s) : pySplit(this.tokenizer.tokenize(s));
  }

  /** Corpus BLEU over hypotheses and reference streams (`references[k][i]`). */
  corpusScore(hypotheses: readonly string[], references: ReferenceStreams): BLEUScore {
    const stats = this.segmentStatistics(hypotheses, references);
    const score = this.scoreFromStatistics(sumStatistics(stats));
    score.signature = this.signature(stats.nrefs);
    return score;
  }

  /** Sentence BLEU of one hypothesis against its references (sacreBLEU recommends effectiveOrder: true). */
  sentenceScore(hypothesis: string, references: readonly string[]): BLEUScore {
    return this.corpusScore(
      [hypothesis],
      references.map((r) => [r]),
    );
  }

  /** Per segment: [hypLen, refLen, correct_1..N, total_1..N]. */
  segmentStatistics(hypotheses: readonly string[], references: ReferenceStreams): SegmentStatistics {
    const { perSegment, nrefs } = collectReferences("BLEU", hypotheses, references);
    const order = this.maxNgramOrder;
    const dim = 2 + 2 * order;
    const data = new Float64Array(hypotheses.length * dim);
    const counter = new NgramCounter(order);
    for (let i = 0; i < hypotheses.length; i++) {
      const hyp = this.tokens(hypotheses[i]!);
      const refs = perSegment[i]!.map((r) => this.tokens(r));
      counter.count(hyp, refs, data, i * dim);
    }
    return { dim, length: hypotheses.length, data, nrefs };
  }

  /** BLEU from summed statistics, with this metric's smoothing and effective order. */
  scoreFromStatistics(totals: ArrayLike<number>): BLEUScore {
    const order = this.maxNgramOrder;
    const correct = Array.from({ length: order }, (_, n) => totals[2 + n]!);
    const total = Array.from({ length: order }, (_, n) => totals[2 + order + n]!);
    return computeBleu(correct, total, totals[0]!, totals[1]!, this.smoothMethod, this.smoothValue, this.effectiveOrder, order);
  }

  /** The signature, e.g. `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`. */
  signature(nrefs: number | "var" = 1, extra: { bs?: number; seed?: number | string } = {}): Signature {
    let smooth: string = this.smoothMethod;
    const def = SMOOTH_DEFAULTS[this.smoothMethod];
    if (def !== undefined) smooth += `[${formatFixed(this.smoothValue ?? def, 2)}]`;
    return new Signature({ nrefs, ...extra }, [
      ["case", "c", this.lowercase ? "lc" : "mixed"],
      ["eff", "e", this.effectiveOrder],
      ["tok", "tok", this.tokenizer.signature],
      ["smooth", "s", smooth],
    ]);
  }
}

/**
 * BLEU from n-gram match counts, lengths and a smoothing method: sacreBLEU's
 * `compute_bleu`, operation for operation.
 */
export function computeBleu(
  correct: number[],
  total: number[],
  sysLen: number,
  refLen: number,
  smoothMethod: SmoothMethod = "none",
  smoothValue: number | undefined = undefined,
  effectiveOrder = false,
  maxNgramOrder = 4,
): BLEUScore {
  const value = smoothValue ?? SMOOTH_DEFAULTS[smoothMethod] ?? 0;
  let bp = 1.0;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0.0;
  const precisions = new Array<number>(maxNgramOrder).fill(0);
  correct = correct.slice();
  total = total.slice();
  if (!correct.some((c) => c !== 0)) return new BLEUScore(0.0, correct, total, precisions, bp, sysLen, refLen);

  let smoothMteval = 1.0;
  let effOrder = maxNgramOrder;
  for (let n = 1; n <= maxNgramOrder; n++) {
    if (smoothMethod === "add-k" && n > 1) {
      correct[n - 1]! += value;
      total[n - 1]! += value;
    }
    if (total[n - 1] === 0) break;
    if (effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      if (smoothMethod === "exp") {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]!);
      } else if (smoothMethod === "floor") {
        precisions[n - 1] = (100 * value) / total[n - 1]!;
      }
    } else {
      precisions[n - 1] = (100 * correct[n - 1]!) / total[n - 1]!;
    }
  }
  let logSum = 0;
  for (let n = 0; n < effOrder; n++) {
    const p = precisions[n]!;
    logSum += p === 0 ? LOG_ZERO : Math.log(p);
  }
  const score = bp * Math.exp(logSum / effOrder);
  return new BLEUScore(score, correct, total, precisions, bp, sysLen, refLen);
}

/**
 * Clipped n-gram counting for one segment at a time. Tokens get small
 * per-segment ids (hashed in a reused table), so an n-gram packs
 * into one exact number (order tag in the top bits) with an integer hash
 * built alongside; counts live in an open-addressing table reused across
 * segments, and all buffers are reused, so the loop allocates almost nothing.
 * Segments with too many distinct tokens to pack fall back to string keys.
 */
class NgramCounter {
  private readonly base: number;
  private readonly orderTag: number;
  // Token -> per-segment id: a small open-addressing table keyed by the token's own
  // FNV-1a hash and checked by string equality; cheaper than a corpus-wide Map lookup.
  private tokenSlots: Array<string | undefined> = new Array(1024).fill(undefined);
  private tokenIds = new Int32Array(1024);
  private tokenMask = 1023;
  private tokenUsed: number[] = [];
  private localCount = 0;
  // Per-segment id sequences: hypothesis first, then each reference.
  private idBuf = new Int32Array(1024);
  // Table of n-gram key -> remaining reference count.
  private keys = new Float64Array(1024).fill(-1);
  private counts = new Int32Array(1024);
  private mask = 1023;
  private used = new Int32Array(512);
  private usedCount = 0;
  // Scratch n-grams of one sequence.
  private gramKeys = new Float64Array(1024);
  private gramHashes = new Int32Array(1024);
  private readonly maxCounts = new Map<number, number>();

  constructor(private readonly order: number) {
    const bits = Math.min(16, Math.floor(48 / order));
    this.base = 2 ** bits;
    this.orderTag = 2 ** (bits * order);
  }

  /** Writes [hypLen, refLen, correct.., total..] for one segment at `out[offset..]`. */
  count(hyp: string[], refs: string[][], out: Float64Array, offset: number): void {
    const order = this.order;
    out[offset] = hyp.length;
    out[offset + 1] = closestRefLength(hyp.length, refs);
    for (let n = 1; n <= order; n++) out[offset + 1 + order + n] = Math.max(0, hyp.length - n + 1);

    let total = hyp.length;
    for (const r of refs) total += r.length;
    if (total > this.idBuf.length) this.idBuf = new Int32Array(2 * total);
    this.resetTokens(total);
    let at = this.assignIds(hyp, 0);
    const refStarts: number[] = [];
    for (const r of refs) {
      refStarts.push(at);
      at = this.assignIds(r, at);
    }
    if (this.localCount > this.base) {
      this.countWithStrings(hyp, refs, out, offset);
      return;
    }
    this.reset();
    if (refs.length === 1) {
      this.addAll(refStarts[0]!, refs[0]!.length);
    } else {
      // Several references: an n-gram may match up to its largest count in any one of them.
      this.maxCounts.clear();
      refs.forEach((r, k) => {
        this.reset();
        this.addAll(refStarts[k]!, r.length);
        for (let u = 0; u < this.usedCount; u++) {
          const slot = this.used[u]!;
          const key = this.keys[slot]!;
          const c = this.counts[slot]!;
          if ((this.maxCounts.get(key) ?? 0) < c) this.maxCounts.set(key, c);
        }
      });
      this.reset();
      for (const [key, c] of this.maxCounts) this.counts[this.insert(key, hashOfKey(key))] = c;
    }
    // Consuming reference counts as hypothesis n-grams arrive sums min(hyp count, ref count).
    const grams = this.ngrams(0, hyp.length);
    const keys = this.gramKeys;
    const hashes = this.gramHashes;
    const tag = this.orderTag;
    for (let j = 0; j < grams; j++) {
      const key = keys[j]!;
      const slot = this.find(key, hashes[j]!);
      if (slot >= 0 && this.counts[slot]! > 0) {
        this.counts[slot]!--;
        out[offset + 1 + Math.floor(key / tag)]!++;
      }
    }
  }

  private resetTokens(total: number): void {
    for (const slot of this.tokenUsed) this.tokenSlots[slot] = undefined;
    this.tokenUsed.length = 0;
    this.localCount = 0;
    if (2 * total > this.tokenMask + 1) {
      let size = this.tokenMask + 1;
      while (2 * total > size) size *= 2;
      this.tokenSlots = new Array(size).fill(undefined);
      this.tokenIds = new Int32Array(size);
      this.tokenMask = size - 1;
    }
  }

  /** Writes per-segment ids of `tokens` into idBuf from `at`; returns the end. */
  private assignIds(tokens: string[], at: number): number {
    const buf = this.idBuf;
    const slots = this.tokenSlots;
    const mask = this.tokenMask;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      let h = 0x811c9dc5;
      for (let c = 0; c < t.length; c++) h = Math.imul(h ^ t.charCodeAt(c), 0x01000193);
      let slot = h & mask;
      for (;;) {
        const there = slots[slot];
        if (there === t) break;
        if (there === undefined) {
          slots[slot] = t;
          this.tokenIds[slot] = this.localCount++;
          this.tokenUsed.push(slot);
          break;
        }
        slot = (slot + 1) & mask;
      }
      buf[at++] = this.tokenIds[slot]!;
    }
    return at;
  }

  /** Packs every n-gram (n = 1..order) of idBuf[start, start+len) into gramKeys/gramHashes; returns the count. */
  private ngrams(start: number, len: number): number {
    const need = len * this.order;
    if (need > this.gramKeys.length) {
      this.gramKeys = new Float64Array(2 * need);
      this.gramHashes = new Int32Array(2 * need);
    }
    const keys = this.gramKeys;
    const hashes = this.gramHashes;
    const ids = this.idBuf;
    const base = this.base;
    const tag = this.orderTag;
    const order = this.order;
    let g = 0;
    for (let i = 0; i < len; i++) {
      let key = 0;
      for (let n = 1; n <= order && i + n <= len; n++) {
        key = key * base + ids[start + i + n - 1]!;
        const full = key + n * tag;
        keys[g] = full;
        hashes[g] = hashOfKey(full);
        g++;
      }
    }
    return g;
  }

  private addAll(start: number, len: number): void {
    const grams = this.ngrams(start, len);
    this.ensureCapacity(grams);
    const keys = this.gramKeys;
    const hashes = this.gramHashes;
    for (let j = 0; j < grams; j++) this.counts[this.insert(keys[j]!, hashes[j]!)]!++;
  }

  private ensureCapacity(entries: number): void {
    if (entries * 2 <= this.mask + 1) return;
    let size = this.mask + 1;
    while (entries * 2 > size) size *= 2;
    this.keys = new Float64Array(size).fill(-1);
    this.counts = new Int32Array(size);
    this.used = new Int32Array(size);
    this.mask = size - 1;
    this.usedCount = 0;
  }

  private reset(): void {
    for (let u = 0; u < this.usedCount; u++) {
      const slot = this.used[u]!;
      this.keys[slot] = -1;
      this.counts[slot] = 0;
    }
    this.usedCount = 0;
  }

  private insert(key: number, hash: number): number {
    let slot = hash & this.mask;
    for (;;) {
      const k = this.keys[slot]!;
      if (k === key) return slot;
      if (k === -1) {
        this.keys[slot] = key;
        this.used[this.usedCount++] = slot;
        return slot;
      }
      slot = (slot + 1) & this.mask;
    }
  }

  private find(key: number, hash: number): number {
    let slot = hash & this.mask;
    for (;;) {
      const k = this.keys[slot]!;
      if (k === key) return slot;
      if (k === -1) return -1;
      slot = (slot + 1) & this.mask;
    }
  }

  private countWithStrings(hyp: string[], refs: string[][], out: Float64Array, offset: number): void {
    const refMax = new Map<string, number>();
    for (const ref of refs) {
      for (const [g, c] of stringNgrams(ref, this.order)) if ((refMax.get(g) ?? 0) < c) refMax.set(g, c);
    }
    for (const [g, c] of stringNgrams(hyp, this.order)) {
      const r = refMax.get(g);
      if (r !== undefined) out[offset + 1 + Number(g.slice(0, g.indexOf(":")))]! += Math.min(c, r);
    }
  }
}

/** A table hash of a packed key (an exact integer below 2^53): mixes its two 32-bit halves. */
function hashOfKey(key: number): number {
  const lo = key | 0;
  const hi = (key / 4294967296) | 0;
  const h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  return h ^ (h >>> 15);
}

function stringNgrams(tokens: string[], order: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let n = 1; n <= order; n++) {
    for (let i = 0; i + n <= tokens.length; i++) {
      const g = `${n}:${tokens.slice(i, i + n).join("\u0000")}`;
      out.set(g, (out.get(g) ?? 0) + 1);
    }
  }
  return out;
}

/** The reference length closest to the hypothesis length, the shorter one on ties. */
export function closestRefLength(hypLen: number, refs: string[][]): number {
  let closestDiff = -1;
  let closestLen = -1;
  for (const ref of refs) {
    const diff = Math.abs(hypLen - ref.length);
    if (closestDiff === -1 || diff < closestDiff) {
      closestDiff = diff;
      closestLen = ref.length;
    } else if (diff === closestDiff && ref.length < closestLen) {
      closestLen = ref.length;
    }
  }
  return closestLen;
}
