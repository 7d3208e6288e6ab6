// The study notebooks executed for real: the xalign kernel, the headless
// runner and `verify`, in smoke mode (a tiny world and model: it checks the
// pipeline end to end, not the findings; quick mode runs in .ci/run).
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { publishRun } from "../../src/study/published.js";
import { runStudy, verifyNotebook } from "../../src/study/verify.js";
import { repoRoot, tempDir } from "../helpers.js";

let dirs: { dir: string; cleanup: () => Promise<void> };
/** The notebooks' cache and runs folders, passed to runStudy and verifyNotebook. */
let folders: { cacheDir: string; runsDir: string };

before(async () => {
  dirs = await tempDir("xalign-nb-");
  folders = { cacheDir: join(dirs.dir, "cache"), runsDir: join(dirs.dir, "runs") };
});

after(async () => {
  await dirs.cleanup();
});

describe("study notebooks (smoke mode)", () => {
  it("00, 01 and 03 execute headless, record their runs, and 00 verifies identical on a rerun", async () => {
    const nb = (n: string) => join(repoRoot(), "notebooks", `${n}.ipynb`);
    const runs = await runStudy([nb("00-quickstart"), nb("03-target-vs-source"), nb("08-real-data"), nb("01-data")], {
      parameters: { mode: "smoke", backend: "cpu" },
      ...folders,
    });
    for (const r of runs) {
      assert.equal(r.error, undefined, `${r.notebook}: ${r.error}`);
      assert.ok(r.runDir, `${r.notebook} recorded a run`);
      assert.ok(r.findings.length > 0, `${r.notebook} recorded findings`);
    }
    const executed = JSON.parse(readFileSync(join(runs[0]!.runDir!, "00-quickstart.ipynb"), "utf8"));
    const codeCells = executed.cells.filter((c: { cell_type: string }) => c.cell_type === "code");
    assert.ok(codeCells.every((c: { execution_count: number | null }) => typeof c.execution_count === "number"));
    assert.ok(
      codeCells.some((c: { outputs: { data?: Record<string, unknown> }[] }) => c.outputs.some((o) => o.data?.["text/html"])),
      "tables shown as HTML",
    );
    // The training cell shows one progress display, updated in place to its final state.
    const trainCell = codeCells.find((c: { source: string | string[] }) =>
      String(Array.isArray(c.source) ? c.source.join("") : c.source).includes("study.tune("),
    );
    const progress = trainCell.outputs.filter((o: { data?: Record<string, unknown> }) =>
      String(o.data?.["text/plain"] ?? "").includes("x-llama-"),
    );
    assert.equal(progress.length, 1, "one training display");
    assert.match(String(progress[0].data["text/plain"]), /status done/);
    // The loss curve is an <img> with an SVG data: URI (inline <svg> is stripped from an untrusted notebook).
    assert.match(String(progress[0].data["text/html"]), /<img src="data:image\/svg\+xml;base64,/);
    const manifest = JSON.parse(readFileSync(join(runs[1]!.runDir!, "manifest.json"), "utf8"));
    assert.equal(manifest.parameters.mode, "smoke");
    assert.equal(manifest.backend, "cpu");
    assert.match(runs[2]!.findings[0]!.finding, /Real data not present: missing checkpoint/);
    const verified = await verifyNotebook(nb("00-quickstart"), { against: "local", ...folders });
    assert.ok(verified.compared > 0);
    assert.deepEqual(verified.mismatches, []);
    // Published: the run shipped as notebooks/results/00-quickstart.json (here in a temp home) is what a rerun
    // is compared with; a published number that moved is named.
    const home = join(dirs.dir, "home");
    const { file } = await publishRun(runs[0]!.runDir as string, home);
    const shipped = JSON.parse(readFileSync(file, "utf8"));
    assert.equal(shipped.parameters.mode, "smoke");
    assert.match(shipped.commit, /^([0-9a-f]{40}|unknown)$/);
    const metric = Object.keys(shipped.metrics)[0] as string;
    shipped.metrics[metric] += 1;
    writeFileSync(file, JSON.stringify(shipped));
    const moved = await verifyNotebook(nb("00-quickstart"), { home, ...folders });
    assert.equal(moved.against, "published");
    assert.ok(shipped.data_sha256["base/model.safetensors"], "the published run names the base model it read");
    assert.deepEqual(moved.dataDifferences, [], "same world and base model");
    assert.deepEqual(
      moved.mismatches.map((m) => m.metric),
      [metric],
    );
    assert.equal(moved.ok, false);
  });
});
