/**
 * Levenberg–Marquardt nonlinear least squares (Marquardt 1963): Gauss–Newton
 * steps damped by λ·diag(JᵀJ), λ shrinking after a step that lowers the
 * residual sum of squares and growing after one that does not.
 */
import { AnalysisError } from "../util/errors.js";
import { gram, solve } from "./linalg.js";

/** A model y ≈ f(x; θ) with its gradient in θ. */
export interface LeastSquaresModel {
  f(x: number, params: readonly number[]): number;
  /** ∂f/∂θ at x; omitted: central finite differences. */
  gradient?(x: number, params: readonly number[]): number[];
}

export interface LevenbergMarquardtOptions {
  maxIterations?: number;
  /** Stop when RSS improves by less than this fraction (default 1e-12). */
  tolerance?: number;
  /** Starting damping (default 1e-3). */
  lambda?: number;
}

export interface LevenbergMarquardtResult {
  params: number[];
  rss: number;
  iterations: number;
  converged: boolean;
  /** Jacobian of f at the solution, one row per point. */
  jacobian: number[][];
}

function numericGradient(model: LeastSquaresModel, x: number, params: readonly number[]): number[] {
  return params.map((p, k) => {
    const h = 1e-6 * Math.max(1, Math.abs(p));
    const up = [...params];
    const down = [...params];
    up[k] = p + h;
    down[k] = p - h;
    return (model.f(x, up) - model.f(x, down)) / (2 * h);
  });
}

function rssOf(model: LeastSquaresModel, xs: readonly number[], ys: readonly number[], params: readonly number[]): number {
  let rss = 0;
  for (let i = 0; i < xs.length; i++) {
    const r = ys[i]! - model.f(xs[i]!, params);
    rss += r * r;
  }
  return Number.isFinite(rss) ? rss : Number.POSITIVE_INFINITY;
}

/**
 * Fits `model` to (xs, ys) from `start`.
 *
 * @example
 * const line = { f: (x: number, [a, b]: readonly number[]) => a! + b! * x };
 * levenbergMarquardt(line, [0, 1, 2], [1, 3, 5], [0, 0]).params; // ≈ [1, 2]
 */
export function levenbergMarquardt(
  model: LeastSquaresModel,
  xs: readonly number[],
  ys: readonly number[],
  start: readonly number[],
  options: LevenbergMarquardtOptions = {},
): LevenbergMarquardtResult {
  if (xs.length !== ys.length) {
    throw new AnalysisError("XA_ANALYSIS_LENGTH_MISMATCH", `${xs.length} x values but ${ys.length} y values`, { field: "points" });
  }
  const maxIterations = options.maxIterations ?? 500;
  const tolerance = options.tolerance ?? 1e-12;
  const grad = (x: number, p: readonly number[]) => (model.gradient ? model.gradient(x, p) : numericGradient(model, x, p));
  let params = [...start];
  let rss = rssOf(model, xs, ys, params);
  if (!Number.isFinite(rss)) {
    throw new AnalysisError("XA_ANALYSIS_START", "the model is not finite at the starting parameters", { field: "start" });
  }
  let lambda = options.lambda ?? 1e-3;
  let converged = false;
  let iterations = 0;
  for (; iterations < maxIterations; iterations++) {
    const jac = xs.map((x) => grad(x, params));
    const jtj = gram(jac);
    const jtr = params.map((_, k) => jac.reduce((sum, row, i) => sum + row[k]! * (ys[i]! - model.f(xs[i]!, params)), 0));
    let improved = false;
    while (lambda < 1e16) {
      const damped = jtj.map((row, i) => row.map((v, j) => (i === j ? v + lambda * Math.max(v, 1e-12) : v)));
      const step = solve(damped, jtr);
      if (step) {
        const trial = params.map((p, k) => p + step[k]!);
        const trialRss = rssOf(model, xs, ys, trial);
        if (trialRss < rss) {
          const gain = (rss - trialRss) / Math.max(rss, 1e-300);
          params = trial;
          rss = trialRss;
          lambda = Math.max(lambda / 10, 1e-15);
          improved = true;
          if (gain < tolerance) converged = true;
          break;
        }
      }
      lambda *= 10;
    }
    if (!improved || converged || rss === 0) {
      converged = true;
      break;
    }
  }
  return { params, rss, iterations, converged, jacobian: xs.map((x) => grad(x, params)) };
}
