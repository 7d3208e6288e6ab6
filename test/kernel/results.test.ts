/**
 * What a cell shows (issue 21): an object a cell display()ed is not shown
 * again as its result (so `await record.table(...)` shows its table once,
 * wherever it is in the cell); danfojs DataFrames show as HTML and text
 * tables; shift-tab right after `studySettings(` finds the function; and a
 * notebook copied outside the checkout imports xalign and its dependencies
 * from the kernel's installation, with the installation's cache.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { calleeEnd } from "../../kernel/executor.js";
import type { JupyterMessage } from "../../kernel/wire.js";
import type { KernelClient } from "../../src/runner/client.js";
import type { Notebook, Output } from "../../src/runner/nbformat.js";
import { runNotebook } from "../../src/runner/run.js";
import { repoRoot, tempDir } from "../helpers.js";
import { NEEDS_BUILD, startKernel } from "./kernel-helpers.js";

type Content = Record<string, unknown>;
const content = (m: JupyterMessage | undefined): Content => (m?.content ?? {}) as Content;
const ofType = (outputs: JupyterMessage[], type: string) => outputs.filter((m) => m.header.msg_type === type);
const HELPERS = '"../../../dist/src/notebook/index.js"';
const dataOf = (o: Output | undefined, mime: string): string => String((o?.data as Record<string, unknown> | undefined)?.[mime]);

describe("calleeEnd: the call whose arguments hold the cursor", () => {
  it("finds the name before the innermost open parenthesis", () => {
    assert.equal(calleeEnd("studySettings(", 14), 13);
    assert.equal(calleeEnd('x;\nstudySettings("quick", { backend: "cpu" }, ', 44), 16);
    assert.equal(calleeEnd("S.armMean(results, f(1), ", 25), 9);
    assert.equal(calleeEnd('f(")", ', 7), 1, "a parenthesis in a string does not count");
    assert.equal(calleeEnd("f(1)", 4), undefined);
    assert.equal(calleeEnd("(1 + ", 5), undefined);
  });
});

describe("what cells show in the xalign kernel", { skip: NEEDS_BUILD }, () => {
  let kernel: KernelClient;
  before(async () => {
    kernel = await startKernel();
  });
  after(async () => {
    await kernel?.shutdown();
  });

  it("an object the cell display()ed is not shown a second time as the cell's result", async () => {
    const shownTwice = await kernel.execute(
      `import { display } from ${HELPERS};\nconst t = { [Symbol.for("Jupyter.display")]() { return { "text/plain": "T" }; } };\ndisplay(t);\nt`,
    );
    assert.equal(ofType(shownTwice.outputs, "display_data").length, 1);
    assert.equal(ofType(shownTwice.outputs, "execute_result").length, 0);
    // Another object, or the same one in a later cell, is a result as usual.
    const later = await kernel.execute("t");
    assert.deepEqual(content(ofType(later.outputs, "execute_result")[0]).data, { "text/plain": "T" });
  });

  it("a danfojs DataFrame as the last expression shows as an HTML table and text, like pandas", async () => {
    const { outputs } = await kernel.execute(
      'import * as dfd from "danfojs-node";\nnew dfd.DataFrame({ lang: ["vi", "<zh>"], bleu: [1.5, 2.25], n: [1, 2] })',
    );
    const data = content(ofType(outputs, "execute_result")[0]).data as Content;
    assert.deepEqual(Object.keys(data).sort(), ["text/html", "text/plain"]);
    assert.match(String(data["text/html"]), /<table border="1" class="dataframe">/);
    assert.match(String(data["text/html"]), /<th><\/th><th>lang<\/th><th>bleu<\/th><th>n<\/th>/);
    assert.match(String(data["text/html"]), /<tr><th>1<\/th><td>&lt;zh&gt;<\/td><td>2\.25<\/td><td>2<\/td><\/tr>/);
    assert.equal(data["text/plain"], "   lang  bleu  n\n0    vi   1.5  1\n1  <zh>  2.25  2");
    const long = await kernel.execute("new dfd.DataFrame({ i: Array.from({ length: 100 }, (_, k) => k) })");
    const longData = content(ofType(long.outputs, "execute_result")[0]).data as Content;
    assert.match(String(longData["text/plain"]), /\n\.\.\.\s+\.\.\.\n[\s\S]*100 rows × 1 columns$/);
    assert.equal((String(longData["text/html"]).match(/<tr><th>/g) ?? []).length, 21, "first 10, a cut, last 10");
  });

  it("shift-tab right after `studySettings(` shows the function's signature", async () => {
    const code = 'import { studySettings } from "xalign";\nstudySettings(';
    const { reply } = await kernel.request("shell", "inspect_request", { code, cursor_pos: code.length, detail_level: 0 });
    assert.equal(content(reply).found, true);
    assert.match(String((content(reply).data as Content)["text/plain"]), /studySettings\(mode/);
  });
});

describe("a notebook copied outside the checkout", { skip: NEEDS_BUILD }, () => {
  it("imports xalign and danfojs from the kernel's installation, uses its cache, and shows tables and figures once", {
    timeout: 180_000,
  }, async () => {
    const { dir, cleanup } = await tempDir("xalign-copied-");
    try {
      const cell = (id: string, source: string) => ({ cell_type: "code", id, metadata: {}, execution_count: null, outputs: [], source });
      const nb = {
        nbformat: 4,
        nbformat_minor: 5,
        metadata: { kernelspec: { name: "xalign", display_name: "TypeScript (xalign)", language: "typescript" } },
        cells: [
          cell("c1", 'import { study as S, plot } from "xalign";\nimport * as dfd from "danfojs-node";\nconsole.log(S.cacheRoot());'),
          cell(
            "c2",
            'const record = await S.RunRecord.start("copied", {});\nawait record.table("t", [{ lang: "vi", gain: S.relativeChange(1, 0) }], "T");\nconst mid = 1;\nmid',
          ),
          cell("c3", 'await record.figure("f", plot.lineChart({ series: [{ name: "vi", x: [125, 250], y: [1, 2] }], logX: true }))'),
          cell("c4", "new dfd.DataFrame({ lang: ['vi'], bleu: [1.5] })"),
        ],
      };
      const path = join(dir, "copied.ipynb");
      await writeFile(path, JSON.stringify(nb));
      const env: NodeJS.ProcessEnv = { ...process.env, XALIGN_RUNS: join(dir, "runs") };
      delete env.XALIGN_HOME;
      delete env.XALIGN_CACHE;
      const result = await runNotebook(path, { out: join(dir, "out.ipynb"), env, timeoutSeconds: 120 });
      assert.deepEqual(result.errors, []);
      const outputs = (id: string): Output[] => (result.notebook as Notebook).cells.find((c) => c.id === id)?.outputs ?? [];
      // The world and base model would be found where the installation built them.
      assert.equal(String(outputs("c1")[0]?.text).trim(), join(repoRoot(), ".cache", "xalign"));
      // record.table mid-cell: shown (no NaN), then the cell's own result.
      const c2 = outputs("c2");
      assert.deepEqual(
        c2.map((o) => o.output_type),
        ["display_data", "execute_result"],
      );
      assert.match(dataOf(c2[0], "text/html"), /<caption>T<\/caption>[\s\S]*n\/a/);
      // record.figure as the last expression: one display with the static picture, no second copy as the result.
      const c3 = outputs("c3");
      assert.deepEqual(
        c3.map((o) => o.output_type),
        ["display_data"],
      );
      assert.match(dataOf(c3[0], "image/svg+xml"), /^<svg [\s\S]*>125<\/text>/);
      assert.match(dataOf(outputs("c4")[0], "text/html"), /class="dataframe"/);
    } finally {
      await cleanup();
    }
  });

  it("in another project's folder (a package.json that is not xalign's), `import ... from \"xalign\"` still works", {
    timeout: 180_000,
  }, async () => {
    const { dir, cleanup } = await tempDir("xalign-course-");
    try {
      await writeFile(join(dir, "package.json"), JSON.stringify({ name: "course", version: "1.0.0", private: true }));
      const nb = {
        nbformat: 4,
        nbformat_minor: 5,
        metadata: { kernelspec: { name: "xalign", display_name: "TypeScript (xalign)", language: "typescript" } },
        cells: [
          {
            cell_type: "code",
            id: "c1",
            metadata: {},
            execution_count: null,
            outputs: [],
            source: 'import { study as S } from "xalign";\nS.formatRelativeChange(S.relativeChange(15, 10))',
          },
        ],
      };
      const path = join(dir, "lesson.ipynb");
      await writeFile(path, JSON.stringify(nb));
      const env: NodeJS.ProcessEnv = { ...process.env, XALIGN_HOME: join(dir, "home") };
      const result = await runNotebook(path, { out: join(dir, "out.ipynb"), env, timeoutSeconds: 120 });
      assert.deepEqual(result.errors, []);
      const out = (result.notebook as Notebook).cells[0]?.outputs?.[0];
      assert.equal(dataOf(out, "text/plain"), "+50.0%");
    } finally {
      await cleanup();
    }
  });
});
