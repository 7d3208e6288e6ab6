import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { floresFile, readAlpacaJson, readFlores, readMosesPairs, readSquad } from "../../src/data/index.js";
import {
  buildSynthWorld,
  floresName,
  generateWorld,
  parseMix,
  parseSizes,
  resolveMix,
  type SynthManifest,
  SynthWorld,
} from "../../src/synth/index.js";
import { freshNamePool } from "../../src/synth/world.js";
import { ConfigError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { tempDir } from "../helpers.js";

const SIZES = {
  people: 240,
  heldOutPeople: 60,
  places: 30,
  parallel: 400,
  dev: 100,
  devtest: 100,
  instructions: 60,
  qa: 30,
  pretrain: 300,
};

interface Squad {
  language: string;
  chance: number;
  data: { paragraphs: { context: string; qas: { id: string; question: string; answers: { text: string; answer_start: number }[] }[] }[] }[];
}

describe("xalign synth build", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let manifest: SynthManifest;
  const read = (p: string) => readFile(join(dir, "a", p), "utf8");

  before(async () => {
    ({ dir, cleanup } = await tempDir());
    manifest = await buildSynthWorld(join(dir, "a"), { preset: "paper", seed: 5, sizes: SIZES });
  });
  after(() => cleanup());

  it("writes every data set for the seven languages", async () => {
    const paths = manifest.files.map((f) => f.path);
    for (const l of ["ar", "el", "hi", "tr", "vi", "zh", "xx"]) {
      for (const p of [
        `parallel/en-${l}/train.en`,
        `parallel/en-${l}/train.${l}`,
        `flores/dev/${floresName(l)}.dev`,
        `flores/devtest/${floresName(l)}.devtest`,
        `instructions/alpaca.${l}.json`,
        `qa/xquad.${l}.json`,
      ]) {
        assert.ok(paths.includes(p), `missing ${p}`);
      }
      const en = (await read(`parallel/en-${l}/train.en`)).split("\n");
      const xx = (await read(`parallel/en-${l}/train.${l}`)).split("\n");
      assert.equal(en.length, SIZES.parallel + 1);
      assert.equal(xx.length, en.length, "Moses sides must have the same line count");
    }
    assert.ok(paths.includes("pretrain/corpus.txt"));
    assert.ok(existsSync(join(dir, "a", "manifest.json")));
  });

  it("is byte-identical for a seed and differs for another", async () => {
    const again = await buildSynthWorld(join(dir, "b"), { preset: "paper", seed: 5, sizes: SIZES });
    assert.deepEqual(again.files, manifest.files);
    for (const f of manifest.files.slice(0, 5)) assert.equal(await readFile(join(dir, "b", f.path), "utf8"), await read(f.path));
    const other = await buildSynthWorld(join(dir, "c"), { preset: "xx", seed: 6, sizes: SIZES });
    const en = (m: SynthManifest) => m.files.find((f) => f.path === "flores/dev/eng.dev")?.sha256;
    assert.notEqual(en(other), en(manifest));
  });

  it("held-out sets share no sentence and no person with training data", async () => {
    const world = generateWorld(new Rng(5).fork("world"), {
      people: SIZES.people,
      heldOutPeople: SIZES.heldOutPeople,
      places: SIZES.places,
    });
    const heldOutNames = new Set(world.heldOutPeople.map((p) => world.names[p] as string));
    const trainText = [
      await read("parallel/en-ar/train.en"),
      await read("pretrain/corpus.txt"),
      await read("instructions/alpaca.en.json"),
    ].join("\n");
    const trainWords = new Set(trainText.match(/[A-Za-z]+/g));
    for (const name of heldOutNames) assert.ok(!trainWords.has(name), `held-out person ${name} appears in training data`);
    for (const l of ["en", "zh", "tr"]) {
      const train = new Set((await read(`parallel/en-${l === "en" ? "ar" : l}/train.${l}`)).split("\n"));
      for (const split of ["dev", "devtest"]) {
        const held = (await read(`flores/${split}/${floresName(l)}.${split}`)).trim().split("\n");
        for (const s of held) assert.ok(!train.has(s), `${l} ${split} sentence in training: ${s}`);
      }
      const dev = new Set((await read(`flores/dev/${floresName(l)}.dev`)).trim().split("\n"));
      for (const s of (await read(`flores/devtest/${floresName(l)}.devtest`)).trim().split("\n")) assert.ok(!dev.has(s));
    }
    const trainNames = new Set(world.trainPeople.map((p) => world.names[p] as string));
    const qa = JSON.parse(await read("qa/xquad.en.json")) as Squad;
    for (const d of qa.data) {
      for (const word of d.paragraphs[0]?.context.match(/[A-Za-z]+/g) ?? [])
        assert.ok(!trainNames.has(word), `train person ${word} in held-out QA`);
    }
  });

  it("QA sets are SQuAD JSON with in-language answer spans and a chance level", async () => {
    for (const l of ["en", "ar", "hi", "tr", "zh", "xx"]) {
      const qa = JSON.parse(await read(`qa/xquad.${l}.json`)) as Squad;
      assert.equal(qa.language, l);
      assert.ok(qa.chance > 0 && qa.chance < 1, `chance ${qa.chance}`);
      assert.equal(qa.chance, manifest.qaChance[l]);
      let n = 0;
      for (const d of qa.data) {
        for (const p of d.paragraphs) {
          for (const q of p.qas) {
            const a = q.answers[0];
            assert.ok(a && a.text.length > 0);
            assert.equal(p.context.slice(a.answer_start, a.answer_start + a.text.length), a.text, `${l} ${q.id}`);
            n++;
          }
        }
      }
      assert.equal(n, manifest.qaQuestions);
    }
  });

  it("instructions are Alpaca JSON, parallel across languages, with answers in the input", async () => {
    const en = JSON.parse(await read("instructions/alpaca.en.json")) as { instruction: string; input: string; output: string }[];
    const zh = JSON.parse(await read("instructions/alpaca.zh.json")) as typeof en;
    assert.equal(en.length, SIZES.instructions);
    assert.equal(zh.length, en.length);
    for (const r of [...en, ...zh]) {
      assert.deepEqual(Object.keys(r), ["instruction", "input", "output"]);
      assert.ok(r.instruction.length > 0 && r.output.length > 0);
    }
    const qa = en.filter((r) => r.input.includes("\n") && !r.output.endsWith("."));
    const sentence = en.filter((r) => r.input.includes("\n") && r.output.endsWith("."));
    assert.ok(qa.length > 0 && sentence.length > 0);
    for (const r of qa) assert.ok(r.input.split("\n")[0]?.includes(r.output), `answer "${r.output}" not in the passage`);
  });

  it("the pretraining corpus follows the mix", async () => {
    const langs = (await read("pretrain/corpus.langs")).trim().split("\n");
    assert.equal(langs.length, SIZES.pretrain);
    const en = langs.filter((l) => l === "en").length / langs.length;
    assert.ok(Math.abs(en - (manifest.mix.en as number)) < 0.06, `en share ${en}`);
    assert.equal(
      Object.values(manifest.mix)
        .reduce((a, b) => a + b, 0)
        .toFixed(6),
      "1.000000",
    );
  });

  it("the data toolkit's readers read every file", async () => {
    const root = join(dir, "a");
    let pairs = 0;
    for await (const p of readMosesPairs(join(root, "parallel/en-zh/train.en"), join(root, "parallel/en-zh/train.zh")))
      pairs += p.src && p.tgt ? 1 : 0;
    assert.equal(pairs, SIZES.parallel);
    let rows = 0;
    const files = Object.fromEntries(["en", "ar", "xx"].map((l) => [l, floresFile(join(root, "flores"), l, "devtest")]));
    for await (const row of readFlores(files)) rows += row.texts.xx ? 1 : 0;
    assert.equal(rows, SIZES.devtest);
    let alpaca = 0;
    for await (const r of readAlpacaJson(join(root, "instructions/alpaca.hi.json"))) alpaca += r.output ? 1 : 0;
    assert.equal(alpaca, SIZES.instructions);
    let qa = 0;
    for await (const r of readSquad(join(root, "qa/xquad.tr.json"), { lang: "tr" }))
      qa += r.context.includes(r.answers[0] as string) ? 1 : 0;
    assert.equal(qa, manifest.qaQuestions);
  });

  it("SynthWorld draws the build's data in memory; a smaller draw is a prefix", async () => {
    const sw = new SynthWorld("paper", 5, { people: SIZES.people, heldOutPeople: SIZES.heldOutPeople, places: SIZES.places });
    const { en, text } = sw.parallel("zh", 50);
    assert.deepEqual(en, (await read("parallel/en-zh/train.en")).split("\n").slice(0, 50));
    assert.deepEqual(text, (await read("parallel/en-zh/train.zh")).split("\n").slice(0, 50));
    assert.throws(
      () => sw.realizer("fr"),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_PRESET",
    );
  });

  it("writes a fresh instruction sample per epoch when asked", async () => {
    const m = await buildSynthWorld(join(dir, "e"), {
      preset: "xx",
      seed: 5,
      sizes: { ...SIZES, parallel: 0, pretrain: 0 },
      instructionEpochs: 2,
    });
    const e0 = m.files.find((f) => f.path === "instructions/alpaca.xx.json");
    const e1 = m.files.find((f) => f.path === "instructions/epoch-1/alpaca.xx.json");
    assert.ok(e0 && e1 && e0.sha256 !== e1.sha256 && e1.count === SIZES.instructions);
    assert.equal(
      e0.sha256,
      manifest.files.find((f) => f.path === "instructions/alpaca.xx.json")?.sha256,
      "epoch 0 does not depend on the epoch count",
    );
  });

  it("fresh-fact QA documents keep the QA share; counterfactual sets carry the world's (memorised) answer", async () => {
    const m = await buildSynthWorld(join(dir, "f"), {
      preset: "paper",
      seed: 5,
      sizes: SIZES,
      pretrainQaShare: 0.5,
      pretrainFreshShare: 0.5,
      counterfactual: 40,
    });
    assert.equal(m.pretrainFreshShare, 0.5);
    const docs = (await readFile(join(dir, "f", "pretrain/corpus.txt"), "utf8")).trim().split("\n");
    const langs = (await readFile(join(dir, "f", "pretrain/corpus.langs"), "utf8")).trim().split("\n");
    const en = docs.filter((_, i) => langs[i] === "en");
    const withQuestions = en.filter((d) => d.includes("?")).length / en.length;
    assert.ok(withQuestions > 0.35 && withQuestions < 0.65, `QA share ${withQuestions}`);
    for (const lang of ["en", "zh", "vi"]) {
      const cf = JSON.parse(await readFile(join(dir, "f", `qa/counterfactual.${lang}.json`), "utf8")) as Squad & {
        data: { paragraphs: { qas: { memorised: string }[] }[] }[];
      };
      let differs = 0;
      let total = 0;
      for (const d of cf.data) {
        for (const p of d.paragraphs) {
          for (const q of p.qas as unknown as { answers: { text: string; answer_start: number }[]; memorised: string }[]) {
            const a = q.answers[0] as { text: string; answer_start: number };
            assert.equal(p.context.slice(a.answer_start, a.answer_start + a.text.length), a.text);
            assert.equal(typeof q.memorised, "string");
            total++;
            if (q.memorised !== a.text) differs++;
          }
        }
      }
      assert.ok(total >= 40 && differs / total > 0.6, `${lang}: ${differs}/${total} counterfactual answers differ from the world's`);
    }
    const plain = await buildSynthWorld(join(dir, "g"), { preset: "paper", seed: 5, sizes: SIZES, pretrainFreshShare: 0 });
    const sha = (mf: SynthManifest, path: string) => mf.files.find((f) => f.path === path)?.sha256;
    assert.equal(sha(plain, "pretrain/corpus.txt"), sha(manifest, "pretrain/corpus.txt"), "fresh share 0 is the original corpus");
    assert.equal(plain.files.length, manifest.files.length, "no counterfactual files unless asked");
  });

  it("pretrainQuestionOrder random asks the passage's facts out of order; passage keeps the stated order", async () => {
    // Share of English QA documents whose answers appear in the passage in the order the questions ask them.
    const inOrder = async (order: "passage" | "random", name: string) => {
      const mf = await buildSynthWorld(join(dir, name), {
        preset: "paper",
        seed: 5,
        sizes: { ...SIZES, pretrain: 400 },
        mix: { en: 1 },
        pretrainQaShare: 1,
        pretrainQuestions: 4,
        pretrainQuestionOrder: order,
      });
      assert.equal(mf.pretrainQuestionOrder, order === "random" ? "random" : undefined);
      const docs = (await readFile(join(dir, name, "pretrain", "corpus.txt"), "utf8")).split("\n").filter((l) => l.includes("?"));
      let ordered = 0;
      let counted = 0;
      for (const doc of docs) {
        const parts = doc.match(/[^.?]+[.?]/g) ?? [];
        const first = parts.findIndex((p) => p.endsWith("?"));
        const passage = parts.slice(0, first).join("");
        const answers = parts
          .slice(first)
          .filter((_, i) => i % 2 === 1)
          .map((a) => a.trim().slice(0, -1));
        if (answers.length < 3) continue;
        const at = answers.map((a) => passage.indexOf(` ${a}`));
        if (at.some((i) => i < 0)) continue;
        counted++;
        if (at.every((i, k) => k === 0 || i >= (at[k - 1] as number))) ordered++;
      }
      assert.ok(counted >= 50, `${name}: only ${counted} documents with three or more located answers`);
      return ordered / counted;
    };
    const passage = await inOrder("passage", "order-passage");
    const random = await inOrder("random", "order-random");
    // Measured: 0.79 vs 0.07 (an answer value can also occur earlier in the passage, so "passage" is not 1).
    assert.ok(passage > 0.6, `passage order: ${passage} of documents in stated order`);
    assert.ok(random < 0.25, `random order: ${random} of documents in stated order`);
  });

  it("pretrainFreshNames: fresh-fact QA documents are about invented people, named like the world's but never by it", async () => {
    const { world } = new SynthWorld("paper", 5, { people: SIZES.people, heldOutPeople: SIZES.heldOutPeople, places: SIZES.places });
    const worldPeople = new Set(world.names.slice(0, SIZES.people));
    const block = freshNamePool(world, new Rng(1));
    assert.deepEqual(block.names.slice(0, block.first), world.names, "the world's names keep their indices");
    const pool = new Set(block.names.slice(block.first));
    assert.ok(pool.size > 4000 && [...worldPeople].every((n) => !pool.has(n)));
    const names = async (freshNames: boolean, name: string) => {
      const mf = await buildSynthWorld(join(dir, name), {
        preset: "paper",
        seed: 5,
        sizes: SIZES,
        mix: { en: 1 },
        pretrainQaShare: 1,
        pretrainFreshShare: 1,
        pretrainFreshNames: freshNames,
      });
      assert.equal(mf.pretrainFreshNames, freshNames ? true : undefined);
      const docs = (await readFile(join(dir, name, "pretrain", "corpus.txt"), "utf8")).trim().split("\n");
      let world = 0;
      let invented = 0;
      for (const doc of docs)
        for (const w of doc.match(/\b[A-Z][a-z]{3}\b/g) ?? []) {
          if (worldPeople.has(w)) world++;
          else if (pool.has(w)) invented++;
        }
      return { world, invented };
    };
    const kept = await names(false, "names-world");
    const fresh = await names(true, "names-fresh");
    // Every other file (instructions, QA sets, parallel text) is the same bytes: only pretraining changes.
    const others = async (name: string) =>
      (JSON.parse(await readFile(join(dir, name, "manifest.json"), "utf8")) as { files: { path: string; sha256: string }[] }).files
        .filter((f) => !f.path.startsWith("pretrain/"))
        .map((f) => `${f.path} ${f.sha256}`);
    assert.deepEqual(await others("names-fresh"), await others("names-world"));
    assert.ok(kept.world > 500 && kept.invented === 0, `world names kept: ${JSON.stringify(kept)}`);
    assert.ok(fresh.world === 0 && fresh.invented > 500, `invented names: ${JSON.stringify(fresh)}`);
    await assert.rejects(
      buildSynthWorld(join(dir, "names-bad"), { preset: "paper", seed: 5, sizes: SIZES, pretrainFreshNames: true }),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_NAMES" && /pretrainFreshShare/.test(e.message),
    );
    await assert.rejects(
      buildSynthWorld(join(dir, "names-bad"), {
        preset: "paper",
        seed: 5,
        sizes: SIZES,
        pretrainFreshShare: 1,
        pretrainFreshNames: "yes" as unknown as boolean,
      }),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_NAMES" && e.field === "pretrainFreshNames",
    );
    assert.ok(!existsSync(join(dir, "names-bad")), "a refused build writes nothing");
  });

  it("instructionFreshFacts: every instruction is about invented people, answerable from its passage; pretraining is untouched", async () => {
    const { world } = new SynthWorld("paper", 5, { people: SIZES.people, heldOutPeople: SIZES.heldOutPeople, places: SIZES.places });
    const worldPeople = new Set(world.names.slice(0, SIZES.people));
    const pool = new Set(freshNamePool(world, new Rng(1)).names.slice(world.names.length));
    const build = async (fresh: boolean, name: string) => {
      const mf = await buildSynthWorld(join(dir, name), {
        preset: "paper",
        seed: 5,
        sizes: { ...SIZES, instructions: 200 },
        instructionEpochs: 2,
        instructionFreshFacts: fresh,
      });
      assert.equal(mf.instructionFreshFacts, fresh ? true : undefined);
      const items = [];
      for (const file of ["instructions/alpaca.en.json", "instructions/epoch-1/alpaca.en.json"])
        items.push(
          ...(JSON.parse(await readFile(join(dir, name, file), "utf8")) as { instruction: string; input: string; output: string }[]),
        );
      let worldNames = 0;
      let invented = 0;
      for (const it of items)
        for (const w of `${it.instruction} ${it.input}`.match(/\b[A-Z][a-z]{3}\b/g) ?? []) {
          if (worldPeople.has(w)) worldNames++;
          else if (pool.has(w)) invented++;
        }
      const qa = items.filter((it) => it.instruction === "Answer the question.");
      const read = qa.filter((it) => it.input.includes(it.output)).length;
      const corpus = mf.files.find((f) => f.path === "pretrain/corpus.txt")?.sha256;
      return { worldNames, invented, qa: qa.length, read, corpus };
    };
    const plain = await build(false, "instr-world");
    const fresh = await build(true, "instr-fresh");
    assert.ok(plain.worldNames > 300 && plain.invented === 0, `world people: ${JSON.stringify(plain)}`);
    assert.ok(fresh.worldNames === 0 && fresh.invented > 300, `invented people: ${JSON.stringify(fresh)}`);
    assert.ok(fresh.qa > 20 && fresh.read === fresh.qa, `every QA answer is in its passage: ${JSON.stringify(fresh)}`);
    assert.equal(fresh.corpus, plain.corpus, "the pretraining corpus is the same bytes");
    await assert.rejects(
      buildSynthWorld(join(dir, "instr-bad"), { preset: "paper", seed: 5, sizes: SIZES, instructionFreshFacts: 1 as unknown as boolean }),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_NAMES" && e.field === "instructionFreshFacts",
    );
    assert.ok(!existsSync(join(dir, "instr-bad")), "a refused build writes nothing");
  });

  it("bad input is a ConfigError and writes nothing", async () => {
    const out = join(dir, "bad");
    const code = (c: string) => (e: unknown) => e instanceof ConfigError && e.code === c;
    await assert.rejects(
      buildSynthWorld(out, { preset: "paper", seed: 1, sizes: { ...SIZES, dev: 300, devtest: 200 } }),
      code("XA_SYNTH_SIZE"),
    );
    await assert.rejects(buildSynthWorld(out, { preset: "atlantis", seed: 1, sizes: SIZES }), code("XA_SYNTH_PRESET"));
    await assert.rejects(buildSynthWorld(out, { preset: "xx", seed: 1, sizes: { ...SIZES, heldOutPeople: 300 } }), code("XA_SYNTH_SIZE"));
    await assert.rejects(buildSynthWorld(out, { preset: "xx", seed: 1, sizes: SIZES, mix: { en: 1.2 } }), code("XA_SYNTH_MIX"));
    await assert.rejects(buildSynthWorld(out, { preset: "xx", seed: 1, sizes: SIZES, pretrainFreshShare: 1.5 }), code("XA_SYNTH_SHARE"));
    await assert.rejects(buildSynthWorld(out, { preset: "xx", seed: 1, sizes: SIZES, pretrainQuestions: 0 }), code("XA_SYNTH_SIZE"));
    await assert.rejects(
      buildSynthWorld(out, { preset: "xx", seed: 1, sizes: SIZES, pretrainQuestionOrder: "shuffled" as "random" }),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_ORDER" && /pretrainQuestionOrder/.test(e.message),
    );
    await assert.rejects(buildSynthWorld(out, { preset: "xx", seed: 1, sizes: SIZES, counterfactual: -3 }), code("XA_SYNTH_SIZE"));
    assert.ok(!existsSync(out) || (await readdir(out)).length === 0);
    assert.throws(() => parseSizes("parallel=abc"), code("XA_SYNTH_SIZE"));
    assert.throws(() => parseSizes("paralel=10"), code("XA_SYNTH_SIZE"));
    assert.throws(() => parseMix("en=2"), code("XA_SYNTH_MIX"));
    assert.throws(() => resolveMix(["zh"], { fr: 0.1 }), code("XA_SYNTH_MIX"));
    const mix = resolveMix(["zh", "ar"], { en: 0.9 });
    assert.equal(mix.en, 0.9);
    assert.ok(Math.abs((mix.zh as number) - 0.05) < 1e-12 && Math.abs((mix.ar as number) - 0.05) < 1e-12);
  });
});
