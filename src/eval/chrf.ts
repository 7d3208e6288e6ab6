/**
 * chrF (Popović 2015) and chrF++ (Popović 2017) exactly as sacreBLEU 2.x
 * computes them: character n-grams up to 6 with whitespace removed, word
 * n-grams (chrF++: up to 2) after splitting off a leading or trailing ASCII
 * punctuation mark, β = 2, statistics summed over the corpus, and for several
 * references the one with the best sentence-level score.
 */
import { AnalysisError } from "../util/errors.js";
import { pySplit } from "./pytext.js";
import { collectReferences } from "./references.js";
import { type CorpusMetric, MetricScore, type ReferenceStreams, type SegmentStatistics, sumStatistics } from "./score.js";
import { Signature } from "./signature.js";

/** chrF settings; defaults are sacreBLEU's chrF (use `wordOrder: 2` for chrF++). */
export interface CHRFOptions {
  /** Character n-gram order (default 6). */
  charOrder?: number;
  /** Word n-gram order (default 0; 2 makes chrF++). */
  wordOrder?: number;
  /** Recall weight β (default 2). */
  beta?: number;
  lowercase?: boolean;
  /** Keep whitespace inside character n-grams (default false). */
  whitespace?: boolean;
  /** chrF++.py-style ε smoothing instead of sacreBLEU 2's effective order (default false). */
  epsSmoothing?: boolean;
}

/** A chrF score; its name is `chrF2` or `chrF2++`. */
export class CHRFScore extends MetricScore {
  constructor(
    score: number,
    readonly charOrder: number,
    readonly wordOrder: number,
    readonly beta: number,
  ) {
    super(`chrF${beta}${"+".repeat(wordOrder)}`, score);
  }
}

// string.punctuation: the characters chrF++ splits off word edges.
const PUNCTS = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");

type Counts = Map<string, number>;

/**
 * chrF / chrF++.
 *
 * @example
 * const chrf = new CHRF({ wordOrder: 2 }); // chrF++
 * chrf.corpusScore(["the cat"], [["the cat"]]).format(); // "chrF2++|nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0 = 100.00"
 */
export class CHRF implements CorpusMetric<CHRFScore> {
  readonly charOrder: number;
  readonly wordOrder: number;
  readonly beta: number;
  readonly lowercase: boolean;
  readonly whitespace: boolean;
  readonly epsSmoothing: boolean;
  private readonly order: number;

  constructor(options: CHRFOptions = {}) {
    this.charOrder = options.charOrder ?? 6;
    this.wordOrder = options.wordOrder ?? 0;
    this.beta = options.beta ?? 2;
    this.lowercase = options.lowercase ?? false;
    this.whitespace = options.whitespace ?? false;
    this.epsSmoothing = options.epsSmoothing ?? false;
    for (const [field, v] of [
      ["charOrder", this.charOrder],
      ["wordOrder", this.wordOrder],
    ] as const) {
      if (!Number.isInteger(v) || v < 0)
        throw new AnalysisError("XA_EVAL_ORDER", `${field} must be a non-negative integer, got ${v}`, { field });
    }
    if (this.charOrder + this.wordOrder === 0) {
      throw new AnalysisError("XA_EVAL_ORDER", "chrF needs charOrder or wordOrder above 0", { field: "charOrder" });
    }
    this.order = this.charOrder + this.wordOrder;
  }

  corpusScore(hypotheses: readonly string[], references: ReferenceStreams): CHRFScore {
    const stats = this.segmentStatistics(hypotheses, references);
    const score = this.scoreFromStatistics(sumStatistics(stats));
    score.signature = this.signature(stats.nrefs);
    return score;
  }

  sentenceScore(hypothesis: string, references: readonly string[]): CHRFScore {
    return this.corpusScore(
      [hypothesis],
      references.map((r) => [r]),
    );
  }

  /** Per segment, for each order (chars then words): [hyp n-grams, ref n-grams, matches]. */
  segmentStatistics(hypotheses: readonly string[], references: ReferenceStreams): SegmentStatistics {
    const { perSegment, nrefs } = collectReferences("chrF", hypotheses, references);
    const dim = 3 * this.order;
    const data = new Float64Array(hypotheses.length * dim);
    for (let i = 0; i < hypotheses.length; i++) {
      const hypNgrams = this.ngrams(this.preprocess(hypotheses[i]!));
      let best: number[] = [];
      let bestF = -1.0;
      for (const ref of perSegment[i]!) {
        const refNgrams = this.ngrams(this.preprocess(ref));
        const stats: number[] = [];
        for (let k = 0; k < this.order; k++) stats.push(...matchStatistics(hypNgrams[k]!, refNgrams[k]!));
        const f = this.fScore(stats);
        if (f > bestF) {
          bestF = f;
          best = stats;
        }
      }
      data.set(best, i * dim);
    }
    return { dim, length: hypotheses.length, data, nrefs };
  }

  scoreFromStatistics(totals: ArrayLike<number>): CHRFScore {
    return new CHRFScore(this.fScore(totals), this.charOrder, this.wordOrder, this.beta);
  }

  /** The signature, e.g. `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0`. */
  signature(nrefs: number | "var" = 1, extra: { bs?: number; seed?: number | string } = {}): Signature {
    return new Signature({ nrefs, ...extra }, [
      ["case", "c", this.lowercase ? "lc" : "mixed"],
      ["eff", "e", !this.epsSmoothing],
      ["nc", "nc", this.charOrder],
      ["nw", "nw", this.wordOrder],
      ["space", "s", this.whitespace],
    ]);
  }

  private preprocess(sentence: string): string {
    return this.lowercase ? sentence.toLowerCase() : sentence;
  }

  /** Character n-gram counts (orders 1..charOrder) then word n-gram counts (1..wordOrder). */
  private ngrams(sentence: string): Counts[] {
    const chars = Array.from(this.whitespace ? sentence : pySplit(sentence).join(""));
    const out: Counts[] = [];
    for (let n = 1; n <= this.charOrder; n++) {
      const counts: Counts = new Map();
      for (let i = 0; i + n <= chars.length; i++) {
        const g = n === 1 ? chars[i]! : chars.slice(i, i + n).join("");
        counts.set(g, (counts.get(g) ?? 0) + 1);
      }
      out.push(counts);
    }
    if (this.wordOrder > 0) {
      const words = splitPunctuation(sentence);
      for (let n = 1; n <= this.wordOrder; n++) {
        const counts: Counts = new Map();
        for (let i = 0; i + n <= words.length; i++) {
          const g = words.slice(i, i + n).join(" ");
          counts.set(g, (counts.get(g) ?? 0) + 1);
        }
        out.push(counts);
      }
    }
    return out;
  }

  /** sacreBLEU's `_compute_f_score`, in the same order of operations. */
  private fScore(statistics: ArrayLike<number>): number {
    const eps = 1e-16;
    let score = 0.0;
    let effectiveOrder = 0;
    const factor = this.beta ** 2;
    let avgPrec = 0.0;
    let avgRec = 0.0;
    for (let i = 0; i < this.order; i++) {
      const nHyp = statistics[3 * i]!;
      const nRef = statistics[3 * i + 1]!;
      const nMatch = statistics[3 * i + 2]!;
      const prec = nHyp > 0 ? nMatch / nHyp : eps;
      const rec = nRef > 0 ? nMatch / nRef : eps;
      const denom = factor * prec + rec;
      score += denom > 0 ? ((1 + factor) * prec * rec) / denom : eps;
      if (nHyp > 0 && nRef > 0) {
        avgPrec += prec;
        avgRec += rec;
        effectiveOrder += 1;
      }
    }
    if (this.epsSmoothing) return (100 * score) / this.order;
    if (effectiveOrder === 0) {
      avgPrec = 0.0;
      avgRec = 0.0;
    } else {
      avgPrec /= effectiveOrder;
      avgRec /= effectiveOrder;
    }
    if (avgPrec + avgRec) {
      let f = (1 + factor) * avgPrec * avgRec;
      f /= factor * avgPrec + avgRec;
      return 100 * f;
    }
    return 0.0;
  }
}

/** [hyp count (0 when the reference has no n-gram of this order), ref count, clipped matches]. */
function matchStatistics(hyp: Counts, ref: Counts): [number, number, number] {
  let match = 0;
  let hypCount = 0;
  for (const [g, c] of hyp) {
    hypCount += c;
    const r = ref.get(g);
    if (r !== undefined) match += Math.min(c, r);
  }
  let refCount = 0;
  for (const c of ref.values()) refCount += c;
  return [ref.size > 0 ? hypCount : 0, refCount, match];
}

/**
 * chrF++'s words: whitespace split, then one ASCII punctuation mark split off
 * the end of a word, or else off its start (so "(hi)" gives "(hi" and ")",
 * as in sacreBLEU).
 */
export function splitPunctuation(sentence: string): string[] {
  const out: string[] = [];
  for (const w of pySplit(sentence)) {
    const cps = Array.from(w);
    if (cps.length === 1) out.push(w);
    else if (PUNCTS.has(cps[cps.length - 1]!)) out.push(cps.slice(0, -1).join(""), cps[cps.length - 1]!);
    else if (PUNCTS.has(cps[0]!)) out.push(cps[0]!, cps.slice(1).join(""));
    else out.push(w);
  }
  return out;
}
