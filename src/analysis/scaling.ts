/**
 * Scaling laws of translation quality against translation-data size N
 * (the study's Figure on data scale): candidate forms fitted by
 * Levenberg–Marquardt, compared by AIC, inverted ("pairs needed for a
 * score"), with standard errors, R², leave-one-out error and confidence bands.
 */
import { AnalysisError } from "../util/errors.js";
import { levenbergMarquardt } from "./levenberg-marquardt.js";
import { gram, invert, solve } from "./linalg.js";
import { studentTQuantile } from "./stats.js";

/** The candidate forms. */
export type ScalingFormName = "log-power" | "log-power-offset" | "saturating" | "log-linear";

/** One observation: N translation pairs gave this score (e.g. spBLEU). */
export interface ScalingPoint {
  n: number;
  score: number;
}

interface Form {
  name: ScalingFormName;
  params: readonly string[];
  formula: string;
  /** Smallest N the form is defined at (exclusive). */
  minN: number;
  f(n: number, p: readonly number[]): number;
  gradient(n: number, p: readonly number[]): number[];
  start(ns: readonly number[], ys: readonly number[]): number[];
  /** N with f(N) = score, or undefined when the law never reaches it. */
  inverse(score: number, p: readonly number[]): number | undefined;
}

/** Least squares for y ≈ Σ θ_k g_k(x) (the linear parameters given the nonlinear ones). */
function linearFit(rows: number[][], ys: readonly number[]): { theta: number[]; rss: number } | undefined {
  const jtj = gram(rows);
  const jty = jtj.map((_, k) => rows.reduce((s, r, i) => s + r[k]! * ys[i]!, 0));
  const theta = solve(jtj, jty);
  if (!theta) return undefined;
  const rss = rows.reduce((s, r, i) => {
    const e = ys[i]! - r.reduce((t, v, k) => t + v * theta[k]!, 0);
    return s + e * e;
  }, 0);
  return { theta, rss };
}

/** Grid over an exponent b with the linear parameters solved exactly: a robust start for LM. */
function profileStart(
  grid: readonly number[],
  regressors: (b: number) => number[][],
  ys: readonly number[],
  assemble: (b: number, theta: number[]) => number[],
): number[] {
  let best: { rss: number; params: number[] } | undefined;
  for (const b of grid) {
    const fit = linearFit(regressors(b), ys);
    if (fit && Number.isFinite(fit.rss) && (!best || fit.rss < best.rss)) best = { rss: fit.rss, params: assemble(b, fit.theta) };
  }
  if (!best)
    throw new AnalysisError("XA_ANALYSIS_DEGENERATE", "no starting point fits these points", { hint: "use more distinct sizes N" });
  return best.params;
}

const EXPONENTS = Array.from({ length: 60 }, (_, i) => 0.02 * 1.12 ** i); // 0.02 .. ~16

const FORMS: Record<ScalingFormName, Form> = {
  "log-linear": {
    name: "log-linear",
    params: ["a", "b"],
    formula: "a + b·ln N",
    minN: 0,
    f: (n, [a, b]) => a! + b! * Math.log(n),
    gradient: (n) => [1, Math.log(n)],
    start: (ns, ys) =>
      linearFit(
        ns.map((n) => [1, Math.log(n)]),
        ys,
      )?.theta ?? [0, 1],
    inverse: (s, [a, b]) => (b === 0 ? undefined : Math.exp((s - a!) / b!)),
  },
  "log-power": {
    name: "log-power",
    params: ["a", "b"],
    formula: "a·(ln N)^b",
    minN: 1,
    f: (n, [a, b]) => a! * Math.log(n) ** b!,
    gradient: (n, [a, b]) => {
      const l = Math.log(n);
      const lb = l ** b!;
      return [lb, a! * lb * Math.log(l)];
    },
    start: (ns, ys) =>
      profileStart(
        EXPONENTS,
        (b) => ns.map((n) => [Math.log(n) ** b]),
        ys,
        (b, [a]) => [a!, b],
      ),
    inverse: (s, [a, b]) => {
      const r = s / a!;
      return r > 0 ? Math.exp(r ** (1 / b!)) : undefined;
    },
  },
  "log-power-offset": {
    name: "log-power-offset",
    params: ["a", "b", "c"],
    formula: "a·(ln N)^b + c",
    minN: 1,
    f: (n, [a, b, c]) => a! * Math.log(n) ** b! + c!,
    gradient: (n, [a, b]) => {
      const l = Math.log(n);
      const lb = l ** b!;
      return [lb, a! * lb * Math.log(l), 1];
    },
    start: (ns, ys) =>
      profileStart(
        EXPONENTS,
        (b) => ns.map((n) => [Math.log(n) ** b, 1]),
        ys,
        (b, [a, c]) => [a!, b, c!],
      ),
    inverse: (s, [a, b, c]) => {
      const r = (s - c!) / a!;
      return r > 0 ? Math.exp(r ** (1 / b!)) : undefined;
    },
  },
  saturating: {
    name: "saturating",
    params: ["a", "b", "c"],
    formula: "c − a·N^(−b)",
    minN: 0,
    f: (n, [a, b, c]) => c! - a! * n ** -b!,
    gradient: (n, [a, b]) => {
      const nb = n ** -b!;
      return [-nb, a! * nb * Math.log(n), 1];
    },
    start: (ns, ys) =>
      profileStart(
        EXPONENTS.filter((b) => b <= 3),
        (b) => ns.map((n) => [-(n ** -b), 1]),
        ys,
        (b, [a, c]) => [a!, b, c!],
      ),
    inverse: (s, [a, b, c]) => {
      const r = (c! - s) / a!;
      return r > 0 ? r ** (-1 / b!) : undefined;
    },
  },
};

/** The names of the forms, in the order fitScalingLaws tries them. */
export const SCALING_FORMS: readonly ScalingFormName[] = ["log-power", "log-power-offset", "saturating", "log-linear"];

function checkPoints(points: readonly ScalingPoint[], form: Form): void {
  if (points.length < form.params.length) {
    throw new AnalysisError(
      "XA_ANALYSIS_TOO_FEW_POINTS",
      `the ${form.name} law (${form.formula}) has ${form.params.length} parameters but only ${points.length} points were given`,
      { field: "points", hint: `measure at least ${form.params.length} data sizes (more for standard errors and leave-one-out)` },
    );
  }
  points.forEach((p, i) => {
    if (!Number.isFinite(p.n) || p.n <= form.minN) {
      throw new AnalysisError(
        "XA_ANALYSIS_BAD_N",
        `point ${i} has N = ${p.n}; the ${form.name} law needs N > ${form.minN}${form.minN === 1 ? " (ln N must be positive)" : ""}`,
        { field: `points[${i}].n`, hint: "N is the number of translation pairs trained on; drop the zero-data baseline from the fit" },
      );
    }
    if (!Number.isFinite(p.score)) {
      throw new AnalysisError("XA_ANALYSIS_BAD_SCORE", `point ${i} has score ${p.score}`, { field: `points[${i}].score` });
    }
  });
  if (new Set(points.map((p) => p.n)).size < form.params.length) {
    throw new AnalysisError("XA_ANALYSIS_TOO_FEW_POINTS", `the ${form.name} law needs at least ${form.params.length} distinct sizes N`, {
      field: "points",
    });
  }
}

/** Mean prediction with a confidence band. */
export interface BandPoint {
  n: number;
  fit: number;
  lower: number;
  upper: number;
}

/** A fitted scaling law. */
export class ScalingLawFit {
  constructor(
    readonly form: ScalingFormName,
    /** Parameter values in the form's order (see `params`). */
    readonly values: readonly number[],
    /** Standard errors (NaN with no residual degrees of freedom). */
    readonly standardErrors: readonly number[],
    /** Covariance of the parameters (s²·(JᵀJ)⁻¹). */
    readonly covariance: readonly (readonly number[])[] | undefined,
    readonly n: number,
    readonly rss: number,
    readonly r2: number,
    /** n·ln(RSS/n) + 2(k+1), the Gaussian-likelihood AIC (the +1 is the noise variance). */
    readonly aic: number,
    /** Root mean squared leave-one-out prediction error (NaN when too few points). */
    readonly looRmse: number,
    readonly converged: boolean,
  ) {}

  /** The parameters by name, e.g. { a, b, c }. */
  get params(): Record<string, number> {
    return Object.fromEntries(FORMS[this.form].params.map((name, k) => [name, this.values[k]!]));
  }

  get formula(): string {
    return FORMS[this.form].formula;
  }

  /** Predicted score at N pairs. */
  predict(n: number): number {
    return FORMS[this.form].f(n, this.values);
  }

  /**
   * The fitted mean at each N with a `level` confidence band (delta method,
   * Student's t with n − k degrees of freedom).
   */
  band(ns: readonly number[], level = 0.95): BandPoint[] {
    const form = FORMS[this.form];
    const dof = this.n - this.values.length;
    const t = dof > 0 && this.covariance ? studentTQuantile(0.5 + level / 2, dof) : Number.NaN;
    return ns.map((n) => {
      const fit = form.f(n, this.values);
      const g = form.gradient(n, this.values);
      let variance = 0;
      if (this.covariance)
        for (let i = 0; i < g.length; i++) for (let j = 0; j < g.length; j++) variance += g[i]! * this.covariance[i]![j]! * g[j]!;
      const half = t * Math.sqrt(Math.max(variance, 0));
      return { n, fit, lower: fit - half, upper: fit + half };
    });
  }

  /**
   * Translation pairs needed to reach `score` under this law.
   *
   * @example
   * fit.pairsNeeded(30); // e.g. 2.4e6
   */
  pairsNeeded(score: number): number {
    const n = FORMS[this.form].inverse(score, this.values);
    if (n === undefined || !Number.isFinite(n)) {
      const ceiling = this.form === "saturating" ? ` (it saturates at ${this.values[2]!.toFixed(2)})` : "";
      throw new AnalysisError("XA_ANALYSIS_UNREACHABLE", `the fitted ${this.form} law never reaches score ${score}${ceiling}`, {
        field: "score",
        hint: "ask for a score inside the law's range",
      });
    }
    return n;
  }

  /** One line, e.g. `log-power: 3.12·(ln N)^1.05 (R² 0.991, AIC -3.2, LOO RMSE 0.41)`. */
  format(digits = 3): string {
    const p = this.params;
    const v = (k: string) => Number(p[k]!.toPrecision(digits));
    const plus = (k: string) => (p[k]! < 0 ? `− ${-v(k)}` : `+ ${v(k)}`);
    const body =
      this.form === "log-linear"
        ? `${v("a")} ${plus("b")}·ln N`
        : this.form === "log-power"
          ? `${v("a")}·(ln N)^${v("b")}`
          : this.form === "log-power-offset"
            ? `${v("a")}·(ln N)^${v("b")} ${plus("c")}`
            : `${v("c")} − ${v("a")}·N^(−${v("b")})`;
    return `${this.form}: ${body} (R² ${this.r2.toFixed(3)}, AIC ${this.aic.toFixed(2)}, LOO RMSE ${this.looRmse.toFixed(3)})`;
  }

  toJSON(): Record<string, unknown> {
    return {
      form: this.form,
      formula: this.formula,
      params: this.params,
      standardErrors: Object.fromEntries(FORMS[this.form].params.map((name, k) => [name, this.standardErrors[k]])),
      n: this.n,
      rss: this.rss,
      r2: this.r2,
      aic: this.aic,
      looRmse: this.looRmse,
      converged: this.converged,
    };
  }
}

function fitValues(form: Form, ns: readonly number[], ys: readonly number[], start?: readonly number[]) {
  const model = {
    f: (n: number, p: readonly number[]) => form.f(n, p),
    gradient: (n: number, p: readonly number[]) => form.gradient(n, p),
  };
  return levenbergMarquardt(model, ns, ys, start ?? form.start(ns, ys));
}

/**
 * Fits one form to the points.
 *
 * @example
 * const fit = fitScalingLaw([{ n: 1e4, score: 8 }, { n: 1e5, score: 14 }, { n: 1e6, score: 19 }], "log-power");
 * fit.params; // { a, b }
 */
export function fitScalingLaw(points: readonly ScalingPoint[], formName: ScalingFormName): ScalingLawFit {
  const form = FORMS[formName];
  if (!form) {
    throw new AnalysisError("XA_ANALYSIS_FORM", `unknown scaling-law form "${formName}"`, {
      field: "form",
      hint: `use ${SCALING_FORMS.join(", ")}`,
    });
  }
  checkPoints(points, form);
  const ns = points.map((p) => p.n);
  const ys = points.map((p) => p.score);
  const result = fitValues(form, ns, ys);
  const n = points.length;
  const k = form.params.length;
  const mean = ys.reduce((a, b) => a + b, 0) / n;
  const tss = ys.reduce((s, y) => s + (y - mean) ** 2, 0);
  const r2 = tss > 0 ? 1 - result.rss / tss : result.rss === 0 ? 1 : 0;
  const aic = n * Math.log(Math.max(result.rss / n, 1e-300)) + 2 * (k + 1);
  const dof = n - k;
  const inv = invert(gram(result.jacobian));
  const s2 = dof > 0 ? result.rss / dof : Number.NaN;
  const covariance = inv && dof > 0 ? inv.map((row) => row.map((v) => v * s2)) : undefined;
  const standardErrors = form.params.map((_, i) => (covariance ? Math.sqrt(Math.max(covariance[i]![i]!, 0)) : Number.NaN));
  let looRmse = Number.NaN;
  if (n - 1 >= k && new Set(ns).size - 1 >= k) {
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const keepN = ns.filter((_, j) => j !== i);
      const keepY = ys.filter((_, j) => j !== i);
      const loo = fitValues(form, keepN, keepY, result.params);
      sq += (ys[i]! - form.f(ns[i]!, loo.params)) ** 2;
    }
    looRmse = Math.sqrt(sq / n);
  }
  return new ScalingLawFit(formName, result.params, standardErrors, covariance, n, result.rss, r2, aic, looRmse, result.converged);
}

/** All candidate fits and the one AIC prefers. */
export interface ScalingLawSelection {
  best: ScalingLawFit;
  /** Every form that could be fitted, best AIC first. */
  fits: ScalingLawFit[];
  /** Forms skipped, with why (e.g. too few points for three parameters). */
  skipped: Array<{ form: ScalingFormName; reason: string }>;
}

/**
 * Fits every candidate form the points allow and picks the lowest AIC.
 *
 * @example
 * const { best, fits } = fitScalingLaws(points);
 * best.format(); // "log-power: 3.1·(ln N)^1.05 (R² 0.99, ...)"
 */
export function fitScalingLaws(points: readonly ScalingPoint[], forms: readonly ScalingFormName[] = SCALING_FORMS): ScalingLawSelection {
  const fits: ScalingLawFit[] = [];
  const skipped: ScalingLawSelection["skipped"] = [];
  let firstError: unknown;
  for (const form of forms) {
    try {
      fits.push(fitScalingLaw(points, form));
    } catch (err) {
      if (!(err instanceof AnalysisError)) throw err;
      firstError ??= err;
      skipped.push({ form, reason: err.message });
    }
  }
  if (fits.length === 0) throw firstError;
  fits.sort((a, b) => a.aic - b.aic);
  return { best: fits[0]!, fits, skipped };
}
