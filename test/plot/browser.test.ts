import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium, type Page } from "playwright-core";
import { Figure, type FigureBundle, groupedBarChart, heatmap, resetPlotlyInjection, scalingLawChart } from "../../src/plot/index.js";
import { CHROMIUM, CHROMIUM_ARGS, repoRoot, tempDir } from "../helpers.js";

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
test("figures render offline in headless Chromium (saved file, notebook outputs sharing one plotly.js, and static pictures with JavaScript off)", {
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
    // The div keeps the figure's height (a min-height, so that the static picture and its note fit without JavaScript).
    const heights = await nb.evaluate(() =>
      Array.from(document.querySelectorAll(".xalign-plot")).map((d) => d.getBoundingClientRect().height),
    );
    for (const h of heights) assert.ok(h >= 440 && h <= 470, `plotly drew at the figure's height: ${heights.join(", ")}`);
    // plotly replaced the static picture it drew over.
    assert.equal(await nb.locator('.xalign-plot img[src^="data:image/svg+xml"]').count(), 0);

    // 3. JavaScript off (GitHub, nbviewer without scripts, an untrusted notebook): each figure's
    // HTML still shows its static picture, and the bundle's image/svg+xml is the same picture.
    resetPlotlyInjection();
    const figures = [
      groupedBarChart({ categories: ["ar", "zh"], groups: [{ name: "x-LLaMA", values: [35, 41], errors: [1, 2] }], title: "QA" }),
      scalingLawChart({ series: [{ name: "vi", points: [125, 250, 500, 1000].map((n, i) => ({ n, score: 2 + i })) }], title: "BLEU" }),
    ];
    const bundles = figures.map((f) => (f as unknown as Record<symbol, () => FigureBundle>)[Symbol.for("Jupyter.display")]!());
    const still = join(dir, "no-js.html");
    const svgs = bundles.map((b) => `<div class="svg-output">${b["image/svg+xml"]}</div>`).join("\n");
    await writeFile(
      still,
      `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>${bundles.map((b) => b["text/html"]).join("\n")}\n${svgs}</body></html>`,
    );
    const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 900, height: 900 } });
    try {
      const off = await context.newPage();
      assert.deepEqual(await openOffline(off, still), []);
      const pictures = await off.evaluate(() =>
        Array.from(document.querySelectorAll(".xalign-plot")).map((d) => {
          const img = d.querySelector('img[src^="data:image/svg+xml"]') as HTMLImageElement | null;
          const box = img?.getBoundingClientRect();
          return {
            loaded: img?.complete === true && img.naturalWidth > 0,
            width: box?.width ?? 0,
            height: box?.height ?? 0,
            plotlyDrew: d.querySelectorAll("svg.main-svg").length > 0,
            alt: img?.alt ?? "",
          };
        }),
      );
      assert.deepEqual(
        pictures.map((p) => [p.loaded, p.plotlyDrew, p.alt]),
        [
          [true, false, "QA"],
          [true, false, "BLEU"],
        ],
      );
      for (const p of pictures) assert.ok(p.width >= 700 && p.height >= 400, `the picture is drawn at its size: ${p.width}×${p.height}`);
      // Nothing overlaps: each figure's div holds its picture and note (the next figure starts below them).
      const boxes = await off.evaluate(() =>
        Array.from(document.querySelectorAll(".xalign-plot")).map((d) => {
          const r = d.getBoundingClientRect();
          const last = d.querySelector(".xalign-plot-hint p:last-child")?.getBoundingClientRect();
          return { top: r.top, bottom: r.bottom, noteBottom: last?.bottom ?? 0 };
        }),
      );
      for (const b of boxes) assert.ok(b.noteBottom <= b.bottom + 1, `the note stays inside its figure: ${JSON.stringify(b)}`);
      assert.ok((boxes[1]?.top ?? 0) >= (boxes[0]?.bottom ?? 0) - 1);
      // The image/svg+xml parts render too (as a viewer preferring them shows them), with their tick labels.
      const ticks = await off.evaluate(() => Array.from(document.querySelectorAll(".svg-output svg text")).map((t) => t.textContent));
      for (const label of ["ar", "zh", "125", "250", "500", "1000"]) assert.ok(ticks.includes(label), `tick ${label}: ${ticks.join("|")}`);
      await mkdir(join(repoRoot(), "test-artifacts"), { recursive: true });
      await off.screenshot({ path: join(repoRoot(), "test-artifacts", "figures-static-no-js.png"), fullPage: true });
    } finally {
      await context.close();
    }
  } finally {
    await browser.close();
    await cleanup();
  }
});
