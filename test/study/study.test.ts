import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type DisplayMessage, setDisplayChannel } from "../../src/notebook/index.js";
import { Figure } from "../../src/plot/index.js";
import type { RunEvent } from "../../src/runner/index.js";
import { cached, cacheKey, cacheRoot, clearCache, listCache, scratchDir } from "../../src/study/cache.js";
import {
  armMean,
  armTable,
  compareOverSeeds,
  formatRelativeChange,
  mean,
  meanRelativeChange,
  relativeChange,
  sd,
  verdictText,
} from "../../src/study/compare.js";
import type { QaEvaluation } from "../../src/study/evaluate.js";
import {
  armCell,
  coitExamples,
  collect,
  competenceNote,
  findingsView,
  formatInterval,
  formatNumber,
  meanOverLanguages,
  relativeGains,
  runArms,
  runScaling,
  tuneSummary,
} from "../../src/study/present.js";
import { dataRoot, latestRun, RunRecord, runsRoot, toCsv } from "../../src/study/record.js";
import { studySettings } from "../../src/study/settings.js";
import type { ArmResult } from "../../src/study/study.js";
import type { TuneOptions } from "../../src/study/tune.js";
import { onEventLogger } from "../../src/study/verify.js";
import { installationRoot, xalignHome } from "../../src/util/fs.js";
import { repoRoot, tempDir } from "../helpers.js";

describe("study cache", () => {
  it("builds an artifact once per configuration and version, lists and clears it", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      let builds = 0;
      const build = async (out: string) => {
        builds++;
        await writeFile(join(out, "x.txt"), "x");
      };
      const a = await cached(dir, "world", { seed: 1 }, build);
      const b = await cached(dir, "world", { seed: 1 }, build);
      const c = await cached(dir, "world", { seed: 2 }, build);
      assert.equal(a, b);
      assert.notEqual(a, c);
      assert.equal(builds, 2);
      assert.notEqual(cacheKey("world", { seed: 1 }), cacheKey("base", { seed: 1 }));
      const entries = await listCache(dir);
      assert.deepEqual(
        entries.map((e) => e.config),
        [{ seed: 1 }, { seed: 2 }].sort((x, y) => (cacheKey("world", x) < cacheKey("world", y) ? -1 : 1)),
      );
      assert.equal(await clearCache(dir, "world"), 2);
      assert.deepEqual(await listCache(dir), []);
    } finally {
      await cleanup();
    }
  });

  it("leaves nothing that looks complete when a build fails", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await assert.rejects(
        cached(dir, "base", { n: 1 }, async () => {
          throw new Error("out of memory");
        }),
        /out of memory/,
      );
      assert.deepEqual(await listCache(dir), []);
    } finally {
      await cleanup();
    }
  });

  it("lets several processes race on one key: all succeed and read the same bytes", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const child = fileURLToPath(new URL("./cache-race-child.js", import.meta.url));
      const runs = await Promise.all(Array.from({ length: 5 }, () => runNode(child, ["300", dir], {})));
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
    try {
      const dead = await runNode("-e", [""], {});
      const entry = join(dir, `race-${cacheKey("race", { key: 1 })}`);
      writeFileSync(`${entry}.lock`, JSON.stringify({ pid: dead.pid, host: hostname() }));
      let builds = 0;
      const got = await cached(dir, "race", { key: 1 }, async (out) => {
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
        dir,
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
  tuneSeconds: 2,
  evalSeconds: 1,
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

  it("formats a relative change one way: signed percent, and n/a (never NaN%) when the baseline is 0", () => {
    assert.equal(formatRelativeChange(relativeChange(15, 10)), "+50.0%");
    assert.equal(formatRelativeChange(relativeChange(9, 10)), "-10.0%");
    assert.equal(formatRelativeChange(relativeChange(10, 10)), "0.0%");
    assert.equal(formatRelativeChange(-0.04), "0.0%", "no -0.0%");
    assert.equal(formatRelativeChange(42.456, 2), "+42.46%");
    assert.equal(formatRelativeChange(relativeChange(3, 0)), "n/a (baseline 0)");
    assert.equal(formatRelativeChange(meanRelativeChange([relativeChange(1, 0), relativeChange(0, 0)])), "n/a (baseline 0)");
    assert.equal(meanRelativeChange([Number.NaN, 10, 30]), 20);
    assert.doesNotMatch(formatRelativeChange(Number.NaN), /NaN/);
  });

  it("compareOverSeeds: a directional claim reproduces, is contradicted, or is inconclusive (floor, one seed, spread)", () => {
    const runs = (label: string, values: number[]) => values.map((v, seed) => arm(label, seed, v, v / 10));
    const opts = { a: (l: string) => `x-${l}`, b: "base", languages: ["vi"], metric: "contains" as const };
    const clear = compareOverSeeds([...runs("x-vi", [60, 62, 64]), ...runs("base", [40, 41, 45])], opts);
    assert.equal(clear.verdict, "reproduces");
    assert.equal(clear.seeds, 3);
    assert.ok(Math.abs(clear.difference - 20) < 1e-9);
    assert.match(verdictText(clear), /^reproduces: 62\.0 vs 42\.0, difference \+20\.0 ± 0\.6 \(s\.e\. over 3 seeds\)$/);
    assert.equal(compareOverSeeds([...runs("x-vi", [40, 41, 45]), ...runs("base", [60, 62, 64])], opts).verdict, "contradicts");
    const noisy = compareOverSeeds([...runs("x-vi", [50, 70, 40]), ...runs("base", [55, 45, 52])], opts);
    assert.equal(noisy.verdict, "inconclusive");
    assert.match(noisy.reason, /within two standard errors/);
    const floor = compareOverSeeds([...runs("x-vi", [2, 3, 2]), ...runs("base", [0, 1, 0])], { ...opts, chance: 32 });
    assert.equal(floor.verdict, "inconclusive");
    assert.match(floor.reason, /below chance .*32\.0/);
    const one = compareOverSeeds([...runs("x-vi", [60]), ...runs("base", [40])], { ...opts, metric: "bleu" });
    assert.equal(one.verdict, "inconclusive");
    assert.match(one.reason, /one seed/);
    // Seeds are paired: a seed only one arm ran is left out.
    assert.equal(compareOverSeeds([...runs("x-vi", [60, 61, 62]), ...runs("base", [40, 41])], opts).seeds, 2);
  });
});

describe("run records", () => {
  it("writes tables, metrics, findings and a manifest under runs/<notebook>/<timestamp>", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const record = await RunRecord.start("99-test", { mode: "smoke" }, undefined, dir);
      const table = await record.table("scores", [{ lang: "vi", bleu: 1.5, note: 'a "quoted", value' }], "caption");
      assert.match(String((table as unknown as { toHtml(): string }).toHtml()), /<table/);
      record.metric("bleu.vi", 1.5);
      record.finding("something", { bleu: 1.5 });
      record.armDurations({ label: "vi:target", seed: 0, tuneSeconds: 3, evalSeconds: 1.5 });
      record.armDurations({ label: "vi:source", seed: 0, tuneSeconds: 4, evalSeconds: 2 });
      const out = await record.finish();
      assert.equal(await latestRun("99-test", dir), out);
      assert.equal(readFileSync(join(out, "scores.csv"), "utf8"), 'lang,bleu,note\nvi,1.5,"a ""quoted"", value"\n');
      assert.deepEqual(JSON.parse(readFileSync(join(out, "metrics.json"), "utf8")), { "bleu.vi": 1.5 });
      const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      assert.deepEqual(manifest.parameters, { mode: "smoke" });
      for (const k of ["versions", "durations_s", "backend"]) assert.ok(k in manifest, k);
      assert.equal(manifest.durations_s["arms.tuning"], 7);
      assert.equal(manifest.durations_s["arms.evaluation"], 3.5);
      assert.deepEqual(manifest.arm_durations_s, [
        { label: "vi:target", seed: 0, tune: 3, evaluation: 1.5 },
        { label: "vi:source", seed: 0, tune: 4, evaluation: 2 },
      ]);
      assert.ok(existsSync(join(out, "findings.json")));
      assert.equal(toCsv([]), "\n");
    } finally {
      await cleanup();
    }
  });
});

describe("helpers for short notebook cells", () => {
  const results = [arm("alpaca", 0, 10, 1), arm("alpaca", 1, 0, 1), arm("x-llama-vi", 0, 15, 3), arm("zero", 0, 0, 0)];

  it("relativeGains: baseline, systems and their relative change per language (n/a where the baseline is 0)", () => {
    const rows = relativeGains(results, {
      languages: ["vi"],
      baseline: { name: "alpaca", arm: "alpaca" },
      systems: { x_llama: (l) => `x-llama-${l}`, zero: "zero" },
    });
    assert.deepEqual(rows, [{ lang: "vi", alpaca: 5, x_llama: 15, x_llama_gain_pct: 200, zero: 0, zero_gain_pct: -100 }]);
    const none = relativeGains(results, { languages: ["vi"], baseline: { name: "zero", arm: "zero" }, systems: { a: "alpaca" } });
    assert.ok(Number.isNaN(none[0]?.a_gain_pct as number));
    const bleu = relativeGains(results, {
      languages: ["vi"],
      baseline: { name: "b", arm: "alpaca" },
      systems: { x: "x-llama-vi" },
      metric: "bleu",
    });
    assert.equal(bleu[0]?.x_gain_pct, 200);
  });

  it("meanOverLanguages, armCell, competenceNote, tuneSummary, number formatting and collect", async () => {
    assert.equal(
      meanOverLanguages(results, ["vi", "zh"], (l) => `x-llama-${l}`, "contains"),
      15,
      "zh has no value: left out",
    );
    assert.ok(Number.isNaN(meanOverLanguages(results, ["zh"], "alpaca", "contains")));
    const table = armTable(results);
    assert.equal(armCell(table, "alpaca", "vi", "qa_contains_sd"), 7.07);
    assert.ok(Number.isNaN(armCell(table, "missing", "vi", "qa_contains")));
    assert.match(competenceNote(["zh"]), /^Not acquired in pretraining \(within 5 points of chance\): zh\. Tuning results/);
    assert.equal(competenceNote([]), "Every language is above chance before tuning, so transfer can show.");
    assert.equal(tuneSummary({ result: { finalLoss: 1.23456, steps: 12 } as never }), "final loss 1.2346 after 12 steps");
    assert.deepEqual(
      [formatNumber(12.345), formatNumber(Number.NaN), formatNumber(null), formatNumber(2, 2)],
      ["12.3", "n/a", "n/a", "2.00"],
    );
    assert.equal(formatInterval(12.345, 0.5, 2), "12.35 ± 0.50");
    assert.equal(formatInterval(Number.NaN, 0.5), "n/a");
    async function* count() {
      for (let i = 0; i < 10; i++) yield i;
    }
    assert.deepEqual(await collect(count(), 3), [0, 1, 2]);
    assert.equal((await collect(count())).length, 10);
  });

  it("coitExamples and runArms: the CoIT mixture, and arms × seeds with their training folders", async () => {
    const ex = (source: string) => ({ id: source, source, task: "t", instruction: "", input: "", output: "" }) as never;
    const calls: string[] = [];
    const fake = {
      alpaca: async (lang: string, n?: number) => Array.from({ length: n ?? 0 }, () => ex(`alpaca.${lang}`)),
      translationExamples: async (lang: string, n: number, side: string = "target") =>
        Array.from({ length: n }, () => ex(`tr.${lang}.${side}`)),
      runArm: async (spec: { label: string; seed: number; outDir: string; qaLanguages?: string[] }) => {
        calls.push(`${spec.label}|${spec.seed}|${spec.outDir}|${spec.qaLanguages?.join(",")}`);
        return arm(spec.label, spec.seed, 1, 1);
      },
    };
    const mix = await coitExamples(fake as never, "vi", 2);
    assert.deepEqual(
      mix.map((e: { source: string }) => e.source),
      ["alpaca.en", "alpaca.en", "alpaca.vi", "alpaca.vi", "tr.vi.target", "tr.vi.target"],
    );
    assert.equal((await coitExamples(fake as never, "vi", 1, { side: "source", english: false })).length, 2);
    const timed: string[] = [];
    const record = {
      dir: "/r",
      time: async <T>(name: string, work: () => Promise<T>) => {
        timed.push(name);
        return work();
      },
      armDurations: (a: { label: string; seed: number; tuneSeconds: number; evalSeconds: number }) => {
        timed.push(`${a.label}|${a.seed}: tune ${a.tuneSeconds} s, eval ${a.evalSeconds} s`);
      },
    };
    const out = await runArms(
      fake as never,
      record,
      [
        { label: "vi:target", examples: mix },
        { label: "m-llama", examples: [] },
      ],
      {
        seeds: [0, 1],
        qaLanguages: ["en", "vi"],
      },
    );
    assert.equal(out.length, 4);
    assert.deepEqual(calls, [
      "vi:target|0|/r/train/vi-target-0|en,vi",
      "m-llama|0|/r/train/m-llama-0|en,vi",
      "vi:target|1|/r/train/vi-target-1|en,vi",
      "m-llama|1|/r/train/m-llama-1|en,vi",
    ]);
    assert.deepEqual(timed, [
      "arms",
      "vi:target|0: tune 2 s, eval 1 s",
      "arms",
      "m-llama|0: tune 2 s, eval 1 s",
      "arms",
      "vi:target|1: tune 2 s, eval 1 s",
      "arms",
      "m-llama|1: tune 2 s, eval 1 s",
    ]);
  });

  it("runScaling: nested translation subsets of one language, one arm per size, in <run>/train/<lang>-<size>", async () => {
    const ex = (source: string, i: number) =>
      ({ id: `${source}:${i}`, source, task: "t", instruction: "", input: "", output: "" }) as never;
    const calls: string[] = [];
    const fake = {
      alpaca: async (lang: string, n?: number) => Array.from({ length: n ?? 0 }, (_, i) => ex(`alpaca.${lang}`, i)),
      translationExamples: async (lang: string, n: number, side: string = "target") => {
        calls.push(`translation ${lang} ${n} ${side}`);
        return Array.from({ length: n }, (_, i) => ex(`tr.${lang}`, i));
      },
      runArm: async (spec: {
        label: string;
        seed: number;
        outDir: string;
        examples: { id: string }[];
        translationLanguages?: string[];
      }) => {
        calls.push(`${spec.label}|${spec.seed}|${spec.outDir}|${spec.examples.length}|${spec.translationLanguages?.join(",")}`);
        return arm(spec.label, spec.seed, 1, 1);
      },
    };
    const timed: string[] = [];
    const record = {
      dir: "/r",
      time: async <T>(name: string, work: () => Promise<T>) => {
        timed.push(name);
        return work();
      },
      armDurations: (a: { label: string }) => {
        timed.push(`${a.label} timed`);
      },
    };
    const out = await runScaling(fake as never, record, "vi", { sizes: [1, 3], n: 2, seed: 7 });
    assert.deepEqual(
      out.map((o) => [o.pairs, o.result.label]),
      [
        [1, "vi:1"],
        [3, "vi:3"],
      ],
    );
    assert.deepEqual(calls, ["translation vi 3 target", "vi:1|7|/r/train/vi-1|5|vi", "vi:3|7|/r/train/vi-3|7|vi"]);
    assert.deepEqual(timed, ["arms", "vi:1 timed", "arms", "vi:3 timed"]);
  });

  it("findingsView: sentences, the study's claim, numbers without NaN%, and the run folder as a relative link", () => {
    const view = findingsView(
      [
        {
          notebook: "02",
          finding: "x-LLaMA vs English-only: n/a",
          numbers: { avg_gain_pct: Number.NaN, seeds: 3, bleu: 1.234 },
          claim: "+42.5%",
        },
        { notebook: "02", finding: "a <second> one", numbers: {} },
      ],
      "/w/runs/02/2026",
      "/w/notebooks",
    );
    const html = (view as unknown as Record<symbol, () => Record<string, string>>)[Symbol.for("Jupyter.display")]!();
    assert.match(
      html["text/html"]!,
      /<p><em>The study: \+42\.5%<\/em><\/p><p><code>avg_gain_pct n\/a \(baseline 0\), seeds 3, bleu 1\.23<\/code>/,
    );
    assert.match(html["text/html"]!, /a &lt;second&gt; one/);
    assert.match(html["text/html"]!, /<a href="\.\.\/runs\/02\/2026">/);
    assert.equal(
      html["text/plain"],
      "- x-LLaMA vs English-only: n/a (study: +42.5%)\n  avg_gain_pct n/a (baseline 0), seeds 3, bleu 1.23\n- a <second> one\nRun folder: /w/runs/02/2026",
    );
    assert.doesNotMatch(html["text/html"]!, /NaN/);
  });
});

describe("run records in a kernel", () => {
  it("record.table and record.figure display what they save once, through a display call", async () => {
    const { dir, cleanup } = await tempDir();
    const shown: DisplayMessage[] = [];
    setDisplayChannel({ send: (m) => shown.push(m) });
    try {
      const record = await RunRecord.start("99-test", {}, undefined, dir);
      const table = await record.table("gains", [{ lang: "vi", gain_pct: Number.NaN }], "Gains");
      const figure = await record.figure("bars", new Figure([{ type: "bar", x: ["vi"], y: [1], name: "x" }], { title: "QA" }));
      assert.equal(shown.length, 2, "one display each");
      // The kernel skips a cell result it already displayed: the display names the very object returned.
      assert.equal(shown[0]?.source, table);
      assert.equal(shown[1]?.source, figure);
      assert.match(String(shown[0]?.data["text/html"]), /<caption>Gains<\/caption>/);
      assert.doesNotMatch(String(shown[0]?.data["text/plain"]), /NaN/);
      assert.match(String(shown[1]?.data["image/svg+xml"]), /^<svg /);
      assert.ok(existsSync(join(record.dir, "bars.html")) && existsSync(join(record.dir, "gains.csv")));
      assert.equal(readFileSync(join(record.dir, "bars.svg"), "utf8"), figure.toSvg(), "the static picture is saved beside the HTML");
      setDisplayChannel(undefined);
      // Rows typed by an interface (no index signature, as CompetenceRow) are accepted.
      interface Probe {
        probe: string;
        contains: number;
        exact: number | null;
      }
      const probes: Probe[] = [{ probe: "held-out", contains: 50, exact: null }];
      await record.table("quiet", probes);
      assert.equal(shown.length, 2, "outside a kernel nothing is displayed (nor printed)");
      assert.equal(readFileSync(join(record.dir, "quiet.csv"), "utf8"), "probe,contains,exact\nheld-out,50,\n");
      record.metricsFrom({ "qa.vi": 1, "bleu.vi": 2 });
      assert.deepEqual(record.metrics, { "qa.vi": 1, "bleu.vi": 2 });
      assert.equal(record.finding("f", { a: 1 }, { claim: "+42.5%" }).claim, "+42.5%");
      assert.match(String(record.findingsView()), /^- f \(study: \+42\.5%\)\n {2}a 1\nRun folder: /);
    } finally {
      setDisplayChannel(undefined);
      await cleanup();
    }
  });
});

describe("where a notebook's cache and runs go", () => {
  it("$XALIGN_HOME, else the project at or above the working directory, else the installation (cache, runs, data)", async () => {
    const { dir, cleanup } = await tempDir();
    const saved = {
      home: process.env.XALIGN_HOME,
      cache: process.env.XALIGN_CACHE,
      runs: process.env.XALIGN_RUNS,
      data: process.env.XALIGN_DATA,
    };
    const cwd = process.cwd();
    try {
      delete process.env.XALIGN_CACHE;
      delete process.env.XALIGN_RUNS;
      delete process.env.XALIGN_HOME;
      delete process.env.XALIGN_DATA;
      assert.equal(installationRoot(), repoRoot());
      assert.equal(xalignHome(join(repoRoot(), "notebooks")), repoRoot());
      // A notebook copied outside any project (no package.json above it) uses the installation's cache and runs.
      process.chdir(dir);
      assert.equal(xalignHome(), repoRoot());
      assert.equal(cacheRoot(), join(repoRoot(), ".cache", "xalign"));
      assert.equal(runsRoot(), join(repoRoot(), "runs"));
      assert.equal(dataRoot(), join(repoRoot(), "data"));
      process.env.XALIGN_HOME = join(dir, "home");
      assert.equal(cacheRoot(), join(dir, "home", ".cache", "xalign"));
      assert.equal(runsRoot(), join(dir, "home", "runs"));
      assert.equal(dataRoot(), join(dir, "home", "data"));
      assert.match(
        scratchDir(cacheRoot(), "tune-x llama/vi"),
        new RegExp(`^${join(dir, "home", ".cache", "xalign", "scratch")}/tune-x-llama-vi-`),
      );
    } finally {
      process.chdir(cwd);
      for (const [k, v] of [
        ["XALIGN_HOME", saved.home],
        ["XALIGN_CACHE", saved.cache],
        ["XALIGN_RUNS", saved.runs],
        ["XALIGN_DATA", saved.data],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await cleanup();
    }
  });

  it("TuneOptions.outDir is optional, as documented (a folder under the cache's scratch)", () => {
    const options: TuneOptions = { seed: 0, label: "x-llama-vi" };
    assert.equal(options.outDir, undefined);
  });
});

describe("verify's progress", () => {
  it("counts cells 1..n and never past the total ([10/10], not [11/10])", () => {
    const lines: string[] = [];
    const log = onEventLogger((l) => lines.push(l));
    const cell = { cell_type: "code", source: "const a = 1;\nconst b = 2;", metadata: {}, outputs: [], execution_count: null };
    for (let k = 1; k <= 10; k++) log({ kind: "cell-start", index: k + 3, codeIndex: k, codeCells: 10, cell } as RunEvent);
    assert.equal(lines[0], "[1/10] const a = 1;");
    assert.equal(lines.at(-1), "[10/10] const a = 1;");
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

  it("world.freshNames and world.freshInstructions reach the world build and its cache key; absent, the key is the one worlds had before", async () => {
    const { prepareWorld } = await import("../../src/study/world.js");
    const { dir, cleanup } = await tempDir();
    try {
      const smoke = studySettings("smoke");
      const { freshNames: _n, freshInstructions: _i, ...plainWorld } = smoke.world;
      const small = { ...smoke, world: { ...plainWorld, sizes: { ...smoke.world.sizes, pretrain: 200, parallel: 300 } } };
      const plain = await prepareWorld(small, dir);
      const fresh = await prepareWorld({ ...small, world: { ...small.world, freshNames: true } }, dir);
      const taught = await prepareWorld({ ...small, world: { ...small.world, freshInstructions: true } }, dir);
      assert.equal(new Set([plain.key, fresh.key, taught.key]).size, 3);
      type Manifest = { pretrainFreshNames?: boolean; instructionFreshFacts?: boolean };
      const manifest = (d: string) => JSON.parse(readFileSync(join(d, "manifest.json"), "utf8")) as Manifest;
      assert.equal(manifest(fresh.dir).pretrainFreshNames, true);
      assert.equal(manifest(plain.dir).pretrainFreshNames, undefined);
      assert.equal(manifest(taught.dir).instructionFreshFacts, true);
      assert.equal(manifest(plain.dir).instructionFreshFacts, undefined);
      const off = await prepareWorld({ ...small, world: { ...small.world, freshNames: false, freshInstructions: false } }, dir);
      assert.equal(off.key, plain.key, "freshNames: false and freshInstructions: false are the world without the options");
    } finally {
      await cleanup();
    }
  });
});

describe("greedyComplete", () => {
  it("batches prompts by length and returns each continuation in the prompts' order, as one at a time (native or per-op)", async () => {
    const { initEngine } = await import("../../src/engine/index.js");
    const { LlamaModel } = await import("../../src/model/llama.js");
    const { trainBpeTokenizer } = await import("../../src/tokenizer/index.js");
    const { Rng } = await import("../../src/util/rng.js");
    const { baseModelConfig } = await import("../../src/study/base.js");
    const { greedyComplete } = await import("../../src/study/complete.js");
    await initEngine({ backend: "wasm" });
    const lines = Array.from({ length: 60 }, (_, i) => `Noho ${i % 7} works as an actor in Talot. Who likes meat? Kase.`);
    const tokenizer = await trainBpeTokenizer({ texts: lines }, { vocabSize: 320, splitPunctuation: true });
    const model = LlamaModel.init(
      baseModelConfig({ ...studySettings("smoke").model, hidden_size: 32, intermediate_size: 64 }, tokenizer),
      new Rng(3),
    );
    try {
      const prompts = ["Who", "Noho 3 works as an actor in", "Kase", "Who likes meat? Kase. Noho", "in Talot"];
      const batched = await greedyComplete(model, tokenizer, prompts, { maxNewTokens: 5, batchSize: 2 });
      const alone: string[] = [];
      for (const p of prompts) alone.push(...(await greedyComplete(model, tokenizer, [p], { maxNewTokens: 5, batchSize: 1 })));
      assert.deepEqual(batched, alone);
      // The per-op path one at a time (the study's `eval.native: false` timing baseline) gives the same texts.
      const perOp: string[] = [];
      for (const p of prompts)
        perOp.push(...(await greedyComplete(model, tokenizer, [p], { maxNewTokens: 5, batchSize: 1, native: false })));
      assert.deepEqual(perOp, alone);
      assert.equal(new Set(alone).size > 1, true, "different prompts give different continuations (the order is tested)");
    } finally {
      model.dispose();
    }
  });
});
