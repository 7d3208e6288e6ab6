import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  buildCrossLingualGeneral,
  buildGeneralInstructions,
  buildHintedTranslation,
  buildInteractiveTranslation,
  buildQaInstructions,
  buildTranslationInstructions,
  cleanPairs,
  corruptTranslation,
  HINTS,
  language,
  normalizeForDedupe,
  PairCleaner,
  pairHash,
  QA_INSTRUCTIONS,
  renderAlpaca,
  renderChat,
  STUDY_LANGUAGES,
  TRANSLATION_TEMPLATES,
  toAlpacaRecord,
} from "../../src/data/index.js";
import { DataError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

describe("cleaning filters", () => {
  it("counts each removed pair under the first filter that removed it", async () => {
    const cleaner = new PairCleaner({ minLength: 2, maxLength: 20, maxRatio: 5, dedupe: "normalized", targetScript: "zh" });
    const pairs = [
      { src: "Hello there.", tgt: "你好。" }, // kept
      { src: "   ", tgt: "空" }, // empty
      { src: "A", tgt: "一个" }, // too short
      { src: "This sentence is much too long.", tgt: "太长了" }, // too long
      { src: "Hello world, how is everyone?", tgt: "大家好吗" }, // too long (29 > 20)
      { src: "Good night to all", tgt: "晚安" }, // length ratio 17/2 > 5
      { src: "Thanks a lot", tgt: "Merci beaucoup" }, // wrong script
      { src: "Hello there.", tgt: "你好。" }, // duplicate
      { src: "hello, THERE", tgt: "你好！" }, // near duplicate
      { src: "Year 2019", tgt: "2019年" }, // kept: Han letters only
    ];
    const kept = await collect(cleanPairs(pairs, cleaner));
    assert.deepEqual(
      kept.map((p) => p.src),
      ["Hello there.", "Year 2019"],
    );
    assert.deepEqual(cleaner.counts, {
      input: 10,
      kept: 2,
      removed: { empty: 1, "too short": 1, "too long": 2, "length ratio": 1, "wrong script": 1, duplicate: 1, "near duplicate": 1 },
    });
  });

  it("checks the script of each study language", () => {
    const samples: Record<string, string> = {
      ar: "مرحبا بالعالم",
      el: "Γεια σου κόσμε",
      hi: "नमस्ते दुनिया",
      tr: "Merhaba dünya",
      vi: "Xin chào thế giới",
      zh: "你好世界",
    };
    for (const lang of STUDY_LANGUAGES) {
      const cleaner = new PairCleaner({ targetScript: lang });
      assert.ok(cleaner.keep("Hello world", samples[lang] as string), `${lang} sample passes`);
      if (language(lang).scripts[0] !== "Latin")
        assert.ok(!cleaner.keep("Hello world", "Hello world again"), `${lang}: Latin text is the wrong script`);
    }
  });

  it("hashes normalised pairs without building the normalised strings", () => {
    const a = "Hello, World! «Quoted» — text";
    const b = "Привет,   МИР!";
    assert.equal(pairHash(a, b, true), pairHash(normalizeForDedupe(a), normalizeForDedupe(b), false));
    assert.notEqual(pairHash(a, b, false), pairHash(b, a, false));
    assert.notEqual(pairHash("ab", "c", false), pairHash("a", "bc", false));
  });

  it("keeps exact-only dedupe from removing near duplicates", () => {
    const cleaner = new PairCleaner({ dedupe: "exact" });
    assert.ok(cleaner.keep("Hi.", "Salut."));
    assert.ok(cleaner.keep("hi", "salut"));
    assert.ok(!cleaner.keep("Hi.", "Salut."));
  });

  it("rejects bad options", () => {
    assert.throws(
      () => new PairCleaner({ maxRatio: -1 }),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_CLEAN",
    );
    assert.throws(
      () => new PairCleaner({ targetScript: "xx" }),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_LANGUAGE",
    );
  });
});

const pairs = [
  { src: "One.", tgt: "一。" },
  { src: "Two.", tgt: "二。" },
  { src: "Three.", tgt: "三。" },
];

describe("translation instructions", () => {
  it("puts English on the source side and assigns templates round-robin", async () => {
    const many = Array.from({ length: 35 }, (_, i) => ({ src: `s${i}`, tgt: `t${i}` }));
    const out = await collect(buildTranslationInstructions(many, { srcLang: "en", tgtLang: "zh", source: "wm" }));
    assert.equal(out[0]?.instruction, "Translate the following sentences from English to Chinese.");
    assert.deepEqual(out[0], {
      id: "wm:0",
      instruction: "Translate the following sentences from English to Chinese.",
      input: "s0",
      output: "t0",
      lang: "zh",
      source: "wm",
      task: "translation",
      meta: { template: 0, direction: "en-zh" },
    });
    assert.deepEqual(
      out.map((e) => e.meta?.template),
      [...Array.from({ length: 33 }, (_, i) => i), 0, 1],
    );
    assert.equal(new Set(out.slice(0, 33).map((e) => e.instruction)).size, 33);
  });

  it("builds reverse and both directions and a fixed template", async () => {
    const reverse = await collect(
      buildTranslationInstructions(pairs, { srcLang: "en", tgtLang: "zh", source: "r", direction: "reverse", template: 0 }),
    );
    assert.equal(reverse[1]?.instruction, "Translate the following sentences from Chinese to English.");
    assert.equal(reverse[1]?.input, "二。");
    assert.equal(reverse[1]?.output, "Two.");
    assert.equal(reverse[1]?.lang, "zh");
    const both = await collect(
      buildTranslationInstructions(pairs, { srcLang: "en", tgtLang: "ar", source: "b", direction: "both", template: 4 }),
    );
    assert.equal(both.length, 6);
    assert.deepEqual(
      both.map((e) => e.meta?.direction),
      ["en-ar", "ar-en", "en-ar", "ar-en", "en-ar", "ar-en"],
    );
    assert.ok(both.every((e) => e.meta?.template === 4));
    await assert.rejects(
      collect(buildTranslationInstructions(pairs, { srcLang: "en", tgtLang: "zh", source: "x", template: 33 })),
      (e: unknown) => e instanceof DataError,
    );
    const named = await collect(
      buildTranslationInstructions(pairs.slice(0, 1), {
        srcLang: "en",
        tgtLang: "xx",
        lang: "xx",
        source: "s",
        template: 0,
        names: { tgt: "Synthetic" },
      }),
    );
    assert.equal(named[0]?.instruction, "Translate the following sentences from English to Synthetic.");
    await assert.rejects(
      collect(buildTranslationInstructions(pairs, { srcLang: "en", tgtLang: "xx", source: "s" })),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_LANGUAGE",
    );
  });
});

describe("general tasks", () => {
  const en = [
    { instruction: "Name a fruit.", input: "", output: "Apple." },
    { instruction: "Add the numbers.", input: "2 and 3", output: "5" },
  ];
  const zh = [
    { instruction: "说出一种水果。", input: "", output: "苹果。" },
    { instruction: "把数字相加。", input: "2 和 3", output: "5" },
  ];

  it("builds en/en and X/X", async () => {
    const out = await collect(buildGeneralInstructions(zh, { lang: "zh", source: "alpaca-zh" }));
    assert.equal(out[0]?.instruction, "说出一种水果。");
    assert.deepEqual(out[0]?.meta, { instructionLang: "zh", responseLang: "zh" });
  });

  it("builds en -> X from aligned files and rejects misaligned ones", async () => {
    const out = await collect(buildCrossLingualGeneral(en, zh, { lang: "zh", source: "x" }));
    assert.equal(out[0]?.instruction, "Name a fruit. Answer in Chinese.");
    assert.equal(out[1]?.input, "2 and 3");
    assert.equal(out[0]?.output, "苹果。");
    await assert.rejects(
      collect(buildCrossLingualGeneral(en, zh.slice(0, 1), { lang: "zh", source: "x", file: "zh.json" })),
      (e: unknown) => {
        return e instanceof DataError && e.code === "XA_DATA_LINE_COUNT" && e.file === "zh.json";
      },
    );
  });
});

describe("QA prompts", () => {
  it("uses a native instruction per study language", async () => {
    for (const lang of STUDY_LANGUAGES) assert.ok(QA_INSTRUCTIONS[lang], lang);
    const qa = {
      id: "q",
      title: "",
      context: "Αθήνα είναι η πρωτεύουσα.",
      question: "Ποια είναι η πρωτεύουσα;",
      answers: ["Αθήνα", "η Αθήνα"],
      lang: "el",
      contextLang: "el",
    };
    const [ex] = await collect(buildQaInstructions([qa], { source: "xquad-el" }));
    assert.equal(ex?.instruction, QA_INSTRUCTIONS.el);
    assert.equal(ex?.input, "Αθήνα είναι η πρωτεύουσα.\n\nΠοια είναι η πρωτεύουσα;");
    assert.equal(ex?.output, "Αθήνα");
    assert.deepEqual(ex?.meta?.answers, ["Αθήνα", "η Αθήνα"]);
    const [english] = await collect(buildQaInstructions([qa], { source: "x", instructionLang: "en" }));
    assert.equal(english?.instruction, QA_INSTRUCTIONS.en);
    await assert.rejects(
      collect(buildQaInstructions([{ ...qa, lang: "sw" }], { source: "x" })),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_LANGUAGE",
    );
  });
});

describe("Bayling-like interactive translation", () => {
  it("groups consecutive pairs into dialogues with the last turn supervised", async () => {
    const out = await collect(
      buildInteractiveTranslation([...pairs, { src: "Four.", tgt: "四。" }, { src: "Five.", tgt: "五。" }], {
        srcLang: "en",
        tgtLang: "zh",
        source: "bay",
        turns: 2,
      }),
    );
    assert.equal(out.length, 2, "the trailing single sentence is dropped");
    const first = out[0];
    assert.deepEqual(first?.meta?.turns, [
      { user: "Translate the following sentences from English to Chinese.\n\nOne.", assistant: "一。" },
    ]);
    assert.equal(first?.input, "Two.");
    assert.equal(first?.output, "二。");
    const chat = renderChat(first!);
    assert.ok(chat.prompt.includes("USER: Translate the following sentences from English to Chinese.\n\nOne.\nASSISTANT: 一。\nUSER: "));
    assert.equal(chat.response, " 二。");
    const flat = toAlpacaRecord(first!);
    assert.deepEqual(Object.keys(flat), ["instruction", "input", "output"]);
    assert.equal(flat.input, "User: Translate the following sentences from English to Chinese.\n\nOne.\nAssistant: 一。\n\nTwo.");
    assert.ok(renderAlpaca(first!).prompt.includes(flat.input), "the Alpaca prompt shows the same folded input as the export");
  });
});

describe("Parrot-like translation with hints", () => {
  it("draws hint kinds by seed, reproducibly", async () => {
    const many = Array.from({ length: 300 }, (_, i) => ({ src: `source sentence number ${i}`, tgt: `target sentence number ${i} here` }));
    const a = await collect(buildHintedTranslation(many, { srcLang: "en", tgtLang: "tr", source: "p", seed: 7 }));
    const b = await collect(buildHintedTranslation(many, { srcLang: "en", tgtLang: "tr", source: "p", seed: 7 }));
    assert.deepEqual(a, b);
    const kinds = new Map<unknown, number>();
    for (const e of a) kinds.set(e.meta?.hint, (kinds.get(e.meta?.hint) ?? 0) + 1);
    for (const k of ["plain", "no-errors", "with-errors"]) assert.ok((kinds.get(k) ?? 0) > 60, `${k} drawn about a third of the time`);
    for (const e of a) {
      if (e.meta?.hint === "no-errors") {
        assert.ok(e.input.endsWith(HINTS["no-errors"]));
        assert.ok(e.output.startsWith("target"));
      }
      if (e.meta?.hint === "with-errors") {
        assert.ok(e.input.endsWith(HINTS["with-errors"]));
        assert.notEqual(e.output, many[Number(e.id.split(":")[1])]?.tgt);
      }
    }
    const onlyPlain = await collect(
      buildHintedTranslation(many.slice(0, 10), {
        srcLang: "en",
        tgtLang: "tr",
        source: "p",
        seed: 1,
        mix: { "no-errors": 0, "with-errors": 0 },
      }),
    );
    assert.ok(onlyPlain.every((e) => e.meta?.hint === "plain" && e.input === many[Number(e.id.split(":")[1])]?.src));
  });

  it("corrupts text with and without spaces", () => {
    const rng = new Rng(3);
    assert.notEqual(corruptTranslation("the cat sat on the mat", rng), "the cat sat on the mat");
    const zh = corruptTranslation("我们今天去公园散步", rng);
    assert.ok(zh.length < "我们今天去公园散步".length);
  });
});

describe("template wording", () => {
  it("every template fills to a sentence naming both languages", () => {
    for (const t of TRANSLATION_TEMPLATES) {
      const filled = t.replace("{source}", "English").replace("{target}", "Hindi");
      assert.ok(filled.includes("English") && filled.includes("Hindi"));
    }
  });
});
