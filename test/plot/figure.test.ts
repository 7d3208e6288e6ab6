import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fitScalingLaw } from "../../src/analysis/index.js";
import {
  Figure,
  type FigureBundle,
  groupedBarChart,
  heatmap,
  lineChart,
  logAxisTicks,
  lossCurves,
  resetPlotlyInjection,
  scalingLawChart,
  smoothSeries,
  Table,
  tickLabel,
} from "../../src/plot/index.js";
import { figureSvg } from "../../src/plot/svg.js";
import { AnalysisError } from "../../src/util/errors.js";
import { tempDir } from "../helpers.js";

const DISPLAY = Symbol.for("Jupyter.display");
const bundleOf = (fig: Figure) => (fig as unknown as Record<symbol, () => FigureBundle>)[DISPLAY]!();

test("a figure's MIME bundle: plotly JSON, a static SVG, text/plain, and HTML carrying plotly.js only the first time", () => {
  resetPlotlyInjection();
  const fig = new Figure([{ type: "scatter", x: [1, 2], y: [3, 4], name: "a" }], { title: { text: "demo" } });
  const first = bundleOf(fig);
  assert.deepEqual(Object.keys(first).sort(), ["application/vnd.plotly.v1+json", "image/svg+xml", "text/html", "text/plain"]);
  assert.equal(first["image/svg+xml"], fig.toSvg());
  assert.deepEqual(first["application/vnd.plotly.v1+json"].data, fig.data);
  assert.equal(first["text/plain"], 'Figure "demo": 1 trace (1 scatter)');
  assert.ok(first["text/html"].length > 1_000_000, "the first figure inlines plotly.js");
  assert.match(first["text/html"], /window\.Plotly = Plotly/);
  const second = bundleOf(fig);
  assert.ok(second["text/html"].length < 10_000, "later figures reuse window.Plotly");
  assert.match(second["text/html"], /Plotly\.newPlot/);
  resetPlotlyInjection();
  assert.ok(bundleOf(fig)["text/html"].length > 1_000_000);
});

test("the figure's div holds a text hint for a reader whose notebook runs no script; the script removes it before drawing", () => {
  const fig = new Figure(
    [
      { type: "bar", x: ["a"], y: [1], name: "none" },
      { type: "bar", x: ["a"], y: [2], name: "<both>" },
    ],
    { title: { text: "QA <b>contains</b>" } },
  );
  const html = fig.toHtmlFragment(false);
  const div = /<div id="([^"]+)" class="xalign-plot"[^>]*>([\s\S]*?)<\/div>\n<script/.exec(html);
  assert.ok(div, html);
  const hint = (div[2] ?? "").replace(/<[^>]*>/g, "");
  assert.match(hint, /^QA contains \(static picture of an interactive plotly figure: 2 traces \(2 bar\); none, &lt;both&gt;\)/);
  assert.match(hint, /Trust this notebook \(File → Trust Notebook\)/);
  // The static picture comes first in the div: an <img> of the same SVG as the bundle's image/svg+xml.
  const img = /^<div class="xalign-plot-hint"><img src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="QA contains">/.exec(
    div[2] ?? "",
  );
  assert.ok(img, div[2]);
  assert.equal(Buffer.from(img[1] ?? "", "base64").toString("utf8"), fig.toSvg());
  assert.match(html, /el\.textContent = "";\s*window\.Plotly\.newPlot\(id,/);
});

test("embedded JSON cannot close the script element", () => {
  const fig = new Figure([{ type: "bar", x: ["</script><b>x"], y: [1] }]);
  const html = fig.toHtmlFragment(false);
  assert.ok(!html.includes("</script><b>"));
  assert.match(html, /\\u003c\/script>\\u003cb>x/);
});

test("saveHtml writes a standalone page atomically", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const path = join(dir, "figs", "loss.html");
    await lossCurves({ runs: [{ name: "run", steps: [1, 2, 3], loss: [3, 2, 1.5] }] }).saveHtml(path);
    const html = await readFile(path, "utf8");
    assert.match(html, /^<!DOCTYPE html>/);
    assert.match(html, /plotly\.js v\d/);
    assert.deepEqual(await readdir(join(dir, "figs")), ["loss.html"]); // no temp file left
  } finally {
    await cleanup();
  }
});

test("chart builders: bands, error bars, smoothing, heatmap shape", () => {
  const line = lineChart({ series: [{ name: "zh", x: [1, 2], y: [3, 4], band: { lower: [2, 3], upper: [4, 5] } }], logX: true });
  assert.equal(line.data.length, 2);
  assert.equal(line.data[0]!.fill, "toself");
  assert.deepEqual(line.data[0]!.x, [1, 2, 2, 1]);
  assert.equal((line.layout.xaxis as { type: string }).type, "log");

  const bars = groupedBarChart({
    categories: ["ar", "zh"],
    groups: [
      { name: "x-LLaMA", values: [35, 41], errors: [1, 2] },
      { name: "Alpaca", values: [20, 30] },
    ],
  });
  assert.equal(bars.layout.barmode, "group");
  assert.deepEqual((bars.data[0]!.error_y as { array: number[] }).array, [1, 2]);
  assert.equal(bars.data[1]!.error_y, undefined);

  assert.deepEqual(smoothSeries([1, 1, 1], 0.9), [1, 1, 1]);
  const loss = lossCurves({ runs: [{ name: "r", steps: [0, 1], loss: [2, 1] }], smoothing: 0.5 });
  assert.equal(loss.data.length, 2);

  const hm = heatmap({
    z: [
      [0.1, 0.2],
      [0.3, 0.4],
      [0.5, 0.6],
    ],
    x: ["ar", "zh"],
    y: [0, 1, 2],
    zmin: 0,
    zmax: 1,
  });
  assert.equal(hm.data[0]!.type, "heatmap");
  const code = (c: string) => (e: unknown) => e instanceof AnalysisError && e.code === c;
  assert.throws(() => heatmap({ z: [[1, 2]], x: ["a"], y: [0] }), code("XA_PLOT_SHAPE"));
  assert.throws(() => lineChart({ series: [{ name: "a", x: [1, 2], y: [1] }] }), code("XA_PLOT_LENGTH_MISMATCH"));
  assert.throws(() => lossCurves({ runs: [], smoothing: 1 }), code("XA_PLOT_SMOOTHING"));
});

test("scaling-law chart: measured points, fitted curve and its band per language", () => {
  const points = [1e3, 1e4, 1e5, 1e6].map((n, i) => ({ n, score: 0.8 * Math.log(n) ** 1.6 + [0.3, -0.2, 0.1, -0.3][i]! }));
  const fit = fitScalingLaw(points, "log-power");
  const fig = scalingLawChart({ series: [{ name: "zh", points, fit }], yTitle: "spBLEU", extendTo: 1e7 });
  assert.deepEqual(
    fig.data.map((t) => t.mode ?? t.fill),
    ["markers", "toself", "lines"],
  );
  const curve = fig.data[2]!;
  assert.equal((curve.x as number[]).at(-1), 1e7);
  assert.match(String(curve.name), /^zh fit: a·\(ln N\)\^b/);
});

test("Table shows as HTML and aligned text", () => {
  const t = new Table(
    [
      { lang: "zh", bleu: 31.2, n: 1012 },
      { lang: "<ar>", bleu: 25.044 },
    ],
    { caption: "spBLEU" },
  );
  const b = (t as unknown as Record<symbol, () => Record<string, string>>)[DISPLAY]!();
  assert.match(b["text/html"]!, /<td>&lt;ar&gt;<\/td><td style="text-align:right">25\.04<\/td>/);
  assert.equal(b["text/plain"], "spBLEU\nlang   bleu     n\n----  -----  ----\nzh    31.20  1012\n<ar>  25.04      ");
  // NaN (a relative change against a baseline of 0) prints as "n/a", never "NaN".
  const nan = new Table([
    { lang: "vi", gain_pct: Number.NaN },
    { lang: "zh", gain_pct: 12.345 },
  ]);
  assert.equal(nan.toString(), "lang  gain_pct\n----  --------\nvi         n/a\nzh       12.35");
  assert.doesNotMatch(nan.toHtml(), /NaN/);
  const s = Table.fromScores({ metrics: ["bleu"], languages: ["zh", "avg"], rows: [], table: { zh: { bleu: 30 }, avg: { bleu: 30 } } });
  assert.deepEqual(s.columns, ["lang", "bleu"]);
});

test("log axes are labelled with actual values (125, 250, ...), not plotly's 2 3 4 ... 1000 2", () => {
  assert.deepEqual(logAxisTicks([125, 250, 500, 1000, 250]), { tickvals: [125, 250, 500, 1000], ticktext: ["125", "250", "500", "1000"] });
  // Many values: round steps within the range.
  const many = Array.from({ length: 40 }, (_, i) => 100 * 1.2 ** i);
  assert.deepEqual(logAxisTicks(many).ticktext.slice(0, 4), ["100", "200", "500", "1000"]);
  assert.deepEqual(logAxisTicks([2.4, 3.1, 4.8], { atValues: false }).ticktext, ["3", "4"]);
  assert.deepEqual([16000, 250000, 1500000, 0.125].map(tickLabel), ["16000", "250k", "1.5M", "0.125"]);
  const fig = scalingLawChart({
    series: [
      {
        name: "vi",
        points: [125, 250, 500, 1000].map((n, i) => ({ n, score: 2 + i })),
      },
    ],
  });
  const x = fig.layout.xaxis as { type: string; tickvals: number[]; ticktext: string[] };
  assert.equal(x.type, "log");
  assert.deepEqual(x.ticktext, ["125", "250", "500", "1000"]);
  const svg = fig.toSvg();
  for (const label of ["125", "250", "500", "1000"]) assert.match(svg, new RegExp(`>${label}</text>`));
  assert.deepEqual(
    (lossCurves({ runs: [{ name: "r", steps: [1, 2], loss: [5, 2.5] }], logY: true }).layout.yaxis as { ticktext: string[] }).ticktext,
    ["3", "4", "5"],
  );
});

test("the static SVG draws the numbers of each figure kind: lines with bands on a log axis, grouped bars with error bars, heatmaps", () => {
  const line = lineChart({
    series: [
      { name: "vi", x: [125, 1000], y: [2, 8], band: { lower: [1, 7], upper: [3, 9] } },
      { name: "zh", x: [125, 1000], y: [1, 4], markersOnly: true },
    ],
    title: "BLEU <i>vs</i> pairs",
    xTitle: "pairs",
    yTitle: "BLEU",
    logX: true,
  });
  const svg = line.toSvg();
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="720" height="450"/);
  assert.match(svg, />BLEU vs pairs<\/text>/);
  assert.match(svg, />pairs<\/text>/);
  assert.equal((svg.match(/<circle /g) ?? []).length, 2, "zh's two measured points");
  assert.equal((svg.match(/fill-opacity="0\.15"/g) ?? []).length, 1, "vi's band");
  assert.match(svg, /<path d="M[\d.,L]+" fill="none" stroke="#9467bd"/);
  // Legend: vi (line) and zh (markers); the band has no entry.
  assert.match(svg, />vi<\/text>/);
  assert.match(svg, />zh<\/text>/);
  assert.doesNotMatch(svg, /vi band/);
  assert.doesNotMatch(svg, /NaN/);
  // On a log axis 125 → 1000 spans the plot: the two points sit at its two ends (5% padding each side).
  const xs = [...svg.matchAll(/<circle cx="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.ok(xs.length === 2 && Math.abs((xs[1]! - xs[0]!) / (720 - 70 - 20) - 1 / 1.1) < 0.01, String(xs));

  const bars = groupedBarChart({
    categories: ["ar", "zh"],
    groups: [
      { name: "a", values: [10, 20], errors: [1, 2] },
      { name: "b", values: [15, 5] },
    ],
    yTitle: "%",
  });
  const b = bars.toSvg();
  assert.equal(
    (b.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#(1f77b4|ff7f0e)"\/>/g) ?? []).length,
    6,
    "4 bars + 2 legend swatches",
  );
  assert.equal((b.match(/stroke="#333333"/g) ?? []).length, 2, "two error bars");
  assert.match(b, />ar<\/text>/);
  // Bars start at 0 (as plotly's bar axes do); all-zero bars get a 0..1 axis, not -1..1.
  const zeros = groupedBarChart({ categories: ["vi"], groups: [{ name: "none", values: [0] }] }).toSvg();
  assert.doesNotMatch(zeros, />-[\d.]+<\/text>/, "no negative tick");
  assert.match(zeros, />0<\/text>[\s\S]*>1<\/text>/);

  const h = heatmap({ z: [[0, 1]], x: ["a", "b"], y: ["l0"], zmin: 0, zmax: 1, showValues: true }).toSvg();
  assert.match(h, /fill="rgb\(68,1,84\)"/, "zmin is viridis' first colour");
  assert.match(h, /fill="rgb\(253,231,37\)"/, "zmax its last");
  assert.match(h, />1\.00<\/text>/);
  // Text is escaped; a figure with no data still makes a valid picture.
  assert.match(figureSvg([{ type: "scatter", x: [1], y: [1], name: "<x>" }], {}), /&lt;x&gt;/);
  assert.match(figureSvg([], {}), /<\/svg>$/);
});
