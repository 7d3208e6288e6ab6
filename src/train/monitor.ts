/**
 * What a training run shows while it runs: in a kernel, one display updated
 * in place with the progress line (step, ETA, loss, lr) and a live loss
 * curve (inline SVG, so it needs no plotting library and survives nbconvert);
 * in a terminal, a progress bar on stderr.
 */
import { Writable } from "node:stream";
import {
  currentDisplayChannel,
  type DisplayHandle,
  display,
  JUPYTER_DISPLAY,
  type MimeBundle,
  Progress,
  svgImageHtml,
} from "../notebook/index.js";

export interface LossPoint {
  step: number;
  loss: number;
  split: "train" | "validation";
}

const discard = new Writable({ write: (_c, _e, done) => done() });

/** Renders a loss curve (train and validation) as a small SVG. */
export function lossCurveSvg(points: readonly LossPoint[], width = 420, height = 160): string {
  const pad = 30;
  if (points.length === 0) return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"></svg>`;
  const steps = points.map((p) => p.step);
  const losses = points.map((p) => p.loss).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps, Math.min(...steps) + 1)];
  const [y0, y1] = [Math.min(...losses), Math.max(...losses, Math.min(...losses) + 1e-6)];
  const x = (s: number) => pad + ((s - x0) / (x1 - x0)) * (width - pad - 8);
  const y = (l: number) => 8 + (1 - (l - y0) / (y1 - y0)) * (height - pad - 8);
  const has = (split: LossPoint["split"]) => points.some((p) => p.split === split && Number.isFinite(p.loss));
  // The legend names only the curves drawn.
  const legend = (
    [
      ["train", "#1f77b4"],
      ["validation", "#d62728"],
    ] as const
  ).filter(([split]) => has(split));
  const line = (split: LossPoint["split"], color: string) => {
    const pts = points.filter((p) => p.split === split && Number.isFinite(p.loss));
    if (pts.length === 0) return "";
    const d = pts.map((p, i) => `${i === 0 ? "M" : "L"}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join("");
    return `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
  };
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" style="font:10px sans-serif">` +
    `<rect x="${pad}" y="8" width="${width - pad - 8}" height="${height - pad - 8}" fill="none" stroke="#ccc"/>` +
    line("train", "#1f77b4") +
    line("validation", "#d62728") +
    `<text x="${pad}" y="${height - 12}">${x0}</text><text x="${width - 8}" y="${height - 12}" text-anchor="end">step ${x1}</text>` +
    `<text x="2" y="14">${y1.toPrecision(3)}</text><text x="2" y="${height - pad}">${y0.toPrecision(3)}</text>` +
    legend
      .map(([name, color], i) => `<text x="${width - 8}" y="${20 + 12 * i}" text-anchor="end" fill="${color}">${name}</text>`)
      .join("") +
    `</svg>`
  );
}

/** A one-line description of a loss curve (the image's alt text). */
export function lossCurveText(points: readonly LossPoint[]): string {
  const part = (split: LossPoint["split"]) => {
    const pts = points.filter((p) => p.split === split && Number.isFinite(p.loss));
    const first = pts[0];
    const last = pts.at(-1);
    if (!first || !last) return "";
    return `${split} loss ${first.loss.toPrecision(4)} at step ${first.step}${pts.length > 1 ? ` to ${last.loss.toPrecision(4)} at step ${last.step}` : ""}`;
  };
  const parts = [part("train"), part("validation")].filter((p) => p.length > 0);
  return parts.length > 0 ? `Loss curve: ${parts.join("; ")}` : "Loss curve: no points yet";
}

/** The loss curve as an HTML `<img>` (empty when there are no points yet). */
export function lossCurveHtml(points: readonly LossPoint[]): string {
  return points.length === 0 ? "" : svgImageHtml(lossCurveSvg(points), lossCurveText(points));
}

/**
 * Progress + loss curve for one training stage.
 *
 * @example
 * const monitor = new TrainingMonitor({ total: 100, label: "pretrain" });
 * monitor.step(1, { loss: 5.2, lr: 1e-3 });
 * monitor.done();
 */
export class TrainingMonitor {
  readonly points: LossPoint[] = [];
  private readonly progress: Progress;
  private readonly handle: DisplayHandle | undefined;
  private lastDraw = 0;

  constructor(options: { total: number; label: string; startStep?: number; kernel?: boolean }) {
    const kernel = options.kernel ?? currentDisplayChannel() !== undefined;
    // In a kernel, the progress line is drawn inside this monitor's own display.
    this.progress = new Progress({ total: options.total, label: options.label, kernel: false, ...(kernel ? { stream: discard } : {}) });
    if (options.startStep) this.progress.update(options.startStep);
    this.handle = kernel ? display(this, { displayId: true }) : undefined;
  }

  /** Records a finished optimiser step. */
  step(step: number, metrics: { loss: number; lr?: number; tokensPerSecond?: number }): void {
    this.points.push({ step, loss: metrics.loss, split: "train" });
    const shown: Record<string, number> = { loss: metrics.loss };
    if (metrics.lr !== undefined) shown.lr = metrics.lr;
    if (metrics.tokensPerSecond !== undefined) shown["tok/s"] = Math.round(metrics.tokensPerSecond);
    this.progress.update(step, shown);
    this.redraw(false);
  }

  /** Records a validation loss. */
  validation(step: number, loss: number): void {
    this.points.push({ step, loss, split: "validation" });
    this.progress.update(step, { val_loss: loss });
    this.redraw(true);
  }

  /** Draws the final state. */
  done(note?: string): void {
    this.progress.done(note ? { status: note } : undefined);
    this.redraw(true);
  }

  [JUPYTER_DISPLAY](): MimeBundle {
    const progressHtml = String(this.progress[JUPYTER_DISPLAY]()["text/html"] ?? "");
    return {
      "text/plain": this.progress.text(),
      "text/html": `<div class="xalign-training">${progressHtml}${lossCurveHtml(this.points)}</div>`,
    };
  }

  private redraw(force: boolean): void {
    if (!this.handle) return;
    const now = performance.now();
    if (!force && now - this.lastDraw < 500) return;
    this.lastDraw = now;
    this.handle.update(this);
  }
}
