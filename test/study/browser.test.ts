/**
 * What a reader sees in an executed study notebook: 00-quickstart and
 * 03-target-vs-source run headless in smoke mode (`runStudy`, as in
 * notebooks.test.ts; 03 with one seed), and the executed files are opened,
 * NOT re-executed, in the classic notebook (Debian's jupyter-notebook on
 * loopback with a token) in headless Chromium (Debian's, through
 * playwright-core). The xalign kernel spec is installed into a temporary
 * prefix, as a user would have it, so opening a notebook starts an idle
 * kernel and no "kernel not found" dialog.
 *
 * The classic notebook does not trust a notebook it did not execute or sign:
 * it strips <script>, <svg> and inline styles from text/html outputs, ignores
 * image/svg+xml outputs (it shows their text/plain) and runs no JavaScript;
 * it has no renderer for application/vnd.plotly.v1+json. So xalign shows its
 * SVG loss curves as <img> elements with data: URIs (in the training displays,
 * and as the text/html of an image/svg+xml output), which survive, and a
 * plotly figure's div holds a text hint (title, traces, "Trust this
 * notebook") that its script replaces when it draws. The test checks the
 * untrusted view (tables, progress, loss curves, the hint), then trusts the
 * notebooks the way a user does (the "Not Trusted" indicator, then "Trust":
 * the server signs the notebook and the page reloads; `jupyter trust`, here
 * `python3 -m nbformat.sign` with the same JUPYTER_DATA_DIR, signs the same
 * way) and checks that the loss curves show and the plotly figure renders as
 * SVG.
 * Every plotly figure also carries a static picture (issue 21): image/svg+xml
 * in its bundle and the same SVG as an <img> inside its div, which plotly
 * replaces when it draws. The untrusted view must show that picture, and so
 * must each executed notebook exported by nbconvert (what nbviewer and GitHub
 * show) and opened with JavaScript off, with every recorded table and no
 * "NaN" in a table.
 * Full-page screenshots are kept in test-artifacts/ (not committed).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { main } from "../../src/cli/index.js";
import { runStudy } from "../../src/study/verify.js";
import { CHROMIUM, CHROMIUM_ARGS, type NotebookServer, repoRoot, startClassicNotebook, tempDir } from "../helpers.js";
import { NEEDS_BUILD } from "../kernel/kernel-helpers.js";

const MISSING = !existsSync(CHROMIUM)
  ? "Debian's chromium is not installed (apt-get install chromium)"
  : !existsSync("/usr/bin/jupyter-notebook")
    ? "Debian's classic notebook is not installed (apt-get install jupyter-notebook)"
    : NEEDS_BUILD;

const NOTEBOOKS = ["00-quickstart", "03-target-vs-source"] as const;
type Name = (typeof NOTEBOOKS)[number];
/** A column each notebook's tables carry (besides comparing every table with the saved outputs). */
const HEADER: Record<Name, string> = { "00-quickstart": "shared_token_rate", "03-target-vs-source": "qa_contains_sd" };

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
}
interface Cell {
  cell_type: string;
  execution_count?: number | null;
  outputs?: Output[];
}

/** What the executed notebook saved, to compare with what the page shows. */
interface Saved {
  /** The header row of every saved HTML table, in order. */
  tableHeaders: string[][];
  /** Training displays (text/html with a progress line). */
  trainingDisplays: number;
  /** image/svg+xml outputs other than figures (the loss curve after training; shown through their text/html <img>). */
  svgOutputs: number;
  /** Plotly figures whose bundle carries the static picture (image/svg+xml). */
  plotlyStatic: number;
  /** Titles of the saved plotly figures. */
  plotlyTitles: string[];
  /** Execution counts of the code cells, in order. */
  executionCounts: (number | null)[];
}

function text(v: unknown): string {
  return Array.isArray(v) ? v.join("") : String(v ?? "");
}

type PlotlyJson = { layout?: { title?: { text?: string } | string } };

function savedView(nb: { cells: Cell[] }): Saved {
  const code = nb.cells.filter((c) => c.cell_type === "code");
  const outputs = code.flatMap((c) => c.outputs ?? []);
  const html = outputs.map((o) => text(o.data?.["text/html"])).filter((h) => h.length > 0);
  const tableHeaders = html.flatMap((h) =>
    [...h.matchAll(/<thead>([\s\S]*?)<\/thead>/g)].map((m) => [...(m[1] ?? "").matchAll(/<th>([\s\S]*?)<\/th>/g)].map((th) => th[1] ?? "")),
  );
  const plotlyTitles = outputs
    .map((o) => o.data?.["application/vnd.plotly.v1+json"] as PlotlyJson | undefined)
    .filter((f): f is PlotlyJson => f !== undefined)
    .map((f) => (typeof f.layout?.title === "string" ? f.layout.title : (f.layout?.title?.text ?? "")));
  return {
    tableHeaders,
    trainingDisplays: html.filter((h) => h.includes('class="xalign-progress"')).length,
    svgOutputs: outputs.filter((o) => o.data?.["image/svg+xml"] !== undefined && o.data?.["application/vnd.plotly.v1+json"] === undefined)
      .length,
    plotlyStatic: outputs.filter((o) => o.data?.["image/svg+xml"] !== undefined && o.data?.["application/vnd.plotly.v1+json"] !== undefined)
      .length,
    plotlyTitles,
    executionCounts: code.map((c) => c.execution_count ?? null),
  };
}

interface Jupyterish {
  Jupyter?: { notebook?: { _fully_loaded?: boolean; trusted?: boolean; kernel?: { is_connected(): boolean } | null } };
}

/** What a reader sees in the open notebook's outputs. */
interface Shown {
  trusted: boolean;
  trustIndicator: string;
  prompts: string[];
  tableHeaders: string[][];
  progress: { text: string; value: number; max: number; curves: number }[];
  /** Outputs showing an SVG: as SVG, or as the <img> of their text/html. */
  svgOutputs: number;
  /** Loose text in the training displays besides the progress line (a stripped <svg>'s labels would be here). */
  trainingStrayText: string[];
  plots: { mainSvgs: number; title: string; legend: string[]; height: number; text: string; staticPictures: number }[];
}

/** A screenshot of the whole notebook: the classic notebook scrolls inside #site, so the viewport is grown to fit it first. */
async function screenshotWhole(page: Page, file: string): Promise<void> {
  const height = await page.evaluate(
    () => (document.querySelector("#header")?.getBoundingClientRect().height ?? 0) + (document.querySelector("#site")?.scrollHeight ?? 0),
  );
  await page.setViewportSize({ width: 1100, height: Math.min(Math.max(900, Math.ceil(height) + 40), 20_000) });
  await page.waitForTimeout(1000);
  await mkdir(join(repoRoot(), "test-artifacts"), { recursive: true });
  await page.screenshot({ path: join(repoRoot(), "test-artifacts", file), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 900 });
}

async function open(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as Jupyterish).Jupyter?.notebook?._fully_loaded === true, undefined, {
    timeout: 120_000,
  });
}

async function shown(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const nb = (window as unknown as Jupyterish).Jupyter?.notebook;
    const all = (sel: string, root: ParentNode = document) => Array.from(root.querySelectorAll(sel));
    return {
      trusted: nb?.trusted === true,
      trustIndicator: document.querySelector("#notification_trusted")?.textContent?.trim() ?? "",
      prompts: all(".code_cell .input_prompt").map((p) => (p.textContent ?? "").replace(/\s+/g, "")),
      tableHeaders: all(".output_area table").map((t) => all("thead th", t).map((th) => th.textContent ?? "")),
      progress: all(".output_area .xalign-progress").map((p) => {
        const bar = p.querySelector("progress");
        return {
          text: p.textContent ?? "",
          value: Number(bar?.getAttribute("value")),
          max: Number(bar?.getAttribute("max")),
          // An inline <svg> with a drawn line, or an <img> of an SVG that loaded.
          curves:
            (p.closest(".xalign-training")?.querySelectorAll("svg path").length ?? 0) +
            all('img[src^="data:image/svg+xml"]', p.closest(".xalign-training") ?? p).filter(
              (i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0,
            ).length,
        };
      }),
      svgOutputs:
        all(".output_area .output_svg svg").length +
        all('.output_area .output_html > img[src^="data:image/svg+xml"]').filter(
          (i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0,
        ).length,
      trainingStrayText: all(".output_area .xalign-training")
        .map((t) => {
          const c = t.cloneNode(true) as Element;
          for (const e of Array.from(c.querySelectorAll(".xalign-progress"))) e.remove();
          return (c.textContent ?? "").trim();
        })
        .filter((x) => x.length > 0),
      plots: all(".output_area .xalign-plot").map((d) => ({
        mainSvgs: all("svg.main-svg", d).length,
        title: d.querySelector(".gtitle")?.textContent ?? "",
        legend: all(".legendtext", d).map((l) => l.textContent ?? ""),
        height: d.getBoundingClientRect().height,
        text: d.textContent ?? "",
        // The static picture in the div (an <img> of an SVG that loaded).
        staticPictures: all('img[src^="data:image/svg+xml"]', d).filter(
          (i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0,
        ).length,
      })),
    };
  });
}

describe("executed study notebooks opened in the classic notebook (headless Chromium)", { skip: MISSING }, () => {
  let dirs: { dir: string; cleanup: () => Promise<void> };
  const saved = new Map<Name, Saved>();
  let server: NotebookServer | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  const url = (n: Name) => `${server?.base}/notebooks/${n}.ipynb?token=${server?.token}`;
  const untrusted = new Map<Name, Shown>();

  before(
    async () => {
      dirs = await tempDir("xalign-nb-browser-");
      const { dir } = dirs;
      // Smoke mode, one seed: 03 trains 4 arms instead of 12 and still draws its figure.
      const runs = await runStudy(
        NOTEBOOKS.map((n) => join(repoRoot(), "notebooks", `${n}.ipynb`)),
        { parameters: { mode: "smoke", backend: "cpu", seeds: [0] }, cacheDir: join(dir, "cache"), runsDir: join(dir, "runs") },
      );
      await mkdir(join(dir, "work"));
      for (const [i, n] of NOTEBOOKS.entries()) {
        const r = runs[i];
        assert.ok(r, `${n} ran`);
        assert.equal(r.error, undefined, `${n}: ${r.error}`);
        assert.ok(r.runDir, `${n} recorded a run`);
        const executed = join(r.runDir, `${n}.ipynb`);
        saved.set(n, savedView(JSON.parse(await readFile(executed, "utf8"))));
        await copyFile(executed, join(dir, "work", `${n}.ipynb`));
      }

      assert.equal(await main(["kernel", "install", "--prefix", dir]), 0);
      server = await startClassicNotebook(dir);
      context = await chromium.launchPersistentContext(join(dir, "chromium"), {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1100, height: 900 },
      });
      page = context.pages()[0] ?? (await context.newPage());
    },
    { timeout: 900_000 },
  );

  after(async () => {
    await context?.close();
    await server?.stop();
    await dirs?.cleanup();
  });

  it("the executed notebooks saved HTML tables, training displays and (03) a plotly figure", () => {
    const qs = saved.get("00-quickstart");
    const tvs = saved.get("03-target-vs-source");
    assert.ok(qs && tvs);
    assert.deepEqual(qs.tableHeaders[0], ["lang", "name", "shared_token_rate", "crossing_rate", "pretrain_share"]);
    assert.ok(qs.tableHeaders.some((h) => h.join() === "lang,task,contains,em,f1,chance,bleu,chrf"));
    assert.ok(tvs.tableHeaders.some((h) => h[0] === "arm" && h.includes("qa_contains_sd")));
    assert.ok(qs.trainingDisplays >= 1 && tvs.trainingDisplays >= 4);
    assert.equal(qs.plotlyTitles.length, 0);
    assert.equal(tvs.plotlyTitles.length, 1);
    assert.match(tvs.plotlyTitles[0] ?? "", /Non-English QA/);
    assert.equal(tvs.plotlyStatic, 1, "the figure's bundle carries its static picture");
  });

  for (const n of NOTEBOOKS) {
    it(`${n}, just opened (not trusted): its tables and the training displays' final progress, without re-executing`, {
      timeout: 240_000,
    }, async () => {
      await open(page, url(n));
      // Let the outputs settle (a trusted notebook's scripts would draw now; these must not run).
      await page.waitForTimeout(3000);
      const s = await shown(page);
      const want = saved.get(n);
      assert.ok(want);
      untrusted.set(n, s);
      assert.equal(s.trusted, false);
      assert.equal(s.trustIndicator, "Not Trusted");
      // Not re-executed: the prompts carry the saved execution counts, none is running.
      assert.deepEqual(
        s.prompts,
        want.executionCounts.map((c) => `In[${c ?? ""}]:`),
      );
      // Every saved HTML table is shown, with its header row.
      assert.deepEqual(s.tableHeaders, want.tableHeaders);
      // Every training display shows its final state: a full bar and "status done".
      assert.equal(s.progress.length, want.trainingDisplays);
      for (const p of s.progress) {
        assert.match(p.text, /(\d+)\/\1\s.*100%.*loss \d.*status done/);
        assert.ok(p.max > 0 && p.value === p.max, `full progress bar: ${p.value}/${p.max}`);
      }
      assert.ok(
        s.tableHeaders.some((h) => h.includes(HEADER[n])),
        `a table with a "${HEADER[n]}" column: ${JSON.stringify(s.tableHeaders)}`,
      );
      if (n === "03-target-vs-source") assert.equal(s.plots.length, 1, "the figure's div is in the page");
      await screenshotWhole(page, `study-notebook-classic-untrusted-${n}.png`);
    });
  }

  it("just opened (not trusted): the loss curves and the plotly figure (or a hint in its place) are visible", () => {
    for (const n of NOTEBOOKS) {
      const s = untrusted.get(n);
      const want = saved.get(n);
      assert.ok(s && want, `${n} was opened`);
      for (const p of s.progress) assert.ok(p.curves > 0, `${n}: a loss curve next to "${p.text.slice(0, 40)}"`);
      assert.deepEqual(s.trainingStrayText, [], `${n}: no loose text in the training displays`);
      assert.equal(s.svgOutputs, want.svgOutputs, `${n}: image/svg+xml outputs shown`);
      for (const [i, plot] of s.plots.entries()) {
        assert.ok(plot.mainSvgs > 0 || plot.text.trim().length > 0, `${n}: the figure or a hint`);
        assert.equal(plot.staticPictures, 1, `${n}: the figure's static picture shows without its script`);
        assert.ok(plot.text.includes(want.plotlyTitles[i] ?? "?"), `${n}: the hint names the figure: ${plot.text}`);
        assert.match(plot.text, /Trust this notebook/);
      }
    }
  });

  for (const n of NOTEBOOKS) {
    it(`${n}, trusted from the "Not Trusted" indicator: loss curves and plotly figures render as SVG`, { timeout: 240_000 }, async () => {
      const want = saved.get(n);
      assert.ok(want);
      await open(page, url(n));
      await page.click("#notification_trusted");
      const dialog = page.locator(".modal-dialog", { hasText: "Trust this notebook?" });
      await dialog.waitFor({ timeout: 30_000 });
      await Promise.all([page.waitForEvent("load", { timeout: 120_000 }), dialog.getByRole("button", { name: "Trust" }).click()]);
      await page.waitForFunction(() => (window as unknown as Jupyterish).Jupyter?.notebook?._fully_loaded === true, undefined, {
        timeout: 120_000,
      });
      if (want.plotlyTitles.length > 0) await page.waitForSelector(".output_area .xalign-plot svg.main-svg", { timeout: 120_000 });
      const s = await shown(page);
      assert.equal(s.trusted, true);
      assert.equal(s.trustIndicator, "Trusted");
      assert.deepEqual(
        s.prompts,
        want.executionCounts.map((c) => `In[${c ?? ""}]:`),
      );
      assert.deepEqual(s.tableHeaders, want.tableHeaders);
      assert.equal(s.progress.length, want.trainingDisplays);
      for (const p of s.progress) {
        assert.match(p.text, /status done/);
        assert.ok(p.curves > 0, `a loss curve next to "${p.text.slice(0, 40)}"`);
      }
      assert.equal(s.svgOutputs, want.svgOutputs, "image/svg+xml outputs shown");
      assert.deepEqual(s.trainingStrayText, []);
      assert.equal(s.plots.length, want.plotlyTitles.length);
      for (const [i, plot] of s.plots.entries()) {
        assert.ok(plot.mainSvgs > 0, "plotly drew SVG");
        assert.equal(plot.title, want.plotlyTitles[i]);
        assert.ok(plot.height > 100, `the figure has a height (${plot.height}px)`);
        assert.doesNotMatch(plot.text, /Trust this notebook/, "the hint is gone once plotly draws");
        assert.equal(plot.staticPictures, 0, "plotly replaced the static picture");
        if (n === "03-target-vs-source") assert.deepEqual(plot.legend, ["none", "target", "source", "both"]);
      }
      await screenshotWhole(page, n === "03-target-vs-source" ? "study-notebook-classic.png" : `study-notebook-classic-${n}.png`);
    });
  }
  for (const n of NOTEBOOKS) {
    it(`${n}, exported by nbconvert and opened with JavaScript off (as nbviewer and GitHub show it): tables and static figures`, {
      timeout: 240_000,
      skip: existsSync("/usr/bin/python3") ? false : "Debian's python3 with nbconvert is not installed (apt-get install python3-nbconvert)",
    }, async () => {
      const want = saved.get(n);
      assert.ok(want);
      const html = join(dirs.dir, `${n}.html`);
      await promisify(execFile)(
        "/usr/bin/python3",
        ["-m", "nbconvert", "--to", "html", "--output", html, join(dirs.dir, "work", `${n}.ipynb`)],
        {
          timeout: 180_000,
        },
      );
      // A browser of its own: the persistent context above runs JavaScript.
      const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
      const off = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1100, height: 900 } });
      const reader = await off.newPage();
      try {
        await reader.goto(pathToFileURL(html).href, { timeout: 120_000 });
        // Tables in outputs (nbconvert's lab template, or its classic one), not in markdown cells.
        const OUTPUT_TABLES = ".jp-OutputArea-output table, .output_area table";
        const view = await reader.evaluate((OUTPUT_TABLES) => {
          const all = (sel: string, root: ParentNode = document) => Array.from(root.querySelectorAll(sel));
          return {
            tableHeaders: all(OUTPUT_TABLES).map((t) => all("thead th", t).map((th) => th.textContent ?? "")),
            tableText: all(OUTPUT_TABLES)
              .map((t) => t.textContent ?? "")
              .join("\n"),
            plots: all(".xalign-plot").map((d) => ({
              pictures: all('img[src^="data:image/svg+xml"]', d).filter(
                (i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0,
              ).length,
              drawn: all("svg.main-svg", d).length,
            })),
          };
        }, OUTPUT_TABLES);
        assert.deepEqual(view.tableHeaders, want.tableHeaders);
        assert.doesNotMatch(view.tableText, /NaN/);
        assert.equal(view.plots.length, want.plotlyTitles.length);
        for (const p of view.plots) assert.deepEqual(p, { pictures: 1, drawn: 0 }, `${n}: the static picture, not a plotly drawing`);
        await mkdir(join(repoRoot(), "test-artifacts"), { recursive: true });
        await reader.screenshot({ path: join(repoRoot(), "test-artifacts", `study-notebook-nbconvert-no-js-${n}.png`), fullPage: true });
      } finally {
        await browser.close();
      }
    });
  }
});
