/**
 * What every corpus metric (BLEU, chrF) shares: a score object that prints
 * the way sacreBLEU prints it, and the sufficient-statistics interface that
 * bootstrap resampling works on.
 */

import { formatFixed } from "./pytext.js";
import type { Signature } from "./signature.js";

/** Per-segment sufficient statistics, row-major: `data[i * dim + k]`. */
export interface SegmentStatistics {
  /** Numbers per segment. */
  readonly dim: number;
  /** Number of segments. */
  readonly length: number;
  readonly data: Float64Array;
  /** References per segment, or "var" (for the signature). */
  readonly nrefs: number | "var";
}

/** Column sums of segment statistics (the corpus-level statistics). */
export function sumStatistics(stats: SegmentStatistics): Float64Array {
  const out = new Float64Array(stats.dim);
  const { data, dim } = stats;
  for (let i = 0; i < stats.length; i++) {
    const base = i * dim;
    for (let k = 0; k < dim; k++) out[k]! += data[base + k]!;
  }
  return out;
}

/** A metric whose corpus score is a function of summed segment statistics (BLEU, chrF). */
export interface CorpusMetric<S extends MetricScore = MetricScore> {
  /** Statistics for each hypothesis against its references (sacreBLEU's reference-stream layout). */
  segmentStatistics(hypotheses: readonly string[], references: ReferenceStreams): SegmentStatistics;
  /** The score from statistics summed over segments. */
  scoreFromStatistics(totals: ArrayLike<number>): S;
  /** The signature for the given number of references per segment. */
  signature(nrefs: number | "var", extra?: { bs?: number; seed?: number | string }): Signature;
}

/**
 * References as sacreBLEU takes them: one stream per reference set, each
 * parallel to the hypotheses (`refs[k][i]` is reference k of segment i).
 * A `null`/`undefined` entry means segment i has fewer references.
 */
export type ReferenceStreams = readonly (readonly (string | null | undefined)[])[];

/** Bootstrap estimate attached to a score: mean of the resampled scores and half the 95% interval. */
export interface Confidence {
  mean: number;
  /** Half-width of the 95% interval (sacreBLEU's "±"). */
  halfWidth: number;
  lower: number;
  upper: number;
  samples: number;
}

/** Options of {@link MetricScore.format}. */
export interface FormatOptions {
  /** Decimal places (sacreBLEU's `-w`, default 2). */
  width?: number;
  /** Only the number. */
  scoreOnly?: boolean;
  /** Include the signature after the metric name (default true when the score has one). */
  signature?: boolean;
}

/** A score with sacreBLEU's printing. */
export abstract class MetricScore {
  confidence: Confidence | undefined;
  signature: Signature | undefined;

  constructor(
    readonly name: string,
    readonly score: number,
  ) {}

  /** Text after the number in the full line (BLEU's precisions and BP; empty for chrF). */
  protected verbose(): string {
    return "";
  }

  /**
   * The score line as sacreBLEU prints it, e.g.
   * `BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 34.12 60.0/40.0/30.0/20.0 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)`.
   */
  format(options: FormatOptions = {}): string {
    const width = options.width ?? 2;
    let sc = formatFixed(this.score, width);
    if (this.confidence && this.confidence.mean > 0) {
      sc += ` (μ = ${formatFixed(this.confidence.mean, width)} ± ${formatFixed(this.confidence.halfWidth, width)})`;
    }
    if (options.scoreOnly) return sc;
    const sig = options.signature !== false && this.signature ? this.signature.format() : "";
    const head = sig ? `${this.name}|${sig}` : this.name;
    const verbose = this.verbose();
    return `${head} = ${sc}${verbose ? ` ${verbose}` : ""}`;
  }

  toString(): string {
    return this.format();
  }
}
