import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { type GenerationExample, readPredictions, renderPrompt, runGeneration, scoreByLanguage, scoreTable } from "../../src/eval/index.js";
import { AnalysisError, DataError } from "../../src/util/errors.js";
import { tempDir } from "../helpers.js";

const examples: GenerationExample[] = [
  { id: "zh-1", lang: "zh", input: "hello", reference: "你好" },
  { id: "zh-2", lang: "zh", input: "thanks", reference: "谢谢" },
  { id: "ar-1", lang: "ar", input: "hello", reference: "مرحبا" },
];
const dictionary: Record<string, string> = { hello: "你好", thanks: "谢谢" };

function fakeModel() {
  const calls: string[][] = [];
  const settingsSeen: unknown[] = [];
  const generate = async (prompts: string[], settings: Record<string, unknown>) => {
    calls.push(prompts);
    settingsSeen.push(settings);
    return prompts.map((p) => dictionary[p.split(": ")[1]!] ?? "?");
  };
  return { calls, settingsSeen, generate };
}

test("renderPrompt fills {fields}, keeps {{ }}, and names a missing field", () => {
  assert.equal(renderPrompt("Translate to {lang}: {input} {{x}}", examples[0]!), "Translate to zh: hello {x}");
  assert.equal(
    renderPrompt((ex) => `Q: ${ex.input}`, examples[0]!),
    "Q: hello",
  );
  assert.throws(
    () => renderPrompt("{question}", examples[0]!),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_TEMPLATE_FIELD",
  );
});

test("runGeneration batches, reports progress, writes JSONL and resumes without regenerating", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const out = join(dir, "run", "predictions.jsonl");
    const model = fakeModel();
    const progress: number[] = [];
    const first = await runGeneration({
      examples: examples.slice(0, 2),
      generate: model.generate,
      template: "Translate: {input}",
      batchSize: 1,
      settings: { maxNewTokens: 8 },
      out,
      onProgress: (p) => progress.push(p.done),
    });
    assert.equal(first.generated, 2);
    assert.deepEqual(progress, [0, 1, 2]);
    assert.equal(model.calls.length, 2);
    assert.deepEqual(model.settingsSeen[0], { maxNewTokens: 8 });
    const lines = (await readFile(out, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(lines[0], { id: "zh-1", prompt: "Translate: hello", reference: "你好", prediction: "你好", lang: "zh" });

    const again = await runGeneration({ examples, generate: model.generate, template: "Translate: {input}", batchSize: 8, out });
    assert.equal(again.skipped, 2);
    assert.equal(again.generated, 1);
    assert.deepEqual(model.calls[2], ["Translate: hello"]); // only ar-1 was new
    assert.deepEqual(
      again.records.map((r) => r.id),
      ["zh-1", "zh-2", "ar-1"],
    );
  } finally {
    await cleanup();
  }
});

test("a truncated last line is dropped and regenerated; a damaged middle line is an error", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const out = join(dir, "predictions.jsonl");
    const good = JSON.stringify({ id: "zh-1", prompt: "p", reference: "你好", prediction: "你好", lang: "zh" });
    await writeFile(out, `${good}\n{"id": "zh-2", "pro`);
    const model = fakeModel();
    const r = await runGeneration({ examples: examples.slice(0, 2), generate: model.generate, template: "Translate: {input}", out });
    assert.equal(r.generated, 1);
    assert.equal((await readPredictions(out)).length, 2);

    await writeFile(out, `${good}\nnot json\n${good}\n`);
    await assert.rejects(
      readPredictions(out),
      (e: unknown) => e instanceof DataError && e.line === 2 && e.code === "XA_EVAL_PREDICTIONS_LINE",
    );
  } finally {
    await cleanup();
  }
});

test("runGeneration rejects duplicate ids, bad batch sizes and a model returning the wrong count", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const out = join(dir, "p.jsonl");
    const gen = async (p: string[]) => p.map(() => "x");
    const code = (c: string) => (e: unknown) => e instanceof AnalysisError && e.code === c;
    await assert.rejects(
      runGeneration({ examples: [examples[0]!, examples[0]!], generate: gen, template: "{input}", out }),
      code("XA_EVAL_DUPLICATE_ID"),
    );
    await assert.rejects(runGeneration({ examples, generate: gen, template: "{input}", out, batchSize: 0 }), code("XA_EVAL_BATCH_SIZE"));
    await assert.rejects(
      runGeneration({ examples, generate: async () => ["one"], template: "{input}", out, batchSize: 2 }),
      code("XA_EVAL_GENERATE_COUNT"),
    );
  } finally {
    await cleanup();
  }
});

test("scores by language and metric: plain table with an avg row, and a danfojs DataFrame", async () => {
  const records = [
    { id: "1", prompt: "", reference: "the cat sat on the mat", prediction: "the cat sat on the mat", lang: "vi" },
    { id: "2", prompt: "", reference: "the cat sat on the mat", prediction: "the cat sat on a mat", lang: "tr" },
    { id: "3", prompt: "", reference: ["Paris"], prediction: "It is Paris", lang: "tr" },
  ];
  const t = scoreByLanguage(records, { metrics: ["bleu", "contains"] });
  assert.deepEqual(t.languages, ["tr", "vi", "avg"]);
  assert.ok(Math.abs(t.table.vi!.bleu! - 100) < 1e-9);
  assert.equal(t.table.tr!.contains, 50);
  assert.equal(t.table.avg!.contains, (50 + 100) / 2);
  assert.equal(t.rows.length, 6);
  assert.throws(
    () => scoreByLanguage(records, { metrics: ["meteor" as never] }),
    (e: unknown) => e instanceof AnalysisError && e.code === "XA_EVAL_METRIC",
  );
  const df = await scoreTable(records, { metrics: ["contains"], average: false });
  assert.deepEqual(df.columns, ["lang", "contains"]);
  assert.deepEqual(df.values, [
    ["tr", 50],
    ["vi", 100],
  ]);
});
