/**
 * A plotly figure that shows itself in Jupyter (MIME bundle with the plotly
 * JSON, offline HTML, a static SVG picture and a text summary) and saves as a
 * standalone offline HTML file.
 */
import { svgImageHtml } from "../notebook/mime.js";
import { writeFileAtomic } from "../util/fs.js";
import { plotlyScriptTag, plotlyVersion, scriptSafeJson, takePlotlyInjection } from "./plotly.js";
import { figureSvg } from "./svg.js";

/** A plotly trace (see plotly.js's reference; kept loose on purpose). */
export interface Trace {
  type?: string;
  name?: string;
  [attribute: string]: unknown;
}

/** plotly layout and config objects. */
export type Layout = Record<string, unknown>;
export type PlotConfig = Record<string, unknown>;

/** The MIME bundle a figure shows as. */
export interface FigureBundle {
  "application/vnd.plotly.v1+json": { data: Trace[]; layout: Layout; config: PlotConfig };
  "text/html": string;
  /** The static picture (drawn by figureSvg), for viewers that run no JavaScript. */
  "image/svg+xml": string;
  "text/plain": string;
  [mime: string]: unknown;
}

let figureCounter = 0;

const DEFAULT_CONFIG: PlotConfig = { responsive: true, displaylogo: false };

/**
 * A plotly figure.
 *
 * @example
 * const fig = new Figure([{ type: "scatter", x: [1, 2], y: [3, 4] }], { title: { text: "demo" } });
 * fig; // in a notebook cell: renders (plotly.js is included with the first figure only)
 * await fig.saveHtml("runs/demo/figure.html");
 */
export class Figure {
  readonly data: Trace[];
  readonly layout: Layout;
  readonly config: PlotConfig;

  constructor(data: Trace[], layout: Layout = {}, config: PlotConfig = {}) {
    this.data = data;
    this.layout = { ...layout };
    this.config = { ...DEFAULT_CONFIG, ...config };
  }

  /** The figure's title text, if any. */
  get title(): string {
    const t = this.layout.title;
    if (typeof t === "string") return t;
    if (t && typeof t === "object" && typeof (t as { text?: unknown }).text === "string") return (t as { text: string }).text;
    return "";
  }

  /** The plotly JSON (data, layout, config). */
  toJSON(): { data: Trace[]; layout: Layout; config: PlotConfig } {
    return { data: this.data, layout: this.layout, config: this.config };
  }

  /** A one-line text description (the text/plain of the bundle). */
  toString(): string {
    return `Figure${this.title ? ` "${this.title}"` : ""}: ${this.traceSummary()}`;
  }

  /** `3 traces (2 scatter, 1 bar)`. */
  private traceSummary(): string {
    const kinds = new Map<string, number>();
    for (const t of this.data) kinds.set(t.type ?? "scatter", (kinds.get(t.type ?? "scatter") ?? 0) + 1);
    const traces = [...kinds].map(([k, n]) => `${n} ${k}`).join(", ");
    return `${this.data.length} trace${this.data.length === 1 ? "" : "s"} (${traces})`;
  }

  /**
   * The figure as a static SVG picture, drawn from its data without a
   * browser (see svg.ts): the same numbers, axes, ticks and legend.
   */
  toSvg(): string {
    return figureSvg(this.data, this.layout);
  }

  /**
   * What the figure's div holds until plotly draws in it: the static picture
   * (an <img> of toSvg(), which survives an untrusted notebook's sanitiser and
   * needs no JavaScript), then the title, the traces, and how to get the
   * interactive figure. A notebook that is not trusted runs no script (the
   * classic notebook strips them, and the div's size with the inline style),
   * so this is what its reader sees.
   */
  hintHtml(): string {
    const names = this.data.map((t) => (typeof t.name === "string" ? t.name : "")).filter((n) => n.length > 0);
    const title = this.title.replace(/<br\s*\/?>/gi, " ").replace(/<[^>]*>/g, "");
    return (
      `<div class="xalign-plot-hint">${svgImageHtml(this.toSvg(), title || "Figure")}` +
      `<p><strong>${escapeHtml(title || "Figure")}</strong> ` +
      `(static picture of an interactive plotly figure: ${escapeHtml(this.traceSummary())}` +
      `${names.length > 0 ? `; ${escapeHtml(names.join(", "))}` : ""})</p>` +
      `<p>plotly draws the interactive figure with JavaScript, which runs only in a trusted notebook. ` +
      `Trust this notebook (File → Trust Notebook) to draw the interactive figure. ` +
      `The numbers are also in the run's tables, and a figure saved as HTML draws in any browser.</p></div>`
    );
  }

  /**
   * An HTML fragment that draws the figure: a div and a script calling
   * `Plotly.newPlot`. With `includePlotly`, the library is inlined first;
   * otherwise it waits for `window.Plotly` defined by an earlier output. The
   * div holds a text hint (hintHtml) that the script removes before drawing.
   */
  toHtmlFragment(includePlotly: boolean): string {
    figureCounter++;
    const id = `xalign-plot-${process.pid.toString(36)}-${figureCounter}`;
    const height = typeof this.layout.height === "number" ? `${this.layout.height}px` : "450px";
    const spec = scriptSafeJson(this.toJSON());
    return `${includePlotly ? `${plotlyScriptTag()}\n` : ""}<div id="${id}" class="xalign-plot" style="width:100%;min-height:${height};">${this.hintHtml()}</div>
<script type="text/javascript">
(function () {
  var id = "${id}";
  var spec = ${spec};
  function draw() {
    var el = document.getElementById(id);
    // plotly.newPlot adds its own elements next to what the div holds: remove the hint first.
    if (el) el.textContent = "";
    window.Plotly.newPlot(id, spec.data, spec.layout, spec.config);
  }
  if (window.Plotly) { draw(); return; }
  var tries = 0;
  var timer = setInterval(function () {
    if (window.Plotly) { clearInterval(timer); draw(); }
    else if (++tries > 100) {
      clearInterval(timer);
      var el = document.getElementById(id);
      if (el) el.textContent = "plotly.js is not loaded on this page: run resetPlotlyInjection() from xalign's plot module and show the figure again.";
    }
  }, 100);
})();
</script>`;
  }

  /** A standalone offline HTML page (plotly.js inlined). */
  toStandaloneHtml(): string {
    const title = this.title || "xalign figure";
    const escaped = escapeHtml(title);
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="xalign (plotly.js ${plotlyVersion()})">
<title>${escaped}</title>
${plotlyScriptTag()}
</head>
<body>
${this.toHtmlFragment(false)}
</body>
</html>
`;
  }

  /** Writes the standalone HTML file atomically. */
  async saveHtml(path: string): Promise<void> {
    await writeFileAtomic(path, this.toStandaloneHtml());
  }

  /**
   * The MIME bundle for Jupyter; plotly.js travels with the first figure of a
   * session only. image/svg+xml is the static picture for viewers that pick
   * it over HTML or run no JavaScript; the HTML holds the same picture until
   * plotly draws.
   */
  [Symbol.for("Jupyter.display")](): FigureBundle {
    return {
      "application/vnd.plotly.v1+json": this.toJSON(),
      "text/html": this.toHtmlFragment(takePlotlyInjection()),
      "image/svg+xml": this.toSvg(),
      "text/plain": this.toString(),
    };
  }
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
