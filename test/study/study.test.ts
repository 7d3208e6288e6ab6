import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { cached, cacheKey, clearCache, listCache } from "../../src/study/cache.js";
import { armMean, armTable, mean, relativeChange, sd } from "../../src/study/compare.js";
import { latestRun, RunRecord, toCsv } from "../../src/study/record.js";
import { studySettings } from "../../src/study/settings.js";
import type { ArmResult, QaEvaluation } from "../../src/study/study.js";
import { tempDir } from "../helpers.js";

describe("study cache", () => {
  it("builds an artifact once per configuration and version, lists and clears it", async () => {
    const { dir, cleanup } = await tempDir();
    const saved = process.env.XALIGN_CACHE;
    process.env.XALIGN_CACHE = dir;
    try {
      let builds = 0;
      const build = async (out: string) => {
        builds++;
        await import("node:fs/promises").then((fs) => fs.writeFile(join(out, "x.txt"), "x"));
      };
      const a = await cached("world", { seed: 1 }, build);
      const b = await cached("world", { seed: 1 }, build);
      const c = await cached("world", { seed: 2 }, build);
      assert.equal(a, b);
      assert.notEqual(a, c);
      assert.equal(builds, 2);
      assert.notEqual(cacheKey("world", { seed: 1 }), cacheKey("base", { seed: 1 }));
      const entries = await listCache();
      assert.deepEqual(
        entries.map((e) => e.config),
        [{ seed: 1 }, { seed: 2 }].sort((x, y) => (cacheKey("world", x) < cacheKey("world", y) ? -1 : 1)),
      );
      assert.equal(await clearCache("world"), 2);
      assert.deepEqual(await listCache(), []);
    } finally {
      if (saved === undefined) delete process.env.XALIGN_CACHE;
      else process.env.XALIGN_CACHE = saved;
      await cleanup();
    }
  });

  it("leaves nothing that looks complete when a build fails", async () => {
    const { dir, cleanup } = await tempDir();
    const saved = process.env.XALIGN_CACHE;
    process.env.XALIGN_CACHE = dir;
    try {
      await assert.rejects(
        cached("base", { n: 1 }, async () => {
          throw new Error("out of memory");
        }),
        /out of memory/,
      );
      assert.deepEqual(await listCache(), []);
    } finally {
      if (saved === undefined) delete process.env.XALIGN_CACHE;
      else process.env.XALIGN_CACHE = saved;
      await cleanup();
    }
  });

  it("lets several processes race on one key: all succeed and read the same bytes", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const child = fileURLToPath(new URL("./cache-race-child.js", import.meta.url));
      const runs = await Promise.all(Array.from({ length: 5 }, () => runNode(child, ["300"], { XALIGN_CACHE: dir })));
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      const digests = new Set(runs.map((r) => r.stdout.trim()));
      assert.equal(digests.size, 1, `the processes read different entries: ${[...digests].join(", ")}`);
      // One entry, no lock or temp folder left behind.
      assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith("race-")).length, 1);
    } finally {
      await cleanup();
    }
  });

  it("recovers a lock left by a dead process and waits for a live one", async () => {
    const { dir, cleanup } = await tempDir();
    const saved = process.env.XALIGN_CACHE;
    process.env.XALIGN_CACHE = dir;
    try {
      const dead = await runNode("-e", [""], {});
      const entry = join(dir, `race-${cacheKey("race", { key: 1 })}`);
      writeFileSync(`${entry}.lock`, JSON.stringify({ pid: dead.pid, host: hostname() }));
      let builds = 0;
      const got = await cached("race", { key: 1 }, async (out) => {
        builds++;
        writeFileSync(join(out, "a.txt"), "x");
      });
      assert.equal(got, entry);
      assert.equal(builds, 1);
      assert.equal(existsSync(`${entry}.lock`), false);
      // A lock held by a live process (this one): a second key waits until it goes.
      const other = join(dir, `race-${cacheKey("race", { key: 2 })}`);
      writeFileSync(`${other}.lock`, JSON.stringify({ pid: process.pid, host: hostname() }));
      const messages: string[] = [];
      const waiting = cached(
        "race",
        { key: 2 },
        async (out) => writeFileSync(join(out, "a.txt"), "y"),
        (m) => messages.push(m),
      );
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(existsSync(join(other, "a.txt")), false, "built while another process held the lock");
      rmSync(`${other}.lock`);
      assert.equal(await waiting, other);
      assert.ok(
        messages.some((m) => /waiting/.test(m)),
        messages.join("\n"),
      );
    } finally {
      if (saved === undefined) delete process.env.XALIGN_CACHE;
      else process.env.XALIGN_CACHE = saved;
      await cleanup();
    }
  });
});

function runNode(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (code) => resolve({ code, stdout, stderr, pid: p.pid ?? 0 }));
  });
}

const qa = (contains: number): QaEvaluation => ({
  lang: "vi",
  count: 10,
  contains,
  exactMatch: contains / 2,
  f1: contains,
  chance: 30,
  predictions: [],
});
const arm = (label: string, seed: number, contains: number, bleu: number): ArmResult => ({
  label,
  seed,
  examples: 10,
  steps: 1,
  finalLoss: 1,
  qa: { vi: qa(contains) },
  translation: {
    vi: { lang: "vi", count: 10, bleu, bleuHalfWidth: 0, chrf: 2 * bleu, chrfHalfWidth: 0, signature: "", hypotheses: [], references: [] },
  },
});

describe("comparison summaries", () => {
  it("computes mean and sample standard deviation over seeds per arm and language", () => {
    assert.equal(mean([1, 2, 3]), 2);
    assert.equal(sd([2, 4, 4, 4, 5, 5, 7, 9]), Math.sqrt(32 / 7));
    assert.equal(sd([5]), 0);
    const results = [arm("a", 0, 10, 1), arm("a", 1, 20, 3), arm("b", 0, 30, 5)];
    const rows = armTable(results);
    assert.deepEqual(
      rows.map((r) => [r.arm, r.lang, r.seeds, r.qa_contains, r.qa_contains_sd, r.bleu, r.chrf]),
      [
        ["a", "vi", 2, 15, 7.07, 2, 4],
        ["b", "vi", 1, 30, 0, 5, 10],
      ],
    );
    assert.equal(armMean(results, "a", "vi", "bleu"), 2);
    assert.equal(relativeChange(15, 10), 50);
    assert.ok(Number.isNaN(relativeChange(1, 0)));
  });
});

describe("run records", () => {
  it("writes tables, metrics, findings and a manifest under runs/<notebook>/<timestamp>", async () => {
    const { dir, cleanup } = await tempDir();
    const saved = process.env.XALIGN_RUNS;
    process.env.XALIGN_RUNS = dir;
    try {
      const record = await RunRecord.start("99-test", { mode: "smoke" });
      const table = await record.table("scores", [{ lang: "vi", bleu: 1.5, note: 'a "quoted", value' }], "caption");
      assert.match(String((table as unknown as { toHtml(): string }).toHtml()), /<table/);
      record.metric("bleu.vi", 1.5);
      record.finding("something", { bleu: 1.5 });
      const out = await record.finish();
      assert.equal(await latestRun("99-test"), out);
      assert.equal(readFileSync(join(out, "scores.csv"), "utf8"), 'lang,bleu,note\nvi,1.5,"a ""quoted"", value"\n');
      assert.deepEqual(JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")), { "bleu.vi": 1.5 });
      const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      assert.deepEqual(manifest.parameters, { mode: "smoke" });
      for (const k of ["versions", "durations_s", "backend"]) assert.ok(k in manifest, k);
      assert.ok(existsSync(join(out, "findings.json")));
      assert.equal(toCsv([]), "\n");
    } finally {
      if (saved === undefined) delete process.env.XALIGN_RUNS;
      else process.env.XALIGN_RUNS = saved;
      await cleanup();
    }
  });
});

describe("study settings", () => {
  it("applies overrides one level deep and keeps modes distinct", () => {
    const s = studySettings("quick", { pretrain: { steps: 7 }, backend: "cpu" });
    assert.equal(s.pretrain.steps, 7);
    assert.equal(s.pretrain.batchSize, studySettings("quick").pretrain.batchSize);
    assert.equal(s.backend, "cpu");
    assert.ok(studySettings("full").model.hidden_size > studySettings("quick").model.hidden_size);
    assert.equal(studySettings("smoke").mode, "smoke");
  });
});
