import assert from "node:assert/strict";
import { test } from "node:test";
import { BLEU, CHRF, confidenceFromSamples, pairedBootstrap, scoreWithConfidence } from "../../src/eval/index.js";
import { AnalysisError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";

function corpus(seed: number, n: number, noise: number) {
  const rng = new Rng(seed);
  const vocab = ["the", "cat", "dog", "sat", "on", "a", "mat", "rug", "ran", "home", "fast", "slow"];
  const refs: string[] = [];
  const hyps: string[] = [];
  for (let i = 0; i < n; i++) {
    const ref = Array.from({ length: 6 + rng.int(6) }, () => rng.choice(vocab));
    refs.push(ref.join(" "));
    hyps.push(ref.map((w) => (rng.float() < noise ? rng.choice(vocab) : w)).join(" "));
  }
  return { refs, hyps };
}

test("confidenceFromSamples: sacreBLEU's n/40 order statistics and mean", () => {
  const samples = Array.from({ length: 1000 }, (_, i) => 999 - i); // 0..999 shuffled order
  const c = confidenceFromSamples(samples);
  assert.equal(c.lower, 25);
  assert.equal(c.upper, 974);
  assert.equal(c.halfWidth, 474.5);
  assert.equal(c.mean, 499.5);
  assert.throws(() => confidenceFromSamples([]), AnalysisError);
});

test("scoreWithConfidence: interval around the score, seeded and reproducible, signature gains bs and seed", () => {
  const { refs, hyps } = corpus(1, 200, 0.3);
  const a = scoreWithConfidence(new BLEU(), hyps, [refs], { samples: 200, seed: 7 });
  const b = scoreWithConfidence(new BLEU(), hyps, [refs], { samples: 200, seed: 7 });
  assert.equal(a.confidence!.mean, b.confidence!.mean);
  assert.ok(a.confidence!.lower <= a.score && a.score <= a.confidence!.upper);
  assert.ok(a.confidence!.halfWidth > 0);
  assert.match(a.signature!.format(), /^nrefs:1\|bs:200\|seed:7\|case:mixed\|/);
  assert.match(a.format(), /^BLEU\|.* = \d+\.\d\d \(μ = \d+\.\d\d ± \d+\.\d\d\) /);
  const c = scoreWithConfidence(new CHRF(), hyps, [refs], { samples: 50 });
  assert.equal(c.confidence!.samples, 50);
});

test("paired bootstrap: a much better system is significant, a system against itself is not", () => {
  const { refs, hyps: good } = corpus(2, 150, 0.1);
  const { hyps: bad } = corpus(2, 150, 0.6);
  const r = pairedBootstrap(new BLEU(), bad, good, [refs], { samples: 300 });
  assert.ok(r.difference > 0);
  assert.ok(r.pValue < 0.05, `p = ${r.pValue}`);
  assert.equal(r.signature.format(), "nrefs:1|bs:300|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  const same = pairedBootstrap(new BLEU(), good, good, [refs], { samples: 100 });
  assert.equal(same.difference, 0);
  assert.equal(same.pValue, 1); // every resampled difference ties the real one (0)
});

test("paired bootstrap rejects systems of different lengths and bad sample counts", () => {
  assert.throws(
    () => pairedBootstrap(new BLEU(), ["a"], ["a", "b"], [["a"]]),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_LENGTH_MISMATCH",
  );
  assert.throws(
    () => scoreWithConfidence(new BLEU(), ["a"], [["a"]], { samples: 0 }),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_BOOTSTRAP",
  );
});
