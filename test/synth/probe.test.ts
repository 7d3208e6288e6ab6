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

  it("scores exact answers and, on counterfactual sets, how often the memorised (world) answer is given", async () => {
    const cf: SynthQaSet = {
      language: "en",
      chance: 0.5,
      data: [
        {
          title: "t",
          paragraphs: [
            {
              context: "Talo is a baker. Mira is a tailor.",
              qas: [
                { id: "a", question: "What is Talo?", answers: [{ text: "baker", answer_start: 10 }], memorised: "farmer" },
                { id: "b", question: "What is Mira?", answers: [{ text: "tailor", answer_start: 28 }], memorised: "tailor" },
                { id: "c", question: "Who is a tailor?", answers: [{ text: "Mira", answer_start: 17 }], memorised: "Talo" },
              ],
            },
          ],
        },
      ],
    };
    const [r] = await competenceProbe([cf], async (prompts) =>
      prompts.map((p) => (p.endsWith("Talo?") ? "farmer." : p.endsWith("Mira?") ? "a tailor." : "Mira.")),
    );
    assert.equal(r?.correct, 2);
    assert.equal(r?.exact, 1 / 3, "'a tailor' contains the answer but is not exact");
    assert.equal(r?.memorised, 1 / 2, "of the two questions whose world answer differs, one got the world's");
  });

  it("rejects a callback that returns the wrong number of outputs", async () => {
    await assert.rejects(
      competenceProbe([set("en", "c", ["a", "b"])], async () => ["a"]),
      (e: unknown) => e instanceof DataError && e.code === "XA_SYNTH_PROBE",
    );
  });
});
