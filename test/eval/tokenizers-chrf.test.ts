import assert from "node:assert/strict";
import { test } from "node:test";
import { CHRF, isZhChar, splitPunctuation, tokenize13a, tokenizeChar, tokenizeIntl, tokenizeZh } from "../../src/eval/index.js";
import { pySplit } from "../../src/eval/pytext.js";
import { regexpPostTokensReference, tokens13a } from "../../src/eval/tokenizers.js";
import { AnalysisError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";

test("13a: punctuation split, periods and commas kept inside numbers, entities unescaped", () => {
  assert.equal(tokenize13a("Hello, world!"), "Hello , world !");
  assert.equal(tokenize13a("It costs $1,000.50 (approx.)"), "It costs $ 1,000.50 ( approx . )");
  assert.equal(tokenize13a("5-4 score; well-known"), "5 - 4 score ; well-known");
  assert.equal(tokenize13a("&quot;a&quot; &amp; b &lt;c&gt;"), '" a " & b < c >');
  assert.equal(tokenize13a("The end."), "The end .");
  assert.equal(tokenize13a("In 2020."), "In 2020 .");
  assert.equal(tokenize13a("<skipped> line-\nbreak"), "linebreak");
});

test("intl: Unicode punctuation and symbols split, number-final period stays (mteval-v14)", () => {
  assert.equal(tokenizeIntl("«Ça coûte 5€», dit-il."), "« Ça coûte 5 € » , dit - il .");
  assert.equal(tokenizeIntl("In 2020."), "In 2020.");
  assert.equal(tokenizeIntl("1,5 ¿qué?"), "1,5 ¿ qué ?");
  assert.equal(tokenizeIntl("हिन्दी भाषा।"), "हिन्दी भाषा ।");
});

test("zh: Chinese characters (and sacreBLEU's wide U+2001..U+2A6D range) become tokens", () => {
  assert.equal(tokenizeZh("我爱北京天安门。"), "我 爱 北 京 天 安 门 。");
  assert.equal(tokenizeZh("NLP很好, really."), "NLP 很 好 , really .");
  assert.equal(tokenizeZh("a—b"), "a — b"); // U+2014 falls in the quirk range
  assert.equal(isZhChar(0x2000), false);
  assert.equal(isZhChar(0x2001), true);
  assert.equal(isZhChar(0x20000), false); // astral CJK is not split by sacreBLEU
});

test("char tokeniser works on code points; whitespace split is Python's", () => {
  assert.equal(tokenizeChar("a😀b"), "a 😀 b");
  assert.deepEqual(pySplit(" a\u0085b\u001cc\ufeffd "), ["a", "b", "c\ufeffd"]);
});

test("chrF by hand: 'ab' vs 'ab' is 100, 'ab' vs 'ac' is 25 (P=R=1/4 over effective orders 1-2)", () => {
  const chrf = new CHRF();
  assert.equal(chrf.corpusScore(["ab"], [["ab"]]).score, 100);
  const s = chrf.corpusScore(["ab"], [["ac"]]);
  assert.ok(Math.abs(s.score - 25) < 1e-9, String(s.score));
  assert.equal(s.format(), "chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 25.00");
});

test("chrF: empty hypothesis and no shared characters score 0", () => {
  assert.equal(new CHRF().corpusScore([""], [["abc"]]).score, 0);
  assert.equal(new CHRF().corpusScore(["xyz"], [["abc"]]).score, 0);
  assert.equal(new CHRF({ wordOrder: 2 }).corpusScore([""], [[""]]).score, 0);
});

test("chrF++: word n-grams after splitting one edge punctuation mark; name and signature", () => {
  assert.deepEqual(splitPunctuation("(hi) there, ok ."), ["(hi", ")", "there", ",", "ok", "."]);
  const s = new CHRF({ wordOrder: 2 }).corpusScore(["the cat"], [["the cat"]]);
  assert.equal(s.name, "chrF2++");
  assert.equal(s.format(), "chrF2++|nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0 = 100.00");
  assert.equal(
    new CHRF({ epsSmoothing: true, whitespace: true, lowercase: true }).signature(3).format(),
    "nrefs:3|case:lc|eff:no|nc:6|nw:0|space:yes|version:2.6.0",
  );
});

test("chrF with several references keeps the best-scoring one per segment", () => {
  const one = new CHRF().corpusScore(["the cat sat"], [["the cat sat"]]).score;
  const two = new CHRF().corpusScore(["the cat sat"], [["a dog ran"], ["the cat sat"]]).score;
  assert.equal(two, one);
});

test("chrF option errors", () => {
  assert.throws(
    () => new CHRF({ charOrder: 0, wordOrder: 0 }),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_ORDER",
  );
  assert.throws(
    () => new CHRF({ charOrder: -1 }),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_ORDER",
  );
});

test("the one-scan 13a rules equal the four regex passes on random tricky strings", () => {
  const rng = new Rng(5);
  const alphabet = [
    "0",
    "9",
    ".",
    ",",
    "-",
    " ",
    "a",
    "'",
    "(",
    "!",
    "$",
    "/",
    ":",
    "@",
    "[",
    "`",
    "{",
    "~",
    "\t",
    "\u0085",
    "😀",
    "我",
    "_",
    '"',
    ";",
    "5.",
    "-3",
  ];
  for (let k = 0; k < 20000; k++) {
    let s = "";
    for (let i = rng.int(14); i > 0; i--) s += rng.choice(alphabet);
    assert.deepEqual(tokens13a(s), regexpPostTokensReference(` ${s} `), JSON.stringify(s));
  }
});
