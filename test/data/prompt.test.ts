import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  encodeExample,
  fillTemplate,
  IGNORE_INDEX,
  type InstructionExample,
  type PromptTokenizer,
  promptSpans,
  renderAlpaca,
  renderChat,
  renderPrompt,
  TRANSLATION_TEMPLATES,
} from "../../src/data/index.js";
import { DataError } from "../../src/util/errors.js";

/** One id per UTF-16 code unit + 10, so ids are easy to predict. */
const charTokenizer: PromptTokenizer = {
  encode: (text) => [...text].map((c) => c.charCodeAt(0) + 10),
  bosId: 1,
  eosId: 2,
  padId: 0,
};

const example: InstructionExample = {
  id: "t:0",
  instruction: "Translate the following sentences from English to Chinese.",
  input: "Hello.",
  output: "你好。",
  lang: "zh",
  source: "t",
  task: "translation",
};

describe("prompt formats", () => {
  it("renders the Stanford Alpaca prompt with input, byte for byte", () => {
    const { prompt, response } = renderAlpaca(example);
    assert.equal(
      prompt,
      "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate the following sentences from English to Chinese.\n\n### Input:\nHello.\n\n### Response:",
    );
    assert.equal(response, "你好。");
  });

  it("uses the no-input prompt when input is empty and keeps $ patterns literal", () => {
    const { prompt } = renderAlpaca({ instruction: "Price is $& now", input: "", output: "x" });
    assert.equal(
      prompt,
      "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nPrice is $& now\n\n### Response:",
    );
  });

  it("renders chat with earlier turns", () => {
    const { prompt, response } = renderChat({ ...example, meta: { turns: [{ user: "Hi", assistant: "Hello!" }] } });
    assert.ok(prompt.includes("\nUSER: Hi\nASSISTANT: Hello!\nUSER: Translate the following"));
    assert.ok(prompt.endsWith("\n\nHello.\nASSISTANT:"));
    assert.equal(response, " 你好。");
  });

  it("gives the response span inside the full text", () => {
    for (const format of ["alpaca", "chat"] as const) {
      const { text, response } = promptSpans(example, format);
      assert.equal(text.slice(response[0], response[1]), renderPrompt(example, format).response);
      assert.equal(response[1], text.length);
    }
  });

  it("has 33 distinct templates, template 0 the canonical sentence", () => {
    assert.equal(TRANSLATION_TEMPLATES.length, 33);
    assert.equal(new Set(TRANSLATION_TEMPLATES).size, 33);
    for (const t of TRANSLATION_TEMPLATES) assert.ok(t.includes("{source}") && t.includes("{target}"), t);
    assert.equal(fillTemplate(TRANSLATION_TEMPLATES[0]!, "English", "Greek"), "Translate the following sentences from English to Greek.");
  });
});

describe("encodeExample", () => {
  it("masks the prompt and aligns labels to the next token", () => {
    const { prompt, response } = renderAlpaca(example);
    const enc = encodeExample(example, charTokenizer, { maxLength: 512 });
    const p = charTokenizer.encode(prompt);
    const r = charTokenizer.encode(response);
    assert.deepEqual(enc.inputIds, [1, ...p, ...r, 2]);
    assert.equal(enc.promptLength, 1 + p.length);
    for (let t = 0; t < enc.inputIds.length; t++) {
      const expected = t + 1 >= 1 + p.length && t + 1 < enc.inputIds.length ? enc.inputIds[t + 1] : IGNORE_INDEX;
      assert.equal(enc.labels[t], expected, `position ${t}`);
    }
    assert.equal(enc.supervisedTokens, r.length + 1);
    assert.equal(enc.labels.at(-2), 2, "EOS is the last target");
    assert.equal(enc.truncated, false);
  });

  it("pads with padId, label -100 and mask 0", () => {
    const enc = encodeExample({ instruction: "a", input: "", output: "b" }, charTokenizer, { maxLength: 300, pad: true });
    assert.equal(enc.inputIds.length, 300);
    assert.equal(enc.labels.length, 300);
    const real = enc.attentionMask.indexOf(0);
    assert.ok(real > 0);
    assert.ok(enc.inputIds.slice(real).every((id) => id === 0));
    assert.ok(enc.labels.slice(real - 1).every((l) => l === IGNORE_INDEX));
  });

  it("truncates from the right: the response tail and EOS go first", () => {
    const { prompt } = renderAlpaca(example);
    const maxLength = 1 + prompt.length + 2;
    const enc = encodeExample(example, charTokenizer, { maxLength });
    assert.equal(enc.inputIds.length, maxLength);
    assert.equal(enc.truncated, true);
    assert.ok(!enc.inputIds.includes(2));
    assert.equal(enc.supervisedTokens, 2, "both kept response tokens are targets");
  });

  it("rejects a bad maxLength", () => {
    assert.throws(
      () => encodeExample(example, charTokenizer, { maxLength: 1 }),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_MAX_LENGTH",
    );
  });
});
