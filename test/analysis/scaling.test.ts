import assert from "node:assert/strict";
import { test } from "node:test";
import {
  allocateBudget,
  fitScalingLaw,
  fitScalingLaws,
  levenbergMarquardt,
  type ScalingFormName,
  type ScalingPoint,
  studentTQuantile,
} from "../../src/analysis/index.js";
import { AnalysisError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";

const SIZES = [1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6];

function synth(f: (n: number) => number, noise: number, seed = 1): ScalingPoint[] {
  const rng = new Rng(seed);
  return SIZES.map((n) => ({ n, score: f(n) + noise * rng.normal() }));
}

const within = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} vs ${want}`);

test("Levenberg–Marquardt fits an exponential decay from a poor start", () => {
  const xs = [0, 1, 2, 3, 4, 5, 6];
  const ys = xs.map((x) => 5 * Math.exp(-0.7 * x) + 1);
  const model = { f: (x: number, [a, k, c]: readonly number[]) => a! * Math.exp(-k! * x) + c! };
  const r = levenbergMarquardt(model, xs, ys, [1, 0.1, 0]);
  within(r.params[0]!, 5, 1e-6, "a");
  within(r.params[1]!, 0.7, 1e-6, "k");
  within(r.params[2]!, 1, 1e-6, "c");
  assert.ok(r.converged);
});

test("each form recovers known parameters from noiseless points", () => {
  const truths: Array<[ScalingFormName, number[], (n: number) => number]> = [
    ["log-linear", [-20, 3.5], (n) => -20 + 3.5 * Math.log(n)],
    ["log-power", [0.8, 1.6], (n) => 0.8 * Math.log(n) ** 1.6],
    ["log-power-offset", [0.5, 1.8, -4], (n) => 0.5 * Math.log(n) ** 1.8 - 4],
    ["saturating", [60, 0.3, 35], (n) => 35 - 60 * n ** -0.3],
  ];
  for (const [form, params, f] of truths) {
    const fit = fitScalingLaw(synth(f, 0), form);
    params.forEach((p, k) => {
      within(fit.values[k]!, p, 1e-4 * Math.max(1, Math.abs(p)), `${form} param ${k}`);
    });
    within(fit.r2, 1, 1e-9, `${form} R²`);
  }
});

test("with noise: parameters within a few standard errors, R² high, AIC picks the true form, LOO error near the noise", () => {
  const truth = (n: number) => 35 - 60 * n ** -0.3;
  const points = synth(truth, 0.3, 7);
  const fit = fitScalingLaw(points, "saturating");
  const [a, b, c] = fit.values;
  const [sa, sb, sc] = fit.standardErrors;
  within(a!, 60, 4 * sa!, "a");
  within(b!, 0.3, 4 * sb!, "b");
  within(c!, 35, 4 * sc!, "c");
  assert.ok(fit.r2 > 0.99, `R² ${fit.r2}`);
  assert.ok(fit.looRmse > 0 && fit.looRmse < 1.5, `LOO ${fit.looRmse}`);
  const sel = fitScalingLaws(points);
  assert.equal(sel.fits.length, 4);
  assert.ok(sel.fits[0]!.aic <= sel.fits[1]!.aic);
  assert.ok(["saturating", "log-power-offset"].includes(sel.best.form), sel.best.form);
  const logLinear = sel.fits.find((f) => f.form === "log-linear")!;
  assert.ok(sel.best.aic < logLinear.aic);
});

test("inversion: pairs needed for a score round-trips; unreachable scores are an error", () => {
  const fit = fitScalingLaw(
    synth((n) => 35 - 60 * n ** -0.3, 0),
    "saturating",
  );
  const need = fit.pairsNeeded(30);
  within(fit.predict(need), 30, 1e-9, "round trip");
  within(need, (60 / 5) ** (1 / 0.3), need * 1e-4, "closed form");
  assert.throws(
    () => fit.pairsNeeded(40),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_ANALYSIS_UNREACHABLE",
  );
  const lp = fitScalingLaw(
    synth((n) => 0.8 * Math.log(n) ** 1.6, 0),
    "log-power",
  );
  within(lp.predict(lp.pairsNeeded(25)), 25, 1e-9, "log-power round trip");
  const ll = fitScalingLaw(
    synth((n) => -20 + 3.5 * Math.log(n), 0),
    "log-linear",
  );
  within(ll.pairsNeeded(10), Math.exp(30 / 3.5), 1e-3 * Math.exp(30 / 3.5), "log-linear inverse");
});

test("confidence band: contains the fit, widens away from the data, uses Student's t", () => {
  const fit = fitScalingLaw(
    synth((n) => 0.8 * Math.log(n) ** 1.6, 0.5, 3),
    "log-power",
  );
  const [inside, outside] = fit.band([3e4, 1e9]);
  assert.ok(inside!.lower < inside!.fit && inside!.fit < inside!.upper);
  assert.ok(outside!.upper - outside!.lower > inside!.upper - inside!.lower);
  within(studentTQuantile(0.975, 5), 2.5706, 1e-4, "t(0.975, 5)");
  assert.match(fit.format(), /^log-power: [\d.]+·\(ln N\)\^[\d.]+ \(R² /);
  assert.deepEqual(Object.keys(fit.toJSON().params as object), ["a", "b"]);
});

test("degenerate input: fewer points than parameters, N ≤ 0, ln N ≤ 0, repeated N, NaN scores", () => {
  const code = (c: string) => (e: unknown) => e instanceof AnalysisError && e.code === c;
  assert.throws(
    () =>
      fitScalingLaw(
        [
          { n: 10, score: 1 },
          { n: 100, score: 2 },
        ],
        "saturating",
      ),
    code("XA_ANALYSIS_TOO_FEW_POINTS"),
  );
  assert.throws(
    () =>
      fitScalingLaw(
        [
          { n: 0, score: 1 },
          { n: 10, score: 2 },
          { n: 100, score: 3 },
        ],
        "log-linear",
      ),
    code("XA_ANALYSIS_BAD_N"),
  );
  assert.throws(
    () =>
      fitScalingLaw(
        [
          { n: -5, score: 1 },
          { n: 10, score: 2 },
        ],
        "saturating",
      ),
    code("XA_ANALYSIS_TOO_FEW_POINTS"),
  );
  assert.throws(
    () =>
      fitScalingLaw(
        [
          { n: 1, score: 0 },
          { n: 10, score: 2 },
          { n: 100, score: 3 },
        ],
        "log-power",
      ),
    code("XA_ANALYSIS_BAD_N"),
  );
  assert.throws(
    () =>
      fitScalingLaw(
        [
          { n: 10, score: 1 },
          { n: 10, score: 2 },
          { n: 10, score: 3 },
        ],
        "log-linear",
      ),
    code("XA_ANALYSIS_TOO_FEW_POINTS"),
  );
  assert.throws(
    () =>
      fitScalingLaw(
        [
          { n: 10, score: Number.NaN },
          { n: 100, score: 2 },
        ],
        "log-linear",
      ),
    code("XA_ANALYSIS_BAD_SCORE"),
  );
  assert.throws(() => fitScalingLaws([{ n: 10, score: 1 }]), code("XA_ANALYSIS_TOO_FEW_POINTS"));
  // Two points: the two-parameter forms fit, the three-parameter ones are skipped with a reason.
  const sel = fitScalingLaws([
    { n: 10, score: 1 },
    { n: 100, score: 2 },
  ]);
  assert.deepEqual(sel.skipped.map((s) => s.form).sort(), ["log-power-offset", "saturating"]);
  assert.ok(Number.isNaN(sel.best.standardErrors[0]!));
});

test("budget allocation: greedy matches brute force on a small case and favours the steeper law", () => {
  const laws = {
    ar: (n: number) => 10 * Math.log1p(n / 1000),
    zh: (n: number) => 4 * Math.log1p(n / 1000),
    tr: (n: number) => 7 * Math.log1p(n / 5000),
  };
  const step = 1000;
  const budget = 20_000;
  const r = allocateBudget({ laws, budget, step, minimum: 0 });
  assert.equal(
    Object.values(r.pairs).reduce((a, b) => a + b, 0),
    budget,
  );
  let best = Number.NEGATIVE_INFINITY;
  for (let a = 0; a <= 20; a++) {
    for (let z = 0; z + a <= 20; z++) {
      const t = 20 - a - z;
      best = Math.max(best, (laws.ar(a * step) + laws.zh(z * step) + laws.tr(t * step)) / 3);
    }
  }
  within(r.meanScore, best, 1e-9, "greedy = optimum");
  assert.ok(r.pairs.ar! > r.pairs.zh!);
  const fit = fitScalingLaw(
    synth((n) => 0.8 * Math.log(n) ** 1.6, 0),
    "log-power",
  );
  const withFits = allocateBudget({ laws: { el: fit, hi: (n) => fit.predict(n) / 2 }, budget: 1e6, step: 1e4 });
  assert.ok(withFits.pairs.el! > withFits.pairs.hi!);
  assert.throws(
    () => allocateBudget({ laws, budget: 1000, step: 1000 }),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_ANALYSIS_BUDGET",
  );
  assert.throws(
    () => allocateBudget({ laws: { el: fit }, budget: 100, step: 10, minimum: 0.5 }),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_ANALYSIS_BAD_N",
  );
});
