import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { BLEU, type BleuTokenizerName, CHRF, type SmoothMethod } from "../../src/eval/index.js";
import { fixture } from "../helpers.js";

interface Case {
  metric: "bleu" | "chrf";
  options: Record<string, string | number | boolean>;
  hypotheses: string[];
  references: string[][];
  score: number;
  line: string;
}

// Cases scored by sacreBLEU 2.6.0 (see test/fixtures/eval/make_sacrebleu_cases.py):
// random segments over adversarial tokens (CJK, Greek final sigma, Arabic, Hindi,
// entities, numbers with separators, astral characters, Python-only whitespace).
const path = process.env.XALIGN_SACREBLEU_CASES ?? fixture("eval", "sacrebleu-2.6.0-cases.json");
const { cases } = JSON.parse(readFileSync(path, "utf8")) as { cases: Case[] };

function metricFor(c: Case): BLEU | CHRF {
  const o = c.options;
  if (c.metric === "bleu") {
    return new BLEU({
      tokenize: o.tokenize as BleuTokenizerName,
      smoothMethod: o.smooth_method as SmoothMethod,
      ...(o.smooth_value !== undefined ? { smoothValue: o.smooth_value as number } : {}),
      lowercase: o.lowercase as boolean,
      effectiveOrder: o.effective_order as boolean,
    });
  }
  return new CHRF({
    wordOrder: o.word_order as number,
    lowercase: o.lowercase as boolean,
    whitespace: o.whitespace as boolean,
    epsSmoothing: o.eps_smoothing as boolean,
  });
}

test(`BLEU and chrF equal sacreBLEU 2.6.0 on ${cases.length} recorded cases, score and printed line`, () => {
  const failures: string[] = [];
  cases.forEach((c, i) => {
    const score = metricFor(c).corpusScore(c.hypotheses, c.references);
    if (Math.abs(score.score - c.score) > 1e-9 || score.format() !== c.line) {
      failures.push(`case ${i}: got ${score.format()} (${score.score})\n   want ${c.line} (${c.score})`);
    }
  });
  assert.equal(failures.length, 0, failures.slice(0, 5).join("\n"));
});
