import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  allocate,
  buildMixture,
  computeStats,
  loadMixtureSpec,
  type MixtureSpec,
  parseMixtureSpec,
  readExamples,
  seededOrder,
  temperatureWeights,
  writeMixture,
} from "../../src/data/index.js";
import { ConfigError, DataError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { tempDir } from "../helpers.js";

let dir = "";
let cleanup: () => Promise<void> = async () => {};

const N = 400;
before(async () => {
  ({ dir, cleanup } = await tempDir("xalign-data-mix-"));
  const en = Array.from({ length: N }, (_, i) => `English sentence number ${i}.`);
  const zh = Array.from({ length: N }, (_, i) => `中文句子第${i}号。`);
  const el = Array.from({ length: 100 }, (_, i) => `Ελληνική πρόταση αριθμός ${i}.`);
  await writeFile(join(dir, "news.en"), `${en.join("\n")}\n`);
  await writeFile(join(dir, "news.zh"), `${zh.join("\n")}\n`);
  await writeFile(join(dir, "el.en"), `${en.slice(0, 100).join("\n")}\n`);
  await writeFile(join(dir, "el.el"), `${el.join("\n")}\n`);
  const alpacaEn = Array.from({ length: 50 }, (_, i) => ({
    instruction: `Task ${i}`,
    input: i % 2 ? `input ${i}` : "",
    output: `Answer ${i}`,
  }));
  const alpacaZh = Array.from({ length: 50 }, (_, i) => ({ instruction: `任务${i}`, input: i % 2 ? `输入${i}` : "", output: `回答${i}` }));
  await writeFile(join(dir, "alpaca_en.json"), JSON.stringify(alpacaEn, null, 2));
  await writeFile(join(dir, "alpaca_zh.json"), JSON.stringify(alpacaZh, null, 2));
});
after(() => cleanup());

async function specFrom(name: string, yaml: string): Promise<MixtureSpec> {
  const path = join(dir, name);
  await writeFile(path, yaml);
  return loadMixtureSpec(path);
}

const BASE = `seed: 7
sources:
  - name: news-zh
    reader: moses
    files: [news.en, news.zh]
    build: translation
    src_lang: en
    tgt_lang: zh
    clean: { dedupe: exact, script: true }
  - name: alpaca-en
    reader: alpaca
    path: alpaca_en.json
    build: general
    lang: en
  - name: alpaca-en-zh
    reader: alpaca
    path: alpaca_en.json
    translated: alpaca_zh.json
    build: cross-lingual-general
    lang: zh
    count: 20
`;

describe("sampling arithmetic", () => {
  it("temperature weights follow n^(1/T)", () => {
    const w = temperatureWeights({ zh: 900, el: 100 }, 1);
    assert.ok(Math.abs((w.zh as number) - 0.9) < 1e-12);
    const flat = temperatureWeights({ zh: 900, el: 100 }, 5);
    const expected = 900 ** 0.2 / (900 ** 0.2 + 100 ** 0.2);
    assert.ok(Math.abs((flat.zh as number) - expected) < 1e-12);
  });

  it("allocates an exact total with caps and redistribution", () => {
    assert.deepEqual(allocate(10, { a: 0.5, b: 0.5 }, { a: 2, b: 100 }), { a: 2, b: 8 });
    assert.deepEqual(allocate(10, { a: 1, b: 1, c: 1 }), { a: 4, b: 3, c: 3 });
    assert.deepEqual(allocate(50, { a: 1, b: 1 }, { a: 5, b: 10 }), { a: 5, b: 10 });
  });

  it("seeded orders are permutations that repeat with the seed", () => {
    const a = seededOrder(50, new Rng(3));
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      Array.from({ length: 50 }, (_, i) => i),
    );
    assert.deepEqual(a, seededOrder(50, new Rng(3)));
    assert.notDeepEqual(a, seededOrder(50, new Rng(4)));
  });
});

describe("mixture spec", () => {
  it("names the line and field of a bad value and of an unknown key", () => {
    const bad =
      "sources:\n  - name: a\n    reader: moses\n    files: [a.en, a.zh]\n    build: translation\n    src_lang: en\n    tgt_lang: zz\n";
    assert.throws(
      () => parseMixtureSpec(bad, { file: "m.yaml", baseDir: dir }),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_DATA_SPEC" && e.line === 7 && e.field === "sources[0].tgt_lang",
    );
    const unknown =
      "seed: 1\nsources:\n  - name: a\n    reader: alpaca\n    path: a.json\n    build: general\n    lang: en\n    cuont: 5\n";
    assert.throws(
      () => parseMixtureSpec(unknown, { file: "m.yaml", baseDir: dir }),
      (e: unknown) => e instanceof ConfigError && e.line === 8 && /cuont/.test(e.message),
    );
    const crossField = "sources:\n  - {name: a, reader: alpaca, path: a.json, build: translation}\n";
    assert.throws(
      () => parseMixtureSpec(crossField, { file: "m.yaml", baseDir: dir }),
      (e: unknown) => e instanceof ConfigError && /sentence pairs/.test(e.message),
    );
  });

  /** Where and why parseMixtureSpec rejects `yaml` (code, line, field, message). */
  function rejection(yaml: string): { code: string; line: number | undefined; field: string | undefined; message: string } {
    try {
      parseMixtureSpec(yaml, { file: "m.yaml", baseDir: dir });
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      return { code: e.code, line: e.line, field: e.field, message: e.message };
    }
    assert.fail("the spec was accepted");
  }
  const READER_CHOICES = "one of moses, tsv, jsonl, alpaca, parquet, flores, squad";

  it("names the field and the choices of an unknown or missing reader", () => {
    const unknownReader = rejection("sources:\n  - name: a\n    reader: csv\n    path: a.csv\n    build: general\n    lang: en\n");
    assert.deepEqual([unknownReader.code, unknownReader.line, unknownReader.field], ["XA_DATA_SPEC", 3, "sources[0].reader"]);
    assert.ok(unknownReader.message.includes(`unknown reader "csv": use ${READER_CHOICES}`), unknownReader.message);
    const noReader = rejection("sources:\n  - {name: a, path: a.json, build: general, lang: en}\n");
    assert.deepEqual([noReader.line, noReader.field], [2, "sources[0].reader"]);
    assert.ok(noReader.message.includes(`a source needs reader: ${READER_CHOICES}`), noReader.message);
  });

  it("names the field a reader needs when it is missing, and what to write", () => {
    const noFiles = rejection("sources:\n  - name: a\n    reader: moses\n    build: translation\n    src_lang: en\n    tgt_lang: zh\n");
    assert.deepEqual([noFiles.code, noFiles.line, noFiles.field], ["XA_DATA_SPEC", 2, "sources[0].files"]);
    assert.match(noFiles.message, /a moses source needs files: \[source-side file, target-side file\]/);
    const noPath = rejection("sources:\n  - {name: a, reader: tsv, build: translation, src_lang: en, tgt_lang: zh}\n");
    assert.equal(noPath.field, "sources[0].path");
    assert.match(noPath.message, /a tsv source needs path:/);
    // a wrong value keeps zod's message for its type
    const badFiles = rejection("sources:\n  - {name: a, reader: moses, files: a.en, build: translation, src_lang: en, tgt_lang: zh}\n");
    assert.equal(badFiles.field, "sources[0].files");
    assert.doesNotMatch(badFiles.message, /needs files/);
  });

  it("gives each reader its own options with their defaults, and still accepts another reader's (ignored)", () => {
    const pair = "build: translation, src_lang: en, tgt_lang: zh";
    const spec = parseMixtureSpec(
      `sources:\n  - {name: t, reader: tsv, path: p.tsv, ${pair}}\n  - {name: m, reader: moses, files: [a.en, a.zh], header: true, ${pair}}\n`,
      { file: "m.yaml", baseDir: dir },
    );
    const [tsv, moses] = spec.sources;
    assert.ok(tsv?.reader === "tsv" && moses?.reader === "moses");
    assert.deepEqual([tsv.src_column, tsv.tgt_column, tsv.header], [0, 1, false]);
    assert.deepEqual(moses.files, ["a.en", "a.zh"]);
    assert.equal(rejection(`sources:\n  - {name: m, reader: moses, files: [a.en, a.zh], header: 1, ${pair}}\n`).field, "sources[0].header");
  });

  it("names the line and column of a YAML syntax error", () => {
    assert.throws(
      () => parseMixtureSpec("seed: 1\nsources:\n  - {name: a, reader: alpaca\n", { file: "m.yaml", baseDir: dir }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.line !== undefined &&
        e.column !== undefined &&
        /^m\.yaml, line \d+, column \d+: invalid YAML/.test(e.message),
    );
  });
});

describe("building mixtures", () => {
  it("builds translation and general sources with counts and a manifest, byte-identical across runs", async () => {
    const spec = await specFrom("base.yaml", `${BASE}validation: 30\n`);
    const outA = join(dir, "outA");
    const outB = join(dir, "outB");
    const a = await writeMixture(await buildMixture(spec), outA);
    await writeMixture(await buildMixture(await loadMixtureSpec(join(dir, "base.yaml"))), outB);
    for (const f of ["train.json", "train.jsonl", "validation.json", "validation.jsonl", "manifest.json"]) {
      assert.equal(await readFile(join(outA, f), "utf8"), await readFile(join(outB, f), "utf8"), `${f} is byte-identical`);
    }
    assert.equal(a.counts.train.total + a.counts.validation.total, N + 50 + 20);
    assert.equal(a.counts.validation.total, 30);
    assert.deepEqual(a.counts.train.bySource, {
      "alpaca-en": a.sources[1]?.train,
      "alpaca-en-zh": a.sources[2]?.train,
      "news-zh": a.sources[0]?.train,
    });
    const news = a.sources[0];
    assert.equal(news?.inputs[0]?.path, "news.en");
    assert.match(news?.inputs[0]?.sha256 ?? "", /^[0-9a-f]{64}$/);
    assert.equal(news?.clean?.kept, N);
    assert.equal(a.seed, 7);
    assert.equal(a.mixture, "base");
    assert.ok(a.outputs.every((o) => /^[0-9a-f]{64}$/.test(o.sha256)));

    const exported = JSON.parse(await readFile(join(outA, "train.json"), "utf8")) as Record<string, unknown>[];
    assert.equal(exported.length, a.counts.train.total);
    for (const rec of exported) assert.deepEqual(Object.keys(rec), ["instruction", "input", "output"]);

    const back = [];
    for await (const ex of readExamples(join(outA, "train.jsonl"))) back.push(ex);
    assert.equal(back.length, exported.length);
    const ids = new Set(back.map((e) => e.id));
    assert.equal(ids.size, back.length, "ids are unique");
    const valid = [];
    for await (const ex of readExamples(join(outA, "validation.jsonl"))) valid.push(ex);
    assert.ok(
      valid.every((e) => !ids.has(e.id)),
      "validation does not overlap train",
    );
    const cross = back.find((e) => e.source === "alpaca-en-zh");
    assert.match(cross?.instruction ?? "", /^Task \d+ Answer in Chinese\.$/);
    assert.match(cross?.output ?? "", /^回答\d+$/);
  });

  it("a different seed gives a different order", async () => {
    const a = await buildMixture(await specFrom("s1.yaml", BASE));
    const b = await buildMixture(await specFrom("s2.yaml", BASE.replace("seed: 7", "seed: 8")));
    assert.notDeepEqual(
      a.train.map((e) => e.id),
      b.train.map((e) => e.id),
    );
    const whole = (ids: string[]) => ids.filter((id) => !id.startsWith("alpaca-en-zh:")).sort();
    assert.deepEqual(whole(a.train.map((e) => e.id)), whole(b.train.map((e) => e.id)), "sources taken whole hold the same examples");
  });

  it("takes exact counts and ratios and rejects a count above the source", async () => {
    const spec = await specFrom(
      "counts.yaml",
      BASE.replace("    clean: { dedupe: exact, script: true }\n", "    clean: { dedupe: exact, script: true }\n    ratio: 0.25\n"),
    );
    const mix = await buildMixture(spec);
    assert.equal(mix.sources[0]?.selected, 100);
    assert.equal(mix.sources[2]?.selected, 20);
    const tooMany = await specFrom("toomany.yaml", BASE.replace("count: 20", "count: 51"));
    await assert.rejects(
      buildMixture(tooMany),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_COUNT" && /has 50 examples/.test(e.message),
    );
  });

  it("samples languages by temperature with an exact total", async () => {
    const spec = await specFrom(
      "temp.yaml",
      `seed: 1
sources:
  - { name: zh, reader: moses, files: [news.en, news.zh], build: translation, src_lang: en, tgt_lang: zh }
  - { name: el, reader: moses, files: [el.en, el.el], build: translation, src_lang: en, tgt_lang: el }
temperature: { t: 2, total: 200 }
`,
    );
    const mix = await buildMixture(spec);
    const w = 400 ** 0.5 / (400 ** 0.5 + 100 ** 0.5);
    assert.equal(mix.train.length, 200);
    assert.deepEqual(mix.temperature?.counts, { el: 200 - Math.round(200 * w), zh: Math.round(200 * w) });
    assert.equal(mix.train.filter((e) => e.lang === "zh").length, Math.round(200 * w));
  });

  it("cuts nested scale subsets of one source, keeping the others whole", async () => {
    const spec = await specFrom("scales.yaml", `${BASE}scales: [200, 50, 100]\nscale_source: news-zh\nvalidation: 0.1\n`);
    const mix = await buildMixture(spec);
    assert.deepEqual(
      mix.scales.map((s) => s.size),
      [50, 100, 200],
    );
    const newsIds = mix.scales.map((s) => new Set(s.train.filter((e) => e.source === "news-zh").map((e) => e.id)));
    assert.deepEqual(
      newsIds.map((s) => s.size),
      [50, 100, 200],
    );
    for (let i = 0; i + 1 < newsIds.length; i++)
      for (const id of newsIds[i] as Set<string>) assert.ok(newsIds[i + 1]?.has(id), `${id} of scale ${i} is in the next scale`);
    const validIds = new Set(mix.validation.map((e) => e.id));
    for (const s of mix.scales) {
      assert.equal(s.train.filter((e) => e.source === "alpaca-en").length, mix.sources[1]?.train);
      assert.ok(
        s.train.every((e) => !validIds.has(e.id)),
        "no scale holds a validation example",
      );
    }
    const again = await buildMixture(await loadMixtureSpec(join(dir, "scales.yaml")));
    assert.deepEqual(
      again.scales.map((s) => s.train.map((e) => e.id)),
      mix.scales.map((s) => s.train.map((e) => e.id)),
    );
    const tooBig = await specFrom("toobig.yaml", `${BASE}scales: [100000]\nscale_source: news-zh\n`);
    await assert.rejects(buildMixture(tooBig), (e: unknown) => e instanceof DataError && e.code === "XA_DATA_SCALE");
  });

  it("cuts nested subsets of the whole train split, unshuffled too", async () => {
    for (const shuffle of [true, false]) {
      const mix = await buildMixture(await specFrom(`whole-${shuffle}.yaml`, `${BASE}scales: [30, 90]\nshuffle: ${shuffle}\n`));
      const [small, large] = mix.scales.map((s) => new Set(s.train.map((e) => e.id)));
      assert.equal(small?.size, 30);
      assert.equal(large?.size, 90);
      for (const id of small as Set<string>) assert.ok(large?.has(id));
    }
    const unshuffled = await buildMixture(await specFrom("noshuffle.yaml", `${BASE}shuffle: false\n`));
    const news = unshuffled.train.filter((e) => e.source === "news-zh").map((e) => Number(e.id.split(":")[1]));
    assert.deepEqual(
      news,
      [...news].sort((a, b) => a - b),
      "file order kept",
    );
  });

  it("fails on bad input without writing, or skips and counts with skipInvalid", async () => {
    await writeFile(join(dir, "short.zh"), "只有一行。\n");
    const spec = await specFrom(
      "bad.yaml",
      "sources:\n  - { name: bad, reader: moses, files: [news.en, short.zh], build: translation, src_lang: en, tgt_lang: zh }\n",
    );
    const out = join(dir, "out-bad");
    await assert.rejects(
      buildMixture(spec).then((m) => writeMixture(m, out)),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_LINE_COUNT",
    );
    await assert.rejects(readFile(join(out, "train.json")), "nothing was written");
    const mix = await buildMixture(spec, { skipInvalid: true });
    assert.equal(mix.train.length, 1);
    assert.deepEqual(mix.sources[0]?.read, { records: 1, skipped: { "unpaired line": N - 1 } });
  });

  it("builds QA, interactive and hinted sources from one spec", async () => {
    const squad = {
      data: [
        {
          title: "t",
          paragraphs: [
            {
              context: "Ankara Türkiye'nin başkentidir.",
              qas: [{ id: "1", question: "Başkent neresi?", answers: [{ text: "Ankara", answer_start: 0 }] }],
            },
          ],
        },
      ],
    };
    await writeFile(join(dir, "xquad.tr.json"), JSON.stringify(squad));
    await writeFile(join(dir, "pairs.tsv"), "Good morning.\tGünaydın.\nThank you.\tTeşekkürler.\nSee you.\tGörüşürüz.\nYes.\tEvet.\n");
    const spec = await specFrom(
      "kinds.yaml",
      `sources:
  - { name: xquad-tr, reader: squad, path: xquad.tr.json, build: qa, lang: tr }
  - { name: bay-tr, reader: tsv, path: pairs.tsv, build: interactive, src_lang: en, tgt_lang: tr, turns: 2 }
  - { name: parrot-tr, reader: tsv, path: pairs.tsv, build: hinted, src_lang: en, tgt_lang: tr }
format: chat
`,
    );
    const mix = await buildMixture(spec);
    assert.equal(mix.sources.find((s) => s.name === "xquad-tr")?.available, 1);
    assert.equal(mix.sources.find((s) => s.name === "bay-tr")?.available, 2);
    assert.equal(mix.sources.find((s) => s.name === "parrot-tr")?.available, 4);
    assert.ok(mix.train.every((e) => e.lang === "tr"));
  });
});

describe("statistics", () => {
  it("counts examples and tokens per language and source, as rows and a DataFrame", async () => {
    const mix = await buildMixture(await specFrom("stats.yaml", BASE));
    const stats = computeStats(mix.train, { countTokens: (t) => t.length });
    const all = stats.rows.at(-1);
    assert.equal(all?.lang, "all");
    assert.equal(all?.examples, mix.train.length);
    const zhNews = stats.rows.find((r) => r.lang === "zh" && r.source === "news-zh");
    assert.equal(zhNews?.examples, N);
    assert.ok((zhNews?.p50 ?? 0) <= (zhNews?.p90 ?? 0) && (zhNews?.p90 ?? 0) <= (zhNews?.maxTokens ?? 0));
    assert.equal(
      stats.rows.slice(0, -1).reduce((a, r) => a + r.tokens, 0),
      all?.tokens,
    );
    const display = (stats as unknown as Record<symbol, () => Record<string, string>>)[Symbol.for("Jupyter.display")]?.();
    assert.match(display?.["text/html"] ?? "", /<table>.*news-zh/);
    assert.match(stats.toMarkdown(), /\| zh \| news-zh \| 400 \|/);
    const df = await stats.toDataFrame();
    assert.deepEqual(df.shape, [stats.rows.length, 9]);
    assert.ok((df as unknown as Record<symbol, unknown>)[Symbol.for("Jupyter.display")]);
  });
});

describe("mixture readers", () => {
  it("reads JSONL pairs by field paths, Parquet Alpaca records and Flores folders", async () => {
    const { parquetWriteFile } = await import("hyparquet-writer");
    const { mkdir } = await import("node:fs/promises");
    await writeFile(
      join(dir, "hf.jsonl"),
      '{"translation":{"en":"Good day.","hi":"शुभ दिन।"}}\n{"translation":{"en":"Water.","hi":"पानी।"}}\n',
    );
    await parquetWriteFile({
      filename: join(dir, "alpaca.parquet"),
      columnData: [
        { name: "q", data: ["Name a colour.", "Name a day."], type: "STRING" },
        { name: "a", data: ["Red.", "Monday."], type: "STRING" },
      ],
    });
    await mkdir(join(dir, "flores", "dev"), { recursive: true });
    await writeFile(join(dir, "flores", "dev", "eng_Latn.dev"), "One.\nTwo.\n");
    await writeFile(join(dir, "flores", "dev", "hin_Deva.dev"), "एक।\nदो।\n");
    const spec = await specFrom(
      "readers.yaml",
      `seed: 2
sources:
  - { name: hf-hi, reader: jsonl, path: hf.jsonl, fields: { src: translation.en, tgt: translation.hi }, build: translation, src_lang: en, tgt_lang: hi, clean: { script: true } }
  - { name: pq, reader: parquet, path: alpaca.parquet, fields: { instruction: q, output: a }, build: general, lang: en }
  - { name: fl, reader: flores, path: flores, split: dev, build: translation, src_lang: en, tgt_lang: hi, template: 0 }
`,
    );
    const mix = await buildMixture(spec);
    const by = (source: string) => mix.train.filter((e) => e.source === source);
    assert.equal(by("hf-hi").length, 2);
    assert.ok(by("hf-hi").some((e) => e.input === "Water." && e.output === "पानी।"));
    assert.deepEqual(
      by("pq")
        .map((e) => [e.instruction, e.input, e.output])
        .sort(),
      [
        ["Name a colour.", "", "Red."],
        ["Name a day.", "", "Monday."],
      ],
    );
    assert.equal(by("fl").length, 2);
    assert.ok(by("fl").every((e) => e.instruction === "Translate the following sentences from English to Hindi."));
  });
});
