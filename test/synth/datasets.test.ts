import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  buildSynthWorld,
  orderBySimilarity,
  parseSizes,
  presetBpeSharing,
  presetSimilarity,
  type SynthManifest,
  similarityTable,
} from "../../src/synth/index.js";
import { repoRoot, tempDir } from "../helpers.js";

const SAMPLE = join(repoRoot(), "datasets", "synth-paper");
const SIZES = "parallel=2000,dev=300,devtest=300,instructions=500,qa=120,pretrain=5000";
const COMMAND = `xalign synth build --preset paper --seed 1 --sizes ${SIZES} --out datasets/synth-paper`;

/** A README table without its last (BPE) column, which depends on the tokenizer trainer and is not pinned. */
function section(readme: string, name: string): string {
  const m = new RegExp(`<!-- synth-table:${name} -->\\n([\\s\\S]*?)\\n<!-- /synth-table:${name} -->`).exec(readme);
  assert.ok(m, `datasets/README.md has no ${name} table`);
  const lines = (m[1] as string).split("\n");
  for (const line of lines.slice(2)) {
    const bpe = Number(/\| ([0-9.]+) \|$/.exec(line)?.[1]);
    assert.ok(bpe >= 0 && bpe <= 1, `no BPE rate in "${line}"`);
  }
  return lines.map((l) => l.replace(/[^|]*\|$/, "")).join("\n");
}

describe("datasets/synth-paper", () => {
  it("regenerates byte for byte from the command in datasets/README.md", async () => {
    const readme = await readFile(join(repoRoot(), "datasets", "README.md"), "utf8");
    assert.ok(readme.includes(COMMAND), "README does not give the regeneration command");
    const committed = JSON.parse(await readFile(join(SAMPLE, "manifest.json"), "utf8")) as SynthManifest;
    const { dir, cleanup } = await tempDir();
    try {
      const fresh = await buildSynthWorld(dir, { preset: "paper", seed: 1, sizes: parseSizes(SIZES) });
      assert.deepEqual(fresh.files, committed.files);
      for (const f of [...fresh.files.map((x) => x.path), "manifest.json"]) {
        const [a, b] = await Promise.all([readFile(join(dir, f)), readFile(join(SAMPLE, f))]);
        assert.ok(a.equals(b), `${f} differs from the committed sample`);
      }
      const bytes = fresh.files.reduce((s, f) => s + f.bytes, 0);
      assert.ok(bytes < 5e6, `sample is ${bytes} bytes`);
    } finally {
      await cleanup();
    }
  });

  it("README tables are the measured similarity, ordered as documented", async () => {
    const readme = await readFile(join(repoRoot(), "datasets", "README.md"), "utf8");
    const committed = JSON.parse(await readFile(join(SAMPLE, "manifest.json"), "utf8")) as SynthManifest;
    assert.equal(section(readme, "paper"), similarityTable(committed));
    assert.equal(section(readme, "ladder"), similarityTable(presetSimilarity("ladder", 1)));
    const ordered = orderBySimilarity(committed.similarity);
    for (let i = 1; i < ordered.length; i++) {
      assert.ok((ordered[i - 1]?.sharedTokenRate ?? 0) >= (ordered[i]?.sharedTokenRate ?? 0));
    }
    assert.equal(ordered[0]?.code, "xx", "the near-English control is the most English-like");
    const ladder = presetSimilarity("ladder", 1).similarity;
    const rate = (c: string) => ladder.find((s) => s.code === c) as { sharedTokenRate: number; crossingRate: number };
    assert.ok(rate("v30").sharedTokenRate > rate("v60").sharedTokenRate && rate("v60").sharedTokenRate > rate("v100").sharedTokenRate);
    assert.equal(rate("v100").crossingRate, 0);
    assert.equal(rate("o100").sharedTokenRate, rate("v100").sharedTokenRate, "reordering alone keeps the vocabulary");
    assert.ok(rate("o100").crossingRate > 0.2);
  });

  it("the BPE shared-token rate is measured under a trained tokenizer", async () => {
    const world = { people: 200, heldOutPeople: 40, places: 20 };
    const rates = await presetBpeSharing("zh,xx", 1, 800, world, 300);
    assert.deepEqual(Object.keys(rates), ["zh", "xx"]);
    assert.ok((rates.xx as number) > (rates.zh as number) && (rates.xx as number) <= 1 && (rates.zh as number) >= 0, JSON.stringify(rates));
  });
});
