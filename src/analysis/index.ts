/**
 * Analysis: scaling-law fits (Levenberg–Marquardt, AIC selection, inversion,
 * confidence bands), parallel-data budget allocation, and the statistics
 * they report with.
 */
export { type Allocation, type AllocationOptions, allocateBudget, type ScoreLaw } from "./allocation.js";
export {
  type LeastSquaresModel,
  type LevenbergMarquardtOptions,
  type LevenbergMarquardtResult,
  levenbergMarquardt,
} from "./levenberg-marquardt.js";
export { invert, solve } from "./linalg.js";
export {
  type BandPoint,
  fitScalingLaw,
  fitScalingLaws,
  SCALING_FORMS,
  type ScalingFormName,
  ScalingLawFit,
  type ScalingLawSelection,
  type ScalingPoint,
} from "./scaling.js";
export { lnGamma, regularizedIncompleteBeta, studentTCdf, studentTQuantile } from "./stats.js";
