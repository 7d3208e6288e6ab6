/**
 * The study's figure kinds as small builders over {@link Figure}: line
 * charts (with fitted curves and confidence bands), grouped bars with error
 * bars, training-loss curves and heatmaps. Languages keep one colour in
 * every figure.
 */
import type { BandPoint } from "../analysis/scaling.js";
import { AnalysisError } from "../util/errors.js";
import { Figure, type Layout, type Trace } from "./figure.js";

const LANGUAGE_COLORS: Record<string, string> = {
  en: "#4c4c4c",
  ar: "#1f77b4",
  el: "#ff7f0e",
  hi: "#2ca02c",
  tr: "#d62728",
  vi: "#9467bd",
  zh: "#8c564b",
};
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/** A stable colour for a series: the study languages have fixed colours, other names cycle the palette. */
export function seriesColor(name: string, index: number): string {
  return LANGUAGE_COLORS[name] ?? PALETTE[index % PALETTE.length]!;
}

function withAlpha(hex: string, alpha: number): string {
  const v = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(v >> 16) & 255},${(v >> 8) & 255},${v & 255},${alpha})`;
}

function baseLayout(title: string | undefined, xTitle: string | undefined, yTitle: string | undefined, extra: Layout = {}): Layout {
  return {
    ...(title ? { title: { text: title } } : {}),
    xaxis: { title: { text: xTitle ?? "" }, zeroline: false },
    yaxis: { title: { text: yTitle ?? "" }, zeroline: false },
    legend: { orientation: "h", y: -0.2 },
    margin: { t: title ? 60 : 30, r: 20, b: 80, l: 60 },
    ...extra,
  };
}

/** A tick label: the value itself (125, 250, 1000, 16000; 250k and 1.5M above 100000; 3 significant digits). */
export function tickLabel(v: number): string {
  const abs = Math.abs(v);
  const short = (x: number) => String(Number(x.toPrecision(3)));
  if (abs >= 1e6) return `${short(v / 1e6)}M`;
  if (abs >= 1e5) return `${short(v / 1e3)}k`;
  return short(v);
}

/**
 * Ticks for a log axis labelled with actual values (plotly's default labels
 * a log axis "2 3 4 … 1000 2"): the measured values themselves when there are
 * 2 to 12 of them (unless `atValues` is false), else round steps of each decade within the range (1-9
 * within one decade, 1-2-5 over up to four, powers of ten beyond).
 *
 * @example
 * logAxisTicks([125, 250, 500, 1000]); // { tickvals: [125, 250, 500, 1000], ticktext: ["125", "250", "500", "1000"] }
 */
export function logAxisTicks(values: readonly number[], options: { atValues?: boolean } = {}): { tickvals: number[]; ticktext: string[] } {
  const positive = [...new Set(values.filter((v) => Number.isFinite(v) && v > 0))].sort((a, b) => a - b);
  let ticks = positive;
  if (options.atValues === false || positive.length < 2 || positive.length > 12) {
    ticks = [];
    const lo = positive[0] ?? 1;
    const hi = positive.at(-1) ?? 10;
    const decades = Math.log10(hi / lo);
    const steps = decades > 4 ? [1] : decades > 1 ? [1, 2, 5] : [1, 2, 3, 4, 5, 6, 7, 8, 9];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of steps) {
        const v = Number((m * 10 ** e).toPrecision(12));
        if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
      }
    }
    if (ticks.length < 2) ticks = positive.length > 0 ? [lo, hi].filter((v, i, a) => a.indexOf(v) === i) : [1, 10];
  }
  return { tickvals: ticks, ticktext: ticks.map(tickLabel) };
}

function checkSameLength(what: string, a: readonly unknown[], b: readonly unknown[]): void {
  if (a.length !== b.length) {
    throw new AnalysisError("XA_PLOT_LENGTH_MISMATCH", `${what}: ${a.length} x values but ${b.length} y values`, { field: what });
  }
}

/** One line of a line chart. */
export interface LineSeries {
  name: string;
  x: readonly number[];
  y: readonly number[];
  /** Draw markers only (measured points) instead of a line. */
  markersOnly?: boolean;
  dash?: "solid" | "dash" | "dot";
  /** A shaded band around the line (e.g. a 95% confidence band). */
  band?: { lower: readonly number[]; upper: readonly number[] };
  color?: string;
  /** Share colour and legend entry with the series of this name. */
  group?: string;
}

export interface LineChartOptions {
  series: readonly LineSeries[];
  title?: string;
  xTitle?: string;
  yTitle?: string;
  logX?: boolean;
  height?: number;
}

/**
 * Lines (and/or measured points) with optional shaded bands.
 *
 * @example
 * lineChart({ series: [{ name: "zh", x: [1e4, 1e5], y: [12, 18] }], xTitle: "pairs", yTitle: "spBLEU", logX: true });
 */
export function lineChart(options: LineChartOptions): Figure {
  const traces: Trace[] = [];
  const groups = new Map<string, number>();
  options.series.forEach((s, i) => {
    checkSameLength(`series "${s.name}"`, s.x, s.y);
    const group = s.group ?? s.name;
    if (!groups.has(group)) groups.set(group, groups.size);
    const color = s.color ?? seriesColor(group, groups.get(group)!);
    const firstOfGroup = options.series.findIndex((o) => (o.group ?? o.name) === group) === i;
    if (s.band) {
      checkSameLength(`series "${s.name}" band`, s.x, s.band.lower);
      checkSameLength(`series "${s.name}" band`, s.x, s.band.upper);
      traces.push({
        type: "scatter",
        x: [...s.x, ...[...s.x].reverse()],
        y: [...s.band.upper, ...[...s.band.lower].reverse()],
        fill: "toself",
        fillcolor: withAlpha(color, 0.15),
        line: { width: 0 },
        hoverinfo: "skip",
        showlegend: false,
        legendgroup: group,
        name: `${s.name} band`,
      });
    }
    traces.push({
      type: "scatter",
      mode: s.markersOnly ? "markers" : "lines",
      name: s.name,
      x: [...s.x],
      y: [...s.y],
      legendgroup: group,
      showlegend: firstOfGroup,
      ...(s.markersOnly ? { marker: { color, size: 8 } } : { line: { color, dash: s.dash ?? "solid", width: 2 } }),
    });
  });
  return new Figure(
    traces,
    baseLayout(options.title, options.xTitle, options.yTitle, {
      ...(options.logX
        ? { xaxis: { type: "log", title: { text: options.xTitle ?? "" }, ...logAxisTicks(measuredX(options.series)) } }
        : {}),
      ...(options.height ? { height: options.height } : {}),
    }),
  );
}

/** The x values to tick a log axis at: the measured points' (markers), else every series'. */
function measuredX(series: readonly LineSeries[]): number[] {
  const measured = series.filter((s) => s.markersOnly);
  return (measured.length > 0 ? measured : series).flatMap((s) => [...s.x]);
}

/** What a scaling-law chart needs per language: measured points and (optionally) a fit with its band. */
export interface ScalingSeries {
  name: string;
  points: ReadonlyArray<{ n: number; score: number }>;
  /** The fitted law: a predict function and optional band, e.g. a ScalingLawFit. */
  fit?: { predict(n: number): number; band?(ns: readonly number[], level?: number): BandPoint[]; formula?: string };
}

/**
 * Measured scores against data size with each language's fitted law and its
 * 95% band, on a log N axis (the study's scaling figure).
 *
 * @example
 * scalingLawChart({ series: [{ name: "zh", points, fit: fitScalingLaws(points).best }], yTitle: "spBLEU" });
 */
export function scalingLawChart(options: {
  series: readonly ScalingSeries[];
  title?: string;
  yTitle?: string;
  xTitle?: string;
  /** Extend the curves to this N (default: the largest measured N). */
  extendTo?: number;
  level?: number;
}): Figure {
  const lines: LineSeries[] = [];
  for (const s of options.series) {
    lines.push({ name: s.name, x: s.points.map((p) => p.n), y: s.points.map((p) => p.score), markersOnly: true, group: s.name });
    if (s.fit) {
      const ns = s.points.map((p) => p.n).filter((n) => n > 0);
      const lo = Math.min(...ns);
      const hi = Math.max(options.extendTo ?? 0, ...ns);
      const grid = Array.from({ length: 60 }, (_, i) => lo * (hi / lo) ** (i / 59));
      const band = s.fit.band?.(grid, options.level ?? 0.95);
      const bandOk = band?.every((b) => Number.isFinite(b.lower) && Number.isFinite(b.upper));
      lines.push({
        name: `${s.name} fit${s.fit.formula ? `: ${s.fit.formula}` : ""}`,
        x: grid,
        y: grid.map((n) => s.fit!.predict(n)),
        group: s.name,
        ...(band && bandOk ? { band: { lower: band.map((b) => b.lower), upper: band.map((b) => b.upper) } } : {}),
      });
    }
  }
  return lineChart({
    series: lines,
    logX: true,
    xTitle: options.xTitle ?? "translation pairs (N)",
    yTitle: options.yTitle ?? "score",
    ...(options.title ? { title: options.title } : {}),
  });
}

/** One group of bars (e.g. one model across languages). */
export interface BarGroup {
  name: string;
  values: readonly number[];
  /** Symmetric error bars (e.g. bootstrap half-widths). */
  errors?: readonly number[];
  color?: string;
}

/**
 * Grouped bars per category (e.g. languages) with optional error bars.
 *
 * @example
 * groupedBarChart({ categories: ["ar", "zh"], groups: [{ name: "Alpaca-7B", values: [20, 30] }, { name: "x-LLaMA", values: [35, 41], errors: [1.1, 0.9] }] });
 */
export function groupedBarChart(options: {
  categories: readonly string[];
  groups: readonly BarGroup[];
  title?: string;
  yTitle?: string;
  xTitle?: string;
}): Figure {
  const traces = options.groups.map((g, i) => {
    checkSameLength(`group "${g.name}"`, options.categories, g.values);
    if (g.errors) checkSameLength(`group "${g.name}" errors`, options.categories, g.errors);
    return {
      type: "bar",
      name: g.name,
      x: [...options.categories],
      y: [...g.values],
      marker: { color: g.color ?? PALETTE[i % PALETTE.length] },
      ...(g.errors ? { error_y: { type: "data", array: [...g.errors], visible: true } } : {}),
    } satisfies Trace;
  });
  return new Figure(traces, baseLayout(options.title, options.xTitle, options.yTitle, { barmode: "group" }));
}

/** One training run's loss. */
export interface LossRun {
  name: string;
  steps: readonly number[];
  loss: readonly number[];
}

/** Exponential moving average, debiased like TensorBoard's smoothing. */
export function smoothSeries(values: readonly number[], weight: number): number[] {
  let last = 0;
  let debias = 0;
  return values.map((v) => {
    last = weight * last + (1 - weight) * v;
    debias = weight * debias + (1 - weight);
    return last / debias;
  });
}

/**
 * Loss curves, raw (faint) and smoothed, one colour per run.
 *
 * @example
 * lossCurves({ runs: [{ name: "x-LLaMA zh", steps, loss }], smoothing: 0.9 });
 */
export function lossCurves(options: { runs: readonly LossRun[]; smoothing?: number; title?: string; logY?: boolean }): Figure {
  const smoothing = options.smoothing ?? 0.6;
  if (!(smoothing >= 0 && smoothing < 1)) {
    throw new AnalysisError("XA_PLOT_SMOOTHING", `smoothing must be in [0, 1), got ${smoothing}`, { field: "smoothing" });
  }
  const traces: Trace[] = [];
  options.runs.forEach((run, i) => {
    checkSameLength(`run "${run.name}"`, run.steps, run.loss);
    const color = PALETTE[i % PALETTE.length]!;
    if (smoothing > 0) {
      traces.push({
        type: "scatter",
        mode: "lines",
        name: `${run.name} (raw)`,
        x: [...run.steps],
        y: [...run.loss],
        line: { color: withAlpha(color, 0.25), width: 1 },
        legendgroup: run.name,
        showlegend: false,
        hoverinfo: "skip",
      });
    }
    traces.push({
      type: "scatter",
      mode: "lines",
      name: run.name,
      x: [...run.steps],
      y: smoothing > 0 ? smoothSeries(run.loss, smoothing) : [...run.loss],
      line: { color, width: 2 },
      legendgroup: run.name,
    });
  });
  return new Figure(
    traces,
    baseLayout(
      options.title,
      "step",
      "loss",
      options.logY
        ? {
            yaxis: {
              type: "log",
              title: { text: "loss" },
              ...logAxisTicks(
                options.runs.flatMap((r) => [...r.loss]),
                { atValues: false },
              ),
            },
          }
        : {},
    ),
  );
}

/**
 * A heatmap, e.g. representation similarity per layer (rows) and language (columns).
 *
 * @example
 * heatmap({ z: sims, x: ["ar", "zh"], y: layers.map(String), title: "cosine similarity to English", zmin: 0, zmax: 1 });
 */
export function heatmap(options: {
  z: readonly (readonly number[])[];
  x: readonly (string | number)[];
  y: readonly (string | number)[];
  title?: string;
  xTitle?: string;
  yTitle?: string;
  zmin?: number;
  zmax?: number;
  colorscale?: string;
  showValues?: boolean;
}): Figure {
  if (options.z.length !== options.y.length || options.z.some((row) => row.length !== options.x.length)) {
    throw new AnalysisError(
      "XA_PLOT_SHAPE",
      `heatmap z must be ${options.y.length} rows × ${options.x.length} columns (y × x), got ${options.z.length} rows`,
      { field: "z" },
    );
  }
  const trace: Trace = {
    type: "heatmap",
    z: options.z.map((row) => [...row]),
    x: [...options.x],
    y: [...options.y],
    colorscale: options.colorscale ?? "Viridis",
    ...(options.zmin !== undefined ? { zmin: options.zmin } : {}),
    ...(options.zmax !== undefined ? { zmax: options.zmax } : {}),
    ...(options.showValues ? { texttemplate: "%{z:.2f}" } : {}),
  };
  return new Figure([trace], baseLayout(options.title, options.xTitle, options.yTitle));
}
