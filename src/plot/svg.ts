/**
 * A static SVG picture of a figure, drawn here from its plotly data (no
 * browser, no network): what GitHub, nbviewer, VS Code and an untrusted
 * notebook show, since none of them runs plotly.js. It covers the traces
 * src/plot builds (scatter lines and markers with filled bands, grouped bars
 * with error bars, heatmaps) on linear or log axes, with the title, axis
 * titles, ticks (a layout's tickvals/ticktext when given) and a legend. It is
 * a faithful sketch of the same numbers, not a copy of plotly's rendering.
 */
import type { Layout, Trace } from "./figure.js";

export interface SvgOptions {
  /** Pixels (default 720). */
  width?: number;
  /** Pixels (default: the layout's height, else 450). */
  height?: number;
}

type AxisType = "linear" | "log" | "category";

interface Axis {
  type: AxisType;
  title: string;
  /** Data range (log axes: of log10 values). */
  min: number;
  max: number;
  categories: string[];
  ticks: { value: number; label: string }[];
}

const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
/** Viridis at 5 stops, for heatmaps. */
const VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Plotly title text (plain; <br> becomes a space, other tags are dropped). */
function titleText(t: unknown): string {
  const raw = typeof t === "string" ? t : t && typeof t === "object" ? (t as { text?: unknown }).text : undefined;
  return typeof raw === "string"
    ? raw
        .replace(/<br\s*\/?>/gi, " ")
        .replace(/<[^>]*>/g, "")
        .trim()
    : "";
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** "Nice" linear ticks (1-2-5 steps) covering [lo, hi]. */
function linearTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag) as number;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function label(v: number): string {
  const abs = Math.abs(v);
  if (abs >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (abs >= 1e5) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(4)));
}

/** Log ticks when the layout gives none: powers of ten (with 2 and 5 over a short range). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const steps = hi - lo > 4 ? [1] : [1, 2, 5];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of steps) {
      const v = m * 10 ** e;
      const l = Math.log10(v);
      if (l >= lo - 1e-9 && l <= hi + 1e-9) out.push(v);
    }
  }
  return out.length >= 2 ? out : [10 ** lo, 10 ** hi];
}

/**
 * An axis from the values drawn on it. `fromZero` (bar values): when every
 * value is at or above 0, the axis starts at 0 as plotly's bar axes do (and
 * all-zero bars get a 0..1 axis).
 */
function buildAxis(spec: unknown, values: unknown[], extra: number[] = [], fromZero = false): Axis {
  const s = (spec && typeof spec === "object" ? spec : {}) as Record<string, unknown>;
  const title = titleText(s.title);
  const categorical = values.some((v) => typeof v === "string");
  if (categorical) {
    const categories = [...new Set(values.map(String))];
    return {
      type: "category",
      title,
      min: -0.5,
      max: categories.length - 0.5,
      categories,
      ticks: categories.map((c, i) => ({ value: i, label: c })),
    };
  }
  const log = s.type === "log";
  const nums = [...values, ...extra].map(num).filter((v): v is number => v !== undefined && (!log || v > 0));
  let lo = nums.length > 0 ? Math.min(...nums) : 0;
  let hi = nums.length > 0 ? Math.max(...nums) : 1;
  if (log) {
    lo = Math.log10(lo);
    hi = Math.log10(hi);
  }
  const zeroBased = fromZero && !log && lo >= 0;
  if (zeroBased) lo = 0;
  if (hi === lo) {
    lo -= log ? 0.5 : zeroBased ? 0 : Math.abs(lo) * 0.1 || 1;
    hi += log ? 0.5 : Math.abs(hi) * 0.1 || 1;
  }
  const pad = (hi - lo) * 0.05;
  if (!zeroBased) lo -= pad;
  hi += pad;
  const tickvals = arr(s.tickvals).map(num);
  const ticktext = arr(s.ticktext);
  let ticks: { value: number; label: string }[];
  if (tickvals.length > 0 && tickvals.every((v) => v !== undefined)) {
    ticks = (tickvals as number[]).map((v, i) => ({ value: log ? Math.log10(v) : v, label: String(ticktext[i] ?? label(v)) }));
  } else if (log) {
    ticks = logTicks(lo, hi).map((v) => ({ value: Math.log10(v), label: label(v) }));
  } else {
    ticks = linearTicks(lo, hi).map((v) => ({ value: v, label: label(v) }));
  }
  ticks = ticks.filter((t) => t.value >= lo - 1e-9 && t.value <= hi + 1e-9);
  return { type: log ? "log" : "linear", title, min: lo, max: hi, categories: [], ticks };
}

/** A colour plotly accepts, for SVG (rgba() becomes rgb() plus an opacity). */
function paint(color: unknown, fallback: string): { color: string; opacity: number } {
  if (typeof color !== "string" || color.length === 0) return { color: fallback, opacity: 1 };
  const m = /^rgba\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*\)$/i.exec(color);
  if (m) return { color: `rgb(${m[1]},${m[2]},${m[3]})`, opacity: Number(m[4]) };
  return { color, opacity: 1 };
}

function viridis(t: number): string {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = Number.parseInt(VIRIDIS[i]!.slice(1), 16);
  const b = Number.parseInt(VIRIDIS[i + 1]!.slice(1), 16);
  const ch = (shift: number) => Math.round(((a >> shift) & 255) * (1 - f) + ((b >> shift) & 255) * f);
  return `rgb(${ch(16)},${ch(8)},${ch(0)})`;
}

/**
 * The figure as an SVG document.
 *
 * @example
 * figureSvg([{ type: "scatter", mode: "lines", x: [125, 250], y: [3, 5], name: "vi" }], { xaxis: { type: "log" } });
 */
export function figureSvg(data: readonly Trace[], layout: Layout, options: SvgOptions = {}): string {
  const width = options.width ?? 720;
  const height = options.height ?? num(layout.height) ?? 450;
  const title = titleText(layout.title);
  const legendItems = data
    .map((t, i) => ({ t, i }))
    .filter(({ t }) => t.showlegend !== false && typeof t.name === "string" && t.name.length > 0 && t.type !== "heatmap");
  const heat = data.find((t) => t.type === "heatmap");

  // Layout of the page: title on top, legend rows at the bottom.
  const legendCols = Math.max(1, Math.floor((width - 80) / 180));
  const legendRows = Math.ceil(legendItems.length / legendCols);
  const top = title ? 44 : 16;
  const left = 70;
  const right = heat ? 70 : 20;
  const bottom = 62 + legendRows * 20;
  const pw = width - left - right;
  const ph = Math.max(40, height - top - bottom);

  // Axes from every trace's values (bands included, error bars widen y).
  const xs: unknown[] = [];
  const ys: unknown[] = [];
  const yExtra: number[] = [];
  for (const t of data) {
    if (t.type === "heatmap") {
      xs.push(...arr(t.x).map(String));
      ys.push(...arr(t.y).map(String));
      continue;
    }
    xs.push(...arr(t.x));
    ys.push(...arr(t.y));
    if (t.type === "bar") yExtra.push(0);
    const err = t.error_y as { array?: unknown } | undefined;
    if (err && Array.isArray(err.array)) {
      arr(t.y).forEach((y, i) => {
        const e = num(arr(err.array)[i]);
        const v = num(y);
        if (e !== undefined && v !== undefined) yExtra.push(v + e, v - e);
      });
    }
  }
  const xa = buildAxis(layout.xaxis, xs);
  const ya = buildAxis(
    layout.yaxis,
    ys,
    yExtra,
    data.some((t) => t.type === "bar"),
  );
  const px = (v: number) => left + ((v - xa.min) / (xa.max - xa.min)) * pw;
  const py = (v: number) => top + ph - ((v - ya.min) / (ya.max - ya.min)) * ph;
  const xval = (v: unknown): number | undefined => {
    if (xa.type === "category") return xa.categories.indexOf(String(v));
    const n = num(v);
    return n === undefined ? undefined : xa.type === "log" ? (n > 0 ? Math.log10(n) : undefined) : n;
  };
  const yval = (v: unknown): number | undefined => {
    if (ya.type === "category") return ya.categories.indexOf(String(v));
    const n = num(v);
    return n === undefined ? undefined : ya.type === "log" ? (n > 0 ? Math.log10(n) : undefined) : n;
  };

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ${FONT} font-size="12">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  if (title) out.push(`<text x="${width / 2}" y="26" text-anchor="middle" font-size="16">${esc(title)}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="#f7f7f9"/>`);

  // Grid, ticks and axis titles.
  for (const t of ya.ticks) {
    const y = py(t.value).toFixed(1);
    if (!heat) out.push(`<line x1="${left}" x2="${left + pw}" y1="${y}" y2="${y}" stroke="#dddddd"/>`);
    out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${esc(t.label)}</text>`);
  }
  for (const t of xa.ticks) {
    const x = px(t.value).toFixed(1);
    if (!heat && xa.type !== "category") out.push(`<line x1="${x}" x2="${x}" y1="${top}" y2="${top + ph}" stroke="#dddddd"/>`);
    out.push(`<text x="${x}" y="${top + ph + 16}" text-anchor="middle">${esc(t.label)}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888888"/>`);
  if (xa.title) out.push(`<text x="${left + pw / 2}" y="${top + ph + 36}" text-anchor="middle" font-size="13">${esc(xa.title)}</text>`);
  if (ya.title) {
    out.push(
      `<text x="16" y="${top + ph / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 16 ${top + ph / 2})">${esc(ya.title)}</text>`,
    );
  }

  // Heatmap cells (with the colour scale on the right).
  if (heat) {
    const z = arr(heat.z).map((row) => arr(row).map(num));
    const flat = z.flat().filter((v): v is number => v !== undefined);
    const zmin = num(heat.zmin) ?? (flat.length ? Math.min(...flat) : 0);
    const zmax = num(heat.zmax) ?? (flat.length ? Math.max(...flat) : 1);
    const cw = pw / Math.max(1, xa.categories.length);
    const chh = ph / Math.max(1, ya.categories.length);
    z.forEach((row, r) => {
      row.forEach((v, c) => {
        if (v === undefined) return;
        const x = px(c) - cw / 2;
        const y = py(r) - chh / 2;
        const fill = viridis((v - zmin) / (zmax - zmin || 1));
        out.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${cw.toFixed(1)}" height="${chh.toFixed(1)}" fill="${fill}"/>`);
        if (typeof heat.texttemplate === "string") {
          out.push(
            `<text x="${(x + cw / 2).toFixed(1)}" y="${(y + chh / 2).toFixed(1)}" text-anchor="middle" dominant-baseline="middle" fill="#ffffff">${v.toFixed(2)}</text>`,
          );
        }
      });
    });
    const sx = left + pw + 20;
    for (let i = 0; i < 20; i++) {
      const y = top + ph - ((i + 1) * ph) / 20;
      out.push(`<rect x="${sx}" y="${y.toFixed(1)}" width="14" height="${(ph / 20 + 0.5).toFixed(1)}" fill="${viridis((i + 0.5) / 20)}"/>`);
    }
    out.push(`<text x="${sx + 18}" y="${top + 8}" font-size="10">${esc(label(zmax))}</text>`);
    out.push(`<text x="${sx + 18}" y="${top + ph}" font-size="10">${esc(label(zmin))}</text>`);
  }

  // Bars: grouped per category.
  const bars = data.filter((t) => t.type === "bar");
  const slot = xa.type === "category" ? 0.8 / Math.max(1, bars.length) : 0;
  const zeroY = py(ya.type === "log" ? ya.min : Math.min(Math.max(0, ya.min), ya.max));
  bars.forEach((t, b) => {
    const color = paint((t.marker as { color?: unknown } | undefined)?.color, PALETTE[data.indexOf(t) % PALETTE.length]!).color;
    const errors = arr((t.error_y as { array?: unknown } | undefined)?.array);
    arr(t.x).forEach((xv, i) => {
      const xc = xval(xv);
      const yv = yval(arr(t.y)[i]);
      if (xc === undefined || xc < 0 || yv === undefined) return;
      const x0 = px(xc - 0.4 + b * slot);
      const x1 = px(xc - 0.4 + (b + 1) * slot);
      const y = py(yv);
      out.push(
        `<rect x="${x0.toFixed(1)}" y="${Math.min(y, zeroY).toFixed(1)}" width="${Math.max(1, x1 - x0 - 1).toFixed(1)}" height="${Math.abs(zeroY - y).toFixed(1)}" fill="${color}"/>`,
      );
      const e = num(errors[i]);
      if (e !== undefined && e > 0) {
        const xm = ((x0 + x1) / 2).toFixed(1);
        const ya0 = py(yv - e).toFixed(1);
        const ya1 = py(yv + e).toFixed(1);
        out.push(`<path d="M${xm},${ya0}V${ya1}M${(+xm - 4).toFixed(1)},${ya0}h8M${(+xm - 4).toFixed(1)},${ya1}h8" stroke="#333333"/>`);
      }
    });
  });

  // Scatter traces: filled bands first, then lines, then markers.
  const scatters = data.filter((t) => (t.type ?? "scatter") === "scatter");
  const points = (t: Trace) =>
    arr(t.x).flatMap((xv, i) => {
      const x = xval(xv);
      const y = yval(arr(t.y)[i]);
      if (x === undefined || y === undefined || (xa.type === "category" && x < 0)) return [];
      return [[px(x), py(y)] as const];
    });
  for (const t of scatters.filter((s) => s.fill === "toself")) {
    const p = points(t);
    if (p.length < 3) continue;
    const { color, opacity } = paint(t.fillcolor, "#cccccc");
    out.push(
      `<path d="M${p.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join("L")}Z" fill="${color}" fill-opacity="${opacity}" stroke="none"/>`,
    );
  }
  scatters.forEach((t) => {
    if (t.fill === "toself") return;
    const i = data.indexOf(t);
    const mode = typeof t.mode === "string" ? t.mode : "lines+markers";
    const p = points(t);
    if (mode.includes("lines")) {
      const line = (t.line ?? {}) as { color?: unknown; width?: unknown; dash?: unknown };
      const { color, opacity } = paint(line.color, PALETTE[i % PALETTE.length]!);
      const dash = line.dash === "dash" ? ' stroke-dasharray="6,4"' : line.dash === "dot" ? ' stroke-dasharray="2,3"' : "";
      if (p.length >= 2) {
        out.push(
          `<path d="M${p.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join("L")}" fill="none" stroke="${color}" stroke-opacity="${opacity}" stroke-width="${num(line.width) ?? 2}"${dash}/>`,
        );
      }
    }
    if (mode.includes("markers")) {
      const marker = (t.marker ?? {}) as { color?: unknown; size?: unknown };
      const { color, opacity } = paint(marker.color ?? (t.line as { color?: unknown } | undefined)?.color, PALETTE[i % PALETTE.length]!);
      const r = (num(marker.size) ?? 6) / 2;
      for (const [x, y] of p)
        out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}" fill="${color}" fill-opacity="${opacity}"/>`);
    }
  });

  // Legend rows under the axis title.
  legendItems.forEach(({ t, i }, k) => {
    const col = k % legendCols;
    const row = Math.floor(k / legendCols);
    const x = left + col * 180;
    const y = top + ph + 56 + row * 20;
    const color =
      t.type === "bar"
        ? paint((t.marker as { color?: unknown } | undefined)?.color, PALETTE[i % PALETTE.length]!).color
        : paint(
            (t.line as { color?: unknown } | undefined)?.color ?? (t.marker as { color?: unknown } | undefined)?.color,
            PALETTE[i % PALETTE.length]!,
          ).color;
    const swatch =
      t.type === "bar" || (typeof t.mode === "string" && !t.mode.includes("lines"))
        ? `<rect x="${x}" y="${y - 6}" width="12" height="12" fill="${color}"/>`
        : `<line x1="${x}" x2="${x + 20}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="3"/>`;
    const name = String(t.name);
    out.push(
      `${swatch}<text x="${x + 26}" y="${y}" dominant-baseline="middle">${esc(name.length > 26 ? `${name.slice(0, 25)}…` : name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
}
