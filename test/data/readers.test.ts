import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parquetWriteFile } from "hyparquet-writer";
import {
  floresFile,
  ReadReport,
  readAlpacaJson,
  readFlores,
  readJsonArray,
  readJsonl,
  readLines,
  readMosesPairs,
  readParquet,
  readSquad,
  readTsvPairs,
  toAlpacaRecords,
  toSentencePairs,
} from "../../src/data/index.js";
import { DataError } from "../../src/util/errors.js";
import { tempDir } from "../helpers.js";

let dir = "";
let cleanup: () => Promise<void> = async () => {};
before(async () => ({ dir, cleanup } = await tempDir("xalign-data-readers-")));
after(() => cleanup());

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

async function write(name: string, content: string | Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

function dataError(code: string, file: string, line?: number) {
  return (err: unknown) => {
    assert.ok(err instanceof DataError, `expected a DataError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.file, file);
    if (line !== undefined) assert.equal(err.line, line);
    assert.ok(err.message.includes(file), "the message names the file");
    return true;
  };
}

describe("line reading", () => {
  it("strips CR and BOM, keeps empty lines, handles a missing final newline", async () => {
    const p = await write("lines.txt", "\uFEFFa\r\n\nc");
    assert.deepEqual(await collect(readLines(p)), [
      { line: 1, text: "a" },
      { line: 2, text: "" },
      { line: 3, text: "c" },
    ]);
  });

  it("reads lines that span several read chunks", async () => {
    const long = "x".repeat(700_000);
    const p = await write("long.txt", `${long}\n${long}\nend\n`);
    const lines = await collect(readLines(p));
    assert.deepEqual(
      lines.map((l) => l.text.length),
      [700_000, 700_000, 3],
    );
  });

  it("reports invalid UTF-8 with its line, or skips and counts it", async () => {
    const p = await write("bad.txt", Buffer.concat([Buffer.from("ok\nfine\nbad "), Buffer.from([0xff, 0xfe]), Buffer.from("\nlast\n")]));
    await assert.rejects(collect(readLines(p)), dataError("XA_DATA_UTF8", p, 3));
    const report = new ReadReport();
    const lines = await collect(readLines(p, { skipInvalid: true, report }));
    assert.deepEqual(
      lines.map((l) => l.line),
      [1, 2, 4],
    );
    assert.equal(report.skipped["invalid UTF-8"], 1);
  });

  it("rejects an empty file and a missing one", async () => {
    const p = await write("empty.txt", "");
    await assert.rejects(collect(readLines(p)), dataError("XA_DATA_EMPTY", p));
    const report = new ReadReport();
    assert.deepEqual(await collect(readLines(p, { skipInvalid: true, report })), []);
    assert.equal(report.skipped["empty file"], 1);
    const missing = join(dir, "nope.txt");
    await assert.rejects(collect(readLines(missing)), dataError("XA_DATA_NOT_FOUND", missing));
  });
});

describe("Moses pairs", () => {
  it("reads aligned lines", async () => {
    const en = await write("m.en", "Hello.\nHow are you?\n");
    const zh = await write("m.zh", "你好。\n你好吗？\n");
    assert.deepEqual(await collect(readMosesPairs(en, zh)), [
      { src: "Hello.", tgt: "你好。", line: 1 },
      { src: "How are you?", tgt: "你好吗？", line: 2 },
    ]);
  });

  it("rejects different line counts, naming the shorter file and the first missing line", async () => {
    const en = await write("c.en", "a\nb\nc\n");
    const zh = await write("c.zh", "A\nB\n");
    await assert.rejects(collect(readMosesPairs(en, zh)), (err: unknown) => {
      dataError("XA_DATA_LINE_COUNT", zh, 3)(err);
      assert.match((err as Error).message, /has 2 lines but .*c\.en has 3/);
      return true;
    });
    const report = new ReadReport();
    const pairs = await collect(readMosesPairs(en, zh, { skipInvalid: true, report }));
    assert.equal(pairs.length, 2);
    assert.equal(report.skipped["unpaired line"], 1);
  });

  it("skips a pair whose one side is invalid UTF-8", async () => {
    const en = await write("u.en", "a\nb\nc\n");
    const zh = await write("u.zh", Buffer.concat([Buffer.from("A\n"), Buffer.from([0xc3, 0x28]), Buffer.from("\nC\n")]));
    await assert.rejects(collect(readMosesPairs(en, zh)), dataError("XA_DATA_UTF8", zh, 2));
    const report = new ReadReport();
    const pairs = await collect(readMosesPairs(en, zh, { skipInvalid: true, report }));
    assert.deepEqual(
      pairs.map((p) => p.line),
      [1, 3],
    );
    assert.equal(report.records, 2);
  });
});

describe("TSV", () => {
  it("reads chosen columns and skips a header", async () => {
    const p = await write("p.tsv", "en\tzh\tscore\nHi\t嗨\t0.9\n");
    assert.deepEqual(await collect(readTsvPairs(p, { header: true })), [{ src: "Hi", tgt: "嗨", line: 2 }]);
    assert.deepEqual(await collect(readTsvPairs(p, { header: true, srcColumn: 1, tgtColumn: 0 })), [{ src: "嗨", tgt: "Hi", line: 2 }]);
  });

  it("rejects a line with a missing column", async () => {
    const p = await write("bad.tsv", "a\tb\nno tab here\nc\td\n");
    await assert.rejects(collect(readTsvPairs(p)), dataError("XA_DATA_FIELD", p, 2));
    const report = new ReadReport();
    assert.equal((await collect(readTsvPairs(p, { skipInvalid: true, report }))).length, 2);
    assert.equal(report.skipped["missing column"], 1);
  });
});

describe("JSONL", () => {
  it("reads objects and maps dotted fields to pairs", async () => {
    const p = await write("t.jsonl", '{"translation":{"en":"Hi","zh":"嗨"}}\n\n{"translation":{"en":"Bye","zh":"再见"}}\n');
    const pairs = await collect(toSentencePairs(readJsonl(p), { src: "translation.en", tgt: "translation.zh" }, { file: p }));
    assert.deepEqual(pairs, [
      { src: "Hi", tgt: "嗨", line: 1 },
      { src: "Bye", tgt: "再见", line: 3 },
    ]);
  });

  it("rejects malformed JSON at line N and a missing field", async () => {
    const p = await write("bad.jsonl", '{"instruction":"a","output":"b"}\n{"instruction": oops}\n[1]\n');
    await assert.rejects(collect(readJsonl(p)), dataError("XA_DATA_JSON", p, 2));
    const report = new ReadReport();
    assert.equal((await collect(readJsonl(p, { skipInvalid: true, report }))).length, 1);
    assert.equal(report.skipped["malformed JSON"], 2);
    const q = await write("missing.jsonl", '{"instruction":"a","output":"b"}\n{"instruction":"a"}\n');
    await assert.rejects(collect(toAlpacaRecords(readJsonl(q), { file: q })), (err: unknown) => {
      dataError("XA_DATA_FIELD", q, 2)(err);
      assert.equal((err as DataError).field, "output");
      return true;
    });
  });
});

describe("Alpaca JSON (streamed)", () => {
  it("reads an array of objects with their lines, input optional", async () => {
    const p = await write(
      "alpaca.json",
      '[\n  {"instruction": "Say {hi} \\"x\\"", "input": "", "output": "hi ]"},\n  {"instruction": "Add", "output": "2"}\n]\n',
    );
    const records = await collect(readAlpacaJson(p));
    assert.deepEqual(records, [
      { instruction: 'Say {hi} "x"', input: "", output: "hi ]", line: 2 },
      { instruction: "Add", input: "", output: "2", line: 3 },
    ]);
  });

  it("streams objects that cross chunk boundaries, with multi-byte text", async () => {
    const items = Array.from({ length: 3000 }, (_, i) => ({ instruction: `指令 ${i} ${"é".repeat(300)}`, input: "", output: `${i}` }));
    const p = await write("big.json", JSON.stringify(items, null, 1));
    const records = await collect(readAlpacaJson(p));
    assert.equal(records.length, 3000);
    assert.equal(records[2999]?.output, "2999");
    assert.equal(records[1234]?.instruction, items[1234]?.instruction);
  });

  it("rejects malformed JSON at the object's line, a missing field, truncation and an empty file", async () => {
    const p = await write(
      "bad.json",
      '[\n{"instruction":"a","output":"b"},\n{"instruction":"a" "output":"b"},\n{"instruction":"c","output":"d"}\n]',
    );
    await assert.rejects(collect(readAlpacaJson(p)), dataError("XA_DATA_JSON", p, 3));
    const report = new ReadReport();
    assert.equal((await collect(readAlpacaJson(p, { skipInvalid: true, report }))).length, 2);
    assert.equal(report.skipped["malformed JSON"], 1);

    const q = await write("missing.json", '[{"instruction":"a","output":"b"},\n{"input":"x","output":"y"}]');
    await assert.rejects(collect(readAlpacaJson(q)), dataError("XA_DATA_FIELD", q, 2));

    const t = await write("trunc.json", '[{"instruction":"a","output":"b"},\n{"instruction":"a"');
    await assert.rejects(collect(readJsonArray(t)), dataError("XA_DATA_JSON", t, 2));

    const notArray = await write("obj.json", '{"instruction":"a"}');
    await assert.rejects(collect(readJsonArray(notArray)), dataError("XA_DATA_JSON", notArray, 1));

    const e = await write("empty.json", "  \n");
    await assert.rejects(collect(readJsonArray(e)), dataError("XA_DATA_EMPTY", e));
  });

  it("rejects invalid UTF-8 with its line, or skips the object", async () => {
    const p = await write(
      "utf.json",
      Buffer.concat([
        Buffer.from('[{"instruction":"a","output":"b"},\n{"instruction":"'),
        Buffer.from([0xff]),
        Buffer.from('","output":"d"}]'),
      ]),
    );
    await assert.rejects(collect(readAlpacaJson(p)), dataError("XA_DATA_UTF8", p, 2));
    const tail = await write("tail.json", Buffer.concat([Buffer.from('[{"instruction":"a","output":"b"}]\n'), Buffer.from([0xe4, 0xb8])]));
    await assert.rejects(collect(readAlpacaJson(tail)), dataError("XA_DATA_UTF8", tail, 2));
    const report = new ReadReport();
    assert.equal((await collect(readAlpacaJson(p, { skipInvalid: true, report }))).length, 1);
    assert.equal(report.skipped["invalid UTF-8"], 1);
  });
});

describe("Parquet", () => {
  it("reads rows group by group and maps columns to pairs", async () => {
    const p = join(dir, "t.parquet");
    const n = 25;
    await parquetWriteFile({
      filename: p,
      columnData: [
        { name: "en", data: Array.from({ length: n }, (_, i) => `sentence ${i}`), type: "STRING" },
        { name: "zh", data: Array.from({ length: n }, (_, i) => `句子 ${i}`), type: "STRING" },
      ],
      rowGroupSize: 10,
    });
    const pairs = await collect(toSentencePairs(readParquet(p), { src: "en", tgt: "zh" }, { file: p, unit: "row" }));
    assert.equal(pairs.length, n);
    assert.deepEqual(pairs[24], { src: "sentence 24", tgt: "句子 24", line: 25 });
    await assert.rejects(collect(readParquet(p, { columns: ["de"] })), dataError("XA_DATA_FIELD", p));
  });

  it("rejects a file that is not Parquet", async () => {
    const p = await write("fake.parquet", "this is not parquet at all");
    await assert.rejects(collect(readParquet(p)), dataError("XA_DATA_PARQUET", p));
  });
});

describe("Flores", () => {
  it("finds per-language files and reads them aligned", async () => {
    const { mkdir } = await import("node:fs/promises");
    await mkdir(join(dir, "flores", "devtest"), { recursive: true });
    await write("flores/devtest/eng.devtest", "One.\nTwo.\n");
    await write("flores/devtest/zho_simpl.devtest", "一。\n二。\n");
    await write("flores/devtest/ara.devtest", "واحد.\n");
    const files = { en: floresFile(join(dir, "flores"), "en", "devtest"), zh: floresFile(join(dir, "flores"), "zh", "devtest") };
    const rows = await collect(readFlores(files));
    assert.deepEqual(rows[1], { line: 2, texts: { en: "Two.", zh: "二。" } });
    const ar = floresFile(join(dir, "flores"), "ar", "devtest");
    await assert.rejects(collect(readFlores({ en: files.en, ar })), dataError("XA_DATA_LINE_COUNT", ar, 2));
    assert.throws(
      () => floresFile(join(dir, "flores"), "el", "devtest"),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_NOT_FOUND",
    );
  });
});

describe("SQuAD / XQuAD / MLQA", () => {
  const doc = {
    data: [
      {
        title: "T",
        paragraphs: [
          {
            context: "北京是中国的首都。",
            qas: [{ id: "q1", question: "中国的首都是哪里？", answers: [{ text: "北京", answer_start: 0 }] }],
          },
        ],
      },
    ],
  };

  it("reads questions with context and answers", async () => {
    const p = await write("xquad.zh.json", JSON.stringify(doc));
    assert.deepEqual(await collect(readSquad(p, { lang: "zh" })), [
      {
        id: "q1",
        title: "T",
        context: "北京是中国的首都。",
        question: "中国的首都是哪里？",
        answers: ["北京"],
        lang: "zh",
        contextLang: "zh",
      },
    ]);
  });

  it("takes MLQA languages from the file name", async () => {
    const p = await write("test-context-en-question-zh.json", JSON.stringify(doc));
    const [qa] = await collect(readSquad(p));
    assert.equal(qa?.lang, "zh");
    assert.equal(qa?.contextLang, "en");
  });

  it("rejects malformed JSON with a line and a missing question with its path", async () => {
    const p = await write("bad-squad.json", '{"data": [\n{"title": "x",\n"paragraphs": [}\n]}');
    await assert.rejects(collect(readSquad(p, { lang: "zh" })), dataError("XA_DATA_JSON", p, 3));
    const broken = structuredClone(doc) as { data: { paragraphs: { qas: Record<string, unknown>[] }[] }[] };
    delete broken.data[0]?.paragraphs[0]?.qas[0]?.question;
    const q = await write("noq.json", JSON.stringify(broken, null, 1));
    await assert.rejects(collect(readSquad(q, { lang: "zh" })), (err: unknown) => {
      dataError("XA_DATA_FIELD", q)(err);
      assert.equal((err as DataError).field, "data[0].paragraphs[0].qas[0].question");
      return true;
    });
    const report = new ReadReport();
    assert.deepEqual(await collect(readSquad(q, { lang: "zh", skipInvalid: true, report })), []);
    assert.equal(report.skipped["missing field"], 1);
    const e = await write("empty-squad.json", "");
    await assert.rejects(collect(readSquad(e, { lang: "zh" })), dataError("XA_DATA_EMPTY", e));
  });
});
