/**
 * Bootstrap resampling over segments (Koehn 2004), as sacreBLEU does it:
 * 95% confidence intervals for one system, and the paired test between a
 * baseline and a system on the same resamples. The resampling uses xalign's
 * seeded Rng, so intervals are reproducible but not numpy's draws: expect
 * sacreBLEU's intervals and p-values to differ in the last digits.
 */
import { AnalysisError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import {
  type Confidence,
  type CorpusMetric,
  type MetricScore,
  type ReferenceStreams,
  type SegmentStatistics,
  sumStatistics,
} from "./score.js";
import type { Signature } from "./signature.js";

/** Resampling settings. */
export interface BootstrapOptions {
  /** Resamples (default 1000, sacreBLEU's). */
  samples?: number;
  /** Seed for the resampling Rng (default 12345, sacreBLEU's SACREBLEU_SEED default). */
  seed?: number;
}

/** Draws `samples` index lists of length `n` (with replacement). */
function resampleIndices(n: number, samples: number, seed: number): Uint32Array[] {
  const rng = new Rng(seed);
  const out: Uint32Array[] = [];
  for (let s = 0; s < samples; s++) {
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = rng.int(n);
    out.push(idx);
  }
  return out;
}

function resampledScores<S extends MetricScore>(metric: CorpusMetric<S>, stats: SegmentStatistics, indices: Uint32Array[]): Float64Array {
  const { dim, data } = stats;
  const totals = new Float64Array(dim);
  const scores = new Float64Array(indices.length);
  indices.forEach((idx, s) => {
    totals.fill(0);
    for (let j = 0; j < idx.length; j++) {
      const base = idx[j]! * dim;
      for (let k = 0; k < dim; k++) totals[k]! += data[base + k]!;
    }
    scores[s] = metric.scoreFromStatistics(totals).score;
  });
  return scores;
}

/**
 * Mean and 95% interval of bootstrap scores, sacreBLEU's way: sort, take
 * the values n/40 from each end, half their distance is the "±".
 */
export function confidenceFromSamples(samples: ArrayLike<number>): Confidence {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  if (n === 0) throw new AnalysisError("XA_EVAL_BOOTSTRAP", "no bootstrap samples", { field: "samples" });
  const lowerIdx = Math.floor(n / 40);
  const lower = sorted[lowerIdx]!;
  const upper = sorted[n - lowerIdx - 1]!;
  let sum = 0;
  for (const v of sorted) sum += v;
  return { mean: sum / n, halfWidth: 0.5 * (upper - lower), lower, upper, samples: n };
}

function checkSamples(samples: number): void {
  if (!Number.isInteger(samples) || samples < 1) {
    throw new AnalysisError("XA_EVAL_BOOTSTRAP", `bootstrap samples must be a positive integer, got ${samples}`, { field: "samples" });
  }
}

/**
 * A corpus score with a bootstrap 95% interval; its signature gains
 * `bs:<samples>|seed:<seed>` as sacreBLEU's does.
 *
 * @example
 * const s = scoreWithConfidence(new BLEU(), hyps, [refs]);
 * s.format(); // "BLEU|nrefs:1|bs:1000|seed:12345|... = 31.20 (μ = 31.18 ± 1.02) ..."
 */
export function scoreWithConfidence<S extends MetricScore>(
  metric: CorpusMetric<S>,
  hypotheses: readonly string[],
  references: ReferenceStreams,
  options: BootstrapOptions = {},
): S {
  const samples = options.samples ?? 1000;
  const seed = options.seed ?? 12345;
  checkSamples(samples);
  const stats = metric.segmentStatistics(hypotheses, references);
  const score = metric.scoreFromStatistics(sumStatistics(stats));
  score.confidence = confidenceFromSamples(resampledScores(metric, stats, resampleIndices(stats.length, samples, seed)));
  score.signature = metric.signature(stats.nrefs, { bs: samples, seed });
  return score;
}

/** One system's result in a paired test. */
export interface PairedSystemResult {
  score: number;
  confidence: Confidence;
}

/** The paired bootstrap test's outcome. */
export interface PairedBootstrapResult {
  baseline: PairedSystemResult;
  system: PairedSystemResult;
  /** system − baseline on the full test set. */
  difference: number;
  /** Probability of a difference this large by chance (sacreBLEU's paired-bs p-value). */
  pValue: number;
  signature: Signature;
}

/**
 * Paired bootstrap resampling between a baseline and a system on the same
 * test set (sacreBLEU `--paired-bs`): both are rescored on the same resampled
 * segment sets; p = (#{|Δ*| − mean|Δ*| ≥ |Δ|} + 1) / (samples + 1).
 * sacreBLEU counts with ">", which gives identical systems p = 1/(samples+1)
 * ("significant"); with "≥" they get p = 1. Elsewhere the two agree except
 * on exact ties.
 *
 * @example
 * const r = pairedBootstrap(new BLEU(), alpacaOutputs, xllamaOutputs, [refs]);
 * r.pValue < 0.05; // x-LLaMA's gain is significant
 */
export function pairedBootstrap<S extends MetricScore>(
  metric: CorpusMetric<S>,
  baseline: readonly string[],
  system: readonly string[],
  references: ReferenceStreams,
  options: BootstrapOptions = {},
): PairedBootstrapResult {
  const samples = options.samples ?? 1000;
  const seed = options.seed ?? 12345;
  checkSamples(samples);
  if (baseline.length !== system.length) {
    throw new AnalysisError("XA_EVAL_LENGTH_MISMATCH", `baseline has ${baseline.length} segments but the system has ${system.length}`, {
      field: "system",
      hint: "both systems must translate the same test set",
    });
  }
  const blStats = metric.segmentStatistics(baseline, references);
  const sysStats = metric.segmentStatistics(system, references);
  const blScore = metric.scoreFromStatistics(sumStatistics(blStats)).score;
  const sysScore = metric.scoreFromStatistics(sumStatistics(sysStats)).score;
  const indices = resampleIndices(blStats.length, samples, seed);
  const bl = resampledScores(metric, blStats, indices);
  const sys = resampledScores(metric, sysStats, indices);
  const diffs = bl.map((b, i) => Math.abs(sys[i]! - b));
  let meanDiff = 0;
  for (const d of diffs) meanDiff += d;
  meanDiff /= diffs.length;
  const real = Math.abs(blScore - sysScore);
  let count = 0;
  for (const d of diffs) if (d - meanDiff >= real) count++;
  return {
    baseline: { score: blScore, confidence: confidenceFromSamples(bl) },
    system: { score: sysScore, confidence: confidenceFromSamples(sys) },
    difference: sysScore - blScore,
    pValue: (count + 1) / (samples + 1),
    signature: metric.signature(blStats.nrefs, { bs: samples, seed }),
  };
}
