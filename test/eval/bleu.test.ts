import assert from "node:assert/strict";
import { test } from "node:test";
import { BLEU, computeBleu, formatFixed, spmTokenizer, spmTokenizerFor } from "../../src/eval/index.js";
import { AnalysisError } from "../../src/util/errors.js";

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test("corpus BLEU by hand: clipped counts 5/6, 3/5, 2/4, 1/3 give (1/12)^(1/4)", () => {
  const s = new BLEU().corpusScore(["the cat sat on the mat"], [["the cat sat on a mat"]]);
  assert.deepEqual(s.counts, [5, 3, 2, 1]);
  assert.deepEqual(s.totals, [6, 5, 4, 3]);
  close(s.score, 100 * (1 / 12) ** 0.25);
  assert.equal(
    s.format(),
    "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 53.73 83.3/60.0/50.0/33.3 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)",
  );
  assert.equal(s.format({ signature: false, scoreOnly: true }), "53.73");
});

test("brevity penalty exp(1 - r/c) and effective order for a 2-token sentence", () => {
  const eff = new BLEU({ effectiveOrder: true }).sentenceScore("the cat", ["the cat sat"]);
  close(eff.bp, Math.exp(1 - 3 / 2));
  close(eff.score, 100 * Math.exp(1 - 3 / 2));
  assert.match(eff.signature!.format(), /eff:yes/);
  // Without effective order the missing 3- and 4-grams floor the geometric mean to 0.
  assert.equal(new BLEU().sentenceScore("the cat", ["the cat sat"]).score, 0);
});

test("the four smoothing methods on 'a b c d' vs 'a b x d' (3/4, 1/3, 0/2, 0/1)", () => {
  const score = (smoothMethod: "exp" | "floor" | "add-k" | "none") =>
    new BLEU({ smoothMethod }).corpusScore(["a b c d"], [["a b x d"]]).score;
  close(score("exp"), 100 * (0.75 * (1 / 3) * (1 / 4) * (1 / 4)) ** 0.25); // 100/(2*2), 100/(4*1)
  close(score("floor"), 100 * (0.75 * (1 / 3) * (0.1 / 2) * (0.1 / 1)) ** 0.25);
  close(score("add-k"), 100 * (0.75 * (2 / 4) * (1 / 3) * (1 / 2)) ** 0.25);
  assert.equal(score("none"), 0);
  close(
    new BLEU({ smoothMethod: "floor", smoothValue: 0.5 }).corpusScore(["a b c d"], [["a b x d"]]).score,
    100 * (0.75 * (1 / 3) * 0.25 * 0.5) ** 0.25,
  );
});

test("signatures print smoothing values and short keys like sacreBLEU", () => {
  assert.equal(new BLEU().signature().format(), "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
  assert.equal(new BLEU().signature().format(true), "#:1|c:mixed|e:no|tok:13a|s:exp|v:2.6.0");
  assert.equal(
    new BLEU({ smoothMethod: "floor", lowercase: true, tokenize: "zh" }).signature(2).format(),
    "nrefs:2|case:lc|eff:no|tok:zh|smooth:floor[0.10]|version:2.6.0",
  );
  assert.equal(
    new BLEU({ smoothMethod: "add-k", smoothValue: 2 }).signature("var").format(),
    "nrefs:var|case:mixed|eff:no|tok:13a|smooth:add-k[2.00]|version:2.6.0",
  );
});

test("empty hypothesis: 0 with BP 0; no matches: 0", () => {
  const empty = new BLEU().corpusScore([""], [["a b c"]]);
  assert.equal(empty.score, 0);
  assert.equal(empty.format({ signature: false }), "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 3)");
  const none = new BLEU().corpusScore(["x y z w"], [["a b c d"]]);
  assert.equal(none.score, 0);
  assert.deepEqual(none.counts, [0, 0, 0, 0]);
  assert.equal(none.bp, 1);
});

test("multiple references: clip by the largest count in any one reference, closest (then shorter) length", () => {
  // 'the' appears twice in ref 2, once in ref 1: both hypothesis 'the's match.
  const s = new BLEU().corpusScore(["the the"], [["the cat sits"], ["the dog and the"]]);
  assert.equal(s.counts[0], 2);
  assert.equal(s.refLen, 3); // |2-3| < |2-4|
  const tie = new BLEU().corpusScore(["a b c"], [["a b c d"], ["a b"]]);
  assert.equal(tie.refLen, 2); // both differ by one: the shorter wins
  // A null entry gives that segment fewer references; nrefs becomes "var".
  const v = new BLEU().corpusScore(
    ["a b", "c d"],
    [
      ["a b", "c d"],
      ["a b", null],
    ],
  );
  assert.match(v.signature!.format(), /^nrefs:var\|/);
});

test("lowercase folds case before counting", () => {
  assert.equal(new BLEU().corpusScore(["THE CAT"], [["the cat"]]).counts[0], 0);
  const lc = new BLEU({ lowercase: true }).corpusScore(["THE CAT"], [["the cat"]]);
  assert.equal(lc.counts[0], 2);
  assert.match(lc.signature!.format(), /case:lc/);
});

test("spBLEU through a user-supplied SentencePiece encoder", () => {
  const pieces = (text: string) => text.split(" ").flatMap((w) => ["▁", ...Array.from(w)]);
  const s = new BLEU({ tokenize: spmTokenizer(pieces) }).corpusScore(["ab"], [["ab"]]);
  assert.deepEqual(s.totals, [3, 2, 1, 0]);
  assert.match(s.signature!.format(), /tok:flores101/);
  const obj = new BLEU({ tokenize: spmTokenizer({ encodeToPieces: pieces }, "flores200") });
  assert.match(obj.signature().format(), /tok:flores200/);
  assert.throws(
    () => new BLEU({ tokenize: "spm" as never }),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_SPM_MODEL",
  );
  assert.throws(
    () => spmTokenizer({} as never),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_SPM_MODEL",
  );
});

test("bad input is an AnalysisError with a code", () => {
  const code = (fn: () => unknown, c: string) => assert.throws(fn, (e: unknown) => e instanceof AnalysisError && e.code === c);
  code(() => new BLEU().corpusScore([], [[]]), "XA_EVAL_EMPTY");
  code(() => new BLEU().corpusScore(["a", "b"], [["a"]]), "XA_EVAL_LENGTH_MISMATCH");
  code(() => new BLEU().corpusScore(["a"], ["a"] as never), "XA_EVAL_REFERENCES");
  code(() => new BLEU().corpusScore([null as never], [["a"]]), "XA_EVAL_TYPE");
  code(() => new BLEU().corpusScore(["a"], [[null]]), "XA_EVAL_NO_REFERENCE");
  code(() => new BLEU({ tokenize: "moses" as never }), "XA_EVAL_TOKENIZER");
  code(() => new BLEU({ smoothMethod: "laplace" as never }), "XA_EVAL_SMOOTH");
});

test("computeBleu from statistics; long segments beyond the packed-id limit still count exactly", () => {
  close(computeBleu([2, 1, 0, 0], [2, 1, 0, 0], 2, 2, "none", undefined, true).score, 100);
  const words = Array.from({ length: 5000 }, (_, i) => `w${i}`);
  const hyp = words.join(" ");
  const ref = [...words.slice(0, 2500), "x", ...words.slice(2500)].join(" ");
  const s = new BLEU().corpusScore([hyp], [[ref]]);
  assert.deepEqual(s.counts, [5000, 4998, 4996, 4994]);
});

test("formatFixed rounds exact ties to even like Python's format", () => {
  assert.equal(formatFixed(0.125, 2), "0.12");
  assert.equal(formatFixed(0.375, 2), "0.38");
  assert.equal(formatFixed(2.5, 0), "2");
  assert.equal(formatFixed(-2.5, 0), "-2");
  assert.equal(formatFixed(0.1 + 0.2, 2), "0.30");
  assert.equal(formatFixed(1.005, 2), "1.00"); // 1.005 is stored just below the tie
  assert.equal(formatFixed(Number.NaN, 2), "nan");
});

test("spBLEU with an asynchronous encoder (like src/tokenizer's Tokenizer): lines are encoded up front", async () => {
  const calls: string[] = [];
  const model = {
    tokenize: async (text: string) => {
      calls.push(text);
      return text.split(" ").map((w) => `▁${w}`);
    },
  };
  const hyps = ["the cat  ", "a dog"];
  const refs = ["the cat", "a dog"];
  const tok = await spmTokenizerFor(model, [...hyps, ...refs]);
  const s = new BLEU({ tokenize: tok, effectiveOrder: true }).corpusScore(hyps, [refs]);
  assert.ok(Math.abs(s.score - 100) < 1e-9);
  assert.deepEqual(calls, ["the cat", "a dog"]); // rstripped and deduplicated, as BLEU will look them up
  assert.throws(
    () => new BLEU({ tokenize: tok }).corpusScore(["unseen"], [["a dog"]]),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_SPM_NOT_ENCODED",
  );
});
