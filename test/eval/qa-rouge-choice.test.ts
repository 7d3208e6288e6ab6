import assert from "node:assert/strict";
import { test } from "node:test";
import {
  choiceAccuracy,
  containsAnswer,
  exactMatch,
  extractChoice,
  normalizeAnswer,
  qaScores,
  rougeL,
  rougeN,
  rougeScores,
  rougeTokens,
  tokenF1,
} from "../../src/eval/index.js";
import { AnalysisError } from "../../src/util/errors.js";

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test("MLQA normalisation per language (outputs checked against mlqa_evaluation_v1.py)", () => {
  assert.equal(normalizeAnswer("The Eiffel Tower!", "en"), "eiffel tower");
  assert.equal(normalizeAnswer("北京大学 is great, 好的", "zh"), "北 京 大 学 is great 好 的");
  assert.equal(normalizeAnswer("của tôi là cái gì", "vi"), "tôi gì");
  assert.equal(normalizeAnswer("الكتاب الجديد", "ar"), "كتاب جديد");
  assert.equal(normalizeAnswer("Der Hund, die Katze", "de"), "hund katze");
  assert.equal(normalizeAnswer("a_the an-the theatre", "en"), "athe anthe theatre"); // "_" and "-" are punctuation
  assert.equal(normalizeAnswer("$5 + 3 = 8", "en"), "5 3 8"); // string.punctuation symbols go too
  assert.equal(normalizeAnswer("हिन्दी भाषा।", "hi"), "हिन्दी भाषा");
  assert.equal(normalizeAnswer("theatre the", "en"), "theatre"); // articles only as whole words
});

test("languages outside MLQA: generic normalisation, or an error on request", () => {
  assert.equal(normalizeAnswer("Η Ελλάδα, χώρα.", "el"), "η ελλάδα χώρα");
  assert.throws(
    () => normalizeAnswer("x", "tr", { unknownLanguage: "error" }),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_QA_LANGUAGE",
  );
});

test("exact match and token F1 by hand, best over gold answers", () => {
  assert.equal(exactMatch("The cat.", ["a cat"], "en"), 1);
  assert.equal(exactMatch("the big cat", ["a big dog"], "en"), 0);
  close(tokenF1("the big cat", ["a big dog"], "en"), 0.5); // P = R = 1/2
  close(tokenF1("北京大学", ["北京"], "zh"), 2 / 3); // P = 1/2, R = 1
  close(tokenF1("big cat", ["dog", "big cat"], "en"), 1);
  assert.equal(tokenF1("", ["cat"], "en"), 0);
  assert.throws(
    () => exactMatch("x", [], "en"),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_QA_NO_GOLD",
  );
});

test("the study's containment score: gold in output, case-insensitive", () => {
  assert.equal(containsAnswer("The answer is Paris.", ["paris"]), 1);
  assert.equal(containsAnswer("The answer is Paris.", ["London", "PARIS"]), 1);
  assert.equal(containsAnswer("The answer is Paris.", ["London"]), 0);
  assert.equal(containsAnswer("İstanbul", ["i̇stanbul"]), 1);
  const s = qaScores([
    { prediction: "Paris", answers: ["Paris"], lang: "en" },
    { prediction: "It is in Paris, France", answers: ["Paris"], lang: "en" },
  ]);
  assert.equal(s.exactMatch, 50);
  assert.equal(s.contains, 100);
  close(s.f1, (100 * (1 + 1 / 3)) / 2); // second: 5 tokens, P = 1/5, R = 1, F = 1/3
});

test("ROUGE-1/2/L by hand", () => {
  const p = ["the", "cat", "sat"];
  const r = ["the", "cat", "sat", "down"];
  close(rougeN(p, r, 1).f, (2 * 1 * 0.75) / 1.75);
  close(rougeN(p, r, 2).f, (2 * 1 * (2 / 3)) / (1 + 2 / 3));
  close(rougeL(["a", "b", "c", "d"], ["a", "c", "x", "d"]).recall, 3 / 4); // LCS a c d
  const s = rougeScores(["the cat sat"], [["a dog", "the cat sat down"]]);
  close(s.rouge1, (100 * (2 * 0.75)) / 1.75);
  assert.equal(rougeScores([""], ["x"]).rouge1, 0);
});

test("ROUGE tokenisers: Unicode words with marks, one token per CJK character; rouge-score's ASCII-only", () => {
  assert.deepEqual(rougeTokens("北京大学很好"), ["北", "京", "大", "学", "很", "好"]);
  assert.deepEqual(rougeTokens("हिन्दी भाषा"), ["हिन्दी", "भाषा"]);
  assert.deepEqual(rougeTokens("Hello, World! 北京", "rouge-score"), ["hello", "world"]);
  assert.throws(
    () => rougeScores(["a"], []),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_LENGTH_MISMATCH",
  );
});

test("multiple choice: first stand-alone label, accuracy in percent", () => {
  assert.equal(extractChoice("The answer is (B).", ["A", "B", "C", "D"]), "B");
  assert.equal(extractChoice("Because Alpha", ["A", "B"]), undefined);
  assert.equal(extractChoice("选 C", ["A", "B", "C", "D"]), "C");
  assert.equal(choiceAccuracy(["A", "I think C", "B"], ["A", "B", "B"]), (100 * 2) / 3);
  assert.throws(
    () => choiceAccuracy(["A"], ["A", "B"]),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_LENGTH_MISMATCH",
  );
});
