// Published runs (notebooks/results/<notebook>.json): written from a finished run folder, read back with
// clear errors for a damaged file, shown in a notebook, and compared metric by metric.
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { compareMetrics, publishedPath, publishedView, publishRun, readPublished } from "../../src/study/published.js";
import { RunRecord } from "../../src/study/record.js";
import { DataError } from "../../src/util/errors.js";
import { tempDir } from "../helpers.js";

let dirs: { dir: string; cleanup: () => Promise<void> };

before(async () => {
  dirs = await tempDir("xalign-published-");
});

after(async () => {
  await dirs.cleanup();
});

async function finishedRun(gain: number): Promise<string> {
  const record = await RunRecord.start(
    "02-x-llama",
    { mode: "quick", seeds: [0, 1, 2], languages: ["vi", "zh"] },
    undefined,
    join(dirs.dir, "runs"),
  );
  await record.table("gains", [{ lang: "vi", x_llama_gain_pct: gain }]);
  record.metric("x_llama.avg_gain_pct", gain);
  record.metric("qa.en", Number.NaN);
  record.finding(`x-LLaMA vs English-only: ${gain}%`, { avg_gain_pct: gain }, { claim: "+42.5% average gain" });
  return record.finish();
}

describe("published runs", () => {
  it("publishes a finished run with its provenance, metrics, findings and tables, and names what moved", async () => {
    const home = join(dirs.dir, "home");
    const first = await publishRun(await finishedRun(12.5), home);
    assert.equal(first.file, publishedPath("02-x-llama", home));
    assert.deepEqual(first.moved, []);
    const p = await readPublished("02-x-llama", home);
    assert.ok(p);
    assert.deepEqual(p.parameters.seeds, [0, 1, 2]);
    assert.deepEqual(p.tables.gains, [{ lang: "vi", x_llama_gain_pct: 12.5 }]);
    assert.equal(p.findings[0]?.claim, "+42.5% average gain");
    assert.match(p.commit, /^([0-9a-f]{40}|unknown)$/);
    assert.equal(typeof p.dirty, "boolean");
    // qa.en is NaN in both runs (null in the JSON files): not a moved metric.
    const second = await publishRun(await finishedRun(20), home);
    assert.deepEqual(
      second.moved.map((m) => m.metric),
      ["x_llama.avg_gain_pct"],
    );
    assert.equal(second.moved[0]?.recorded, 12.5);
    assert.equal(second.moved[0]?.rerun, 20);
  });

  it("shows the published findings and chosen tables, and says how to publish when there is none", async () => {
    const home = join(dirs.dir, "home-view");
    const none = await publishedView("02-x-llama", ["gains"], home);
    assert.equal(none.published, undefined);
    assert.match(none.toString(), /No published run of 02-x-llama yet: .*xalign publish notebooks\/02-x-llama\.ipynb/);
    await publishRun(await finishedRun(7.25), home);
    const view = await publishedView("02-x-llama", ["gains", "absent"], home);
    const text = view.toString();
    assert.match(text, /quick mode · vi, zh · seeds 0, 1, 2/);
    assert.match(text, /x-LLaMA vs English-only: 7\.25%/);
    assert.match(text, /study: \+42\.5% average gain/);
    assert.match(text, /gains/);
    const html = view.toHtml();
    assert.match(html, /<table/);
    assert.doesNotMatch(html, /absent/);
    assert.doesNotMatch(html, /NaN/);
  });

  it("refuses a damaged file with its path and what to do", async () => {
    const home = join(dirs.dir, "home-bad");
    const file = publishedPath("03-target-vs-source", home);
    await mkdir(join(home, "notebooks", "results"), { recursive: true });
    await writeFile(file, "{ not json");
    await assert.rejects(readPublished("03-target-vs-source", home), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.equal(e.code, "XA_PUBLISHED_JSON");
      assert.match(e.message, /03-target-vs-source\.json is not valid JSON/);
      return true;
    });
    await writeFile(file, JSON.stringify({ format: "xalign-published-run/1", notebook: "03", parameters: {}, metrics: {}, findings: [] }));
    await assert.rejects(
      readPublished("03-target-vs-source", home),
      (e: unknown) => e instanceof DataError && e.code === "XA_PUBLISHED_FIELD" && /"tables"/.test(e.message),
    );
    await writeFile(file, JSON.stringify({ format: "other/9", notebook: "03", parameters: {}, metrics: {}, findings: [], tables: {} }));
    await assert.rejects(
      readPublished("03-target-vs-source", home),
      (e: unknown) => e instanceof DataError && e.code === "XA_PUBLISHED_FORMAT",
    );
    await assert.rejects(
      publishRun(join(dirs.dir, "no-such-run"), home),
      (e: unknown) => e instanceof DataError && e.code === "XA_PUBLISHED_RUN",
    );
  });

  it("compares metrics exactly or within a tolerance, NaN equal to NaN, a missing metric always moved", () => {
    assert.deepEqual(compareMetrics({ a: 1, b: Number.NaN }, { a: 1, b: Number.NaN }, 0), []);
    assert.deepEqual(
      compareMetrics({ a: 1, b: 2 }, { a: 1.0005, c: 3 }, 1e-3).map((m) => m.metric),
      ["b", "c"],
    );
    assert.deepEqual(
      compareMetrics({ a: 1 }, { a: 1.0005 }, 0).map((m) => m.metric),
      ["a"],
    );
  });
});
