import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium, type Page } from "playwright-core";
import { Figure, type FigureBundle, groupedBarChart, heatmap, resetPlotlyInjection } from "../../src/plot/index.js";
import { CHROMIUM, CHROMIUM_ARGS, tempDir } from "../helpers.js";

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (install Debian's chromium: apt-get install -y chromium)`;

/** Opens a file and records any request that is not for a file (there must be none: offline). */
async function openOffline(page: Page, path: string): Promise<string[]> {
  const external: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith("file:")) external.push(r.url());
  });
  await page.goto(pathToFileURL(path).href, { timeout: 90_000 });
  return external;
}

// One browser for both checks: launching Chromium and parsing plotly.js dominate the time.
test("figures render offline in headless Chromium (saved file, and notebook outputs sharing one plotly.js)", {
  skip,
  timeout: 240_000,
}, async () => {
  const { dir, cleanup } = await tempDir();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
  try {
    // 1. A standalone saved figure: the plot's SVG exists and nothing was fetched.
    const saved = join(dir, "bars.html");
    await groupedBarChart({ categories: ["ar", "zh"], groups: [{ name: "x-LLaMA", values: [35, 41], errors: [1, 2] }] }).saveHtml(saved);
    const page = await browser.newPage();
    const external = await openOffline(page, saved);
    await page.waitForSelector("svg.main-svg", { timeout: 60_000 });
    assert.ok((await page.locator("g.point").count()) >= 2, "two bars drawn");
    assert.deepEqual(external, []);

    // 2. Two notebook outputs: only the first carries plotly.js, both draw.
    resetPlotlyInjection();
    const show = (fig: Figure) => (fig as unknown as Record<symbol, () => FigureBundle>)[Symbol.for("Jupyter.display")]!()["text/html"];
    const first = show(new Figure([{ type: "scatter", x: [1, 2, 3], y: [2, 1, 3] }]));
    const second = show(heatmap({ z: [[1, 2]], x: ["a", "b"], y: ["l0"] }));
    assert.ok(second.length < first.length / 100);
    const notebook = join(dir, "notebook.html");
    await writeFile(notebook, `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>${first}\n${second}</body></html>`);
    const nb = await browser.newPage();
    assert.deepEqual(await openOffline(nb, notebook), []);
    await nb.waitForFunction(() => document.querySelectorAll(".xalign-plot svg.main-svg").length >= 2, undefined, { timeout: 60_000 });
    assert.equal(await nb.locator(".xalign-plot.js-plotly-plot").count(), 2);
  } finally {
    await browser.close();
    await cleanup();
  }
});
