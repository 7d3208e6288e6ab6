import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { run } from "../../src/cli/data.js";
import { ConfigError, DataError } from "../../src/util/errors.js";
import { tempDir } from "../helpers.js";

let dir = "";
let cleanup: () => Promise<void> = async () => {};
before(async () => {
  ({ dir, cleanup } = await tempDir("xalign-data-cli-"));
  await writeFile(join(dir, "a.en"), "Hello.\nGood night.\nThank you.\n");
  await writeFile(join(dir, "a.vi"), "Xin chào.\nChúc ngủ ngon.\nCảm ơn.\n");
  await writeFile(join(dir, "b.vi"), "Xin chào.\n");
  await writeFile(
    join(dir, "mix.yaml"),
    "name: tiny-vi\nseed: 3\nsources:\n  - { name: a, reader: moses, files: [a.en, a.vi], build: translation, src_lang: en, tgt_lang: vi }\nvalidation: 1\n",
  );
  await writeFile(
    join(dir, "bad.yaml"),
    "sources:\n  - { name: b, reader: moses, files: [a.en, b.vi], build: translation, src_lang: en, tgt_lang: vi }\n",
  );
});
after(() => cleanup());

async function capture(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    return { code: await run(argv), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

describe("xalign data", () => {
  it("build writes the mixture and prints a summary", async () => {
    const out = join(dir, "out");
    const { code, out: text } = await capture(["build", join(dir, "mix.yaml"), "--out", out]);
    assert.equal(code, 0);
    assert.match(text, /mixture tiny-vi \(seed 3\)/);
    assert.match(text, /train 2, validation 1/);
    const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as { mixture: string };
    assert.equal(manifest.mixture, "tiny-vi");
    const train = JSON.parse(await readFile(join(out, "train.json"), "utf8")) as unknown[];
    assert.equal(train.length, 2);
  });

  it("build stops on bad input, or skips and reports counts with --skip-invalid", async () => {
    const out = join(dir, "out-bad");
    await assert.rejects(
      capture(["build", join(dir, "bad.yaml"), "--out", out]),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_LINE_COUNT",
    );
    await assert.rejects(readFile(join(out, "manifest.json")));
    // Two of b's three lines are unpaired: over the default --max-invalid 0.5 even with --skip-invalid.
    await assert.rejects(
      capture(["build", join(dir, "bad.yaml"), "--out", out, "--skip-invalid"]),
      (e: unknown) => e instanceof DataError && e.code === "XA_DATA_MOSTLY_INVALID" && /2 of 3 records/.test(e.message),
    );
    const { code, out: text } = await capture(["build", join(dir, "bad.yaml"), "--out", out, "--skip-invalid", "--max-invalid", "0.9"]);
    assert.equal(code, 0);
    assert.match(text, /b skipped: unpaired line 2/);
  });

  it("build records and prints the resolved path of every input, also outside the mixture's folder", async () => {
    const { dir: other, cleanup: cleanOther } = await tempDir("xalign-elsewhere-");
    try {
      await writeFile(join(other, "far.en"), "Hello.\nGood night.\n");
      await writeFile(join(other, "far.vi"), "Xin chào.\nChúc ngủ ngon.\n");
      await writeFile(
        join(dir, "far.yaml"),
        `name: far\nsources:\n  - { name: far, reader: moses, files: [${join(other, "far.en")}, ${relative(dir, join(other, "far.vi"))}], build: translation, src_lang: en, tgt_lang: vi }\n`,
      );
      const out = join(dir, "out-far");
      const { code, out: text } = await capture(["build", join(dir, "far.yaml"), "--out", out]);
      assert.equal(code, 0);
      assert.ok(text.includes(`far read ${join(other, "far.en")}, ${join(other, "far.vi")}`), text);
      const manifest = JSON.parse(await readFile(join(out, "manifest.json"), "utf8")) as {
        sources: { inputs: { path: string; resolved: string }[] }[];
      };
      assert.deepEqual(
        manifest.sources[0]?.inputs.map((i) => i.resolved),
        [join(other, "far.en"), join(other, "far.vi")],
      );
    } finally {
      await cleanOther();
    }
  });

  it("build fails when most of a source is invalid, even with --skip-invalid (a wrong file such as /etc/passwd)", async () => {
    await writeFile(join(dir, "notes.txt"), "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin\nbin:x:2:2::/bin\nsys:x:3:3::/dev\n");
    await writeFile(join(dir, "one.vi"), "Xin chào.\n");
    await writeFile(
      join(dir, "wrong.yaml"),
      "name: wrong\nsources:\n  - { name: w, reader: moses, files: [notes.txt, one.vi], build: translation, src_lang: en, tgt_lang: vi }\n",
    );
    await assert.rejects(
      capture(["build", join(dir, "wrong.yaml"), "--out", join(dir, "out-wrong"), "--skip-invalid"]),
      (e: unknown) =>
        e instanceof DataError && e.code === "XA_DATA_MOSTLY_INVALID" && /notes\.txt/.test(e.message) && /--max-invalid/.test(e.message),
    );
    await assert.rejects(capture(["build", join(dir, "wrong.yaml"), "--max-invalid", "2"]), (e: unknown) => e instanceof ConfigError);
  });

  it("build refuses a non-empty --out, and with --force replaces an earlier build whole", async () => {
    const out = join(dir, "out-twice");
    assert.equal((await capture(["build", join(dir, "mix.yaml"), "--out", out])).code, 0);
    // A file of an older build (say a scale the new spec no longer has).
    await mkdir(join(out, "scales", "50"), { recursive: true });
    await writeFile(join(out, "scales", "50", "train.json"), "[]\n");
    await assert.rejects(
      capture(["build", join(dir, "mix.yaml"), "--out", out]),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_DATA_OUT_NOT_EMPTY" && /--force/.test(e.message),
    );
    assert.equal((await capture(["build", join(dir, "mix.yaml"), "--out", out, "--force"])).code, 0);
    assert.equal(existsSync(join(out, "scales", "50")), false, "the old build's files are gone");
    assert.ok(existsSync(join(out, "manifest.json")));
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith("out-twice.")),
      [],
      "no temp or old folder left beside --out",
    );
    // --force never replaces a folder that is not a data build.
    const foreign = join(dir, "foreign");
    await mkdir(foreign);
    await writeFile(join(foreign, "notes.txt"), "mine");
    await assert.rejects(
      capture(["build", join(dir, "mix.yaml"), "--out", foreign, "--force"]),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_DATA_OUT_NOT_OURS",
    );
    assert.equal(await readFile(join(foreign, "notes.txt"), "utf8"), "mine");
  });

  it("stats prints a table per language and source", async () => {
    const { code, out } = await capture(["stats", join(dir, "out", "train.jsonl")]);
    assert.equal(code, 0);
    assert.match(out, /\| vi \| a \| 2 \|/);
    const json = await capture(["stats", join(dir, "out", "train.json"), "--json"]);
    const parsed = JSON.parse(json.out) as { rows: { lang: string; examples: number }[] };
    assert.equal(parsed.rows.at(-1)?.examples, 2);
  });

  it("rejects bad arguments", async () => {
    await assert.rejects(capture(["build"]), (e: unknown) => e instanceof ConfigError);
    await assert.rejects(capture(["build", "x.yaml", "--bogus"]), (e: unknown) => e instanceof ConfigError);
    const { code } = await capture(["--help"]);
    assert.equal(code, 0);
  });
});
