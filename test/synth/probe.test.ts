import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { competenceProbe, firstSentence, probePrompt, type SynthQaSet } from "../../src/synth/index.js";
import { DataError } from "../../src/util/errors.js";

const set = (language: string, context: string, gold: string[]): SynthQaSet => ({
  language,
  chance: 0.25,
  data: [
    {
      title: "t",
      paragraphs: [{ context, qas: gold.map((g, i) => ({ id: `q${i}`, question: `Q${i}?`, answers: [{ text: g, answer_start: 0 }] })) }],
    },
  ],
});

describe("competence probe", () => {
  it("scores gold-contained-in-first-sentence per language, next to chance", async () => {
    const en = set("en", "Talo lives in Varnek.", ["Varnek", "Talo"]);
    const zh = set("zh", "Talo住Varnek。", ["Varnek"]);
    const results = await competenceProbe([en, zh], async (prompts) =>
      prompts.map((p) => (p.endsWith("Q0?") ? "Varnek. Talo." : p.includes("住") ? "Varnek。" : "Babu. Talo")),
    );
    assert.deepEqual(
      results.map((r) => [r.language, r.correct, r.questions, r.chance]),
      [
        ["en", 1, 2, 0.25],
        ["zh", 1, 1, 0.25],
      ],
    );
    assert.equal(results[0]?.accuracy, 0.5);
  });

  it("builds plain-text prompts as pretraining documents do", () => {
    assert.equal(probePrompt("A b.", "Where?", true), "A b. Where?");
    assert.equal(probePrompt("甲乙。", "哪？", false), "甲乙。哪？");
    assert.equal(firstSentence(" Varnek. Talo"), "Varnek");
    assert.equal(firstSentence("Varnek。x"), "Varnek");
  });

  it("rejects a callback that returns the wrong number of outputs", async () => {
    await assert.rejects(
      competenceProbe([set("en", "c", ["a", "b"])], async () => ["a"]),
      (e: unknown) => e instanceof DataError && e.code === "XA_SYNTH_PROBE",
    );
  });
});
