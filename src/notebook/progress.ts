/**
 * Progress for long work: in a kernel, one display updated in place (step,
 * total, rate, ETA and metrics such as loss); in a terminal, a bar on stderr.
 */
import { currentDisplayChannel } from "./channel.js";
import { type DisplayHandle, display } from "./display.js";
import { JUPYTER_DISPLAY, type MimeBundle } from "./mime.js";

export interface ProgressOptions {
  /** Number of steps; 0 when unknown. */
  total: number;
  /** Shown before the bar, e.g. "train ar". */
  label?: string;
  /** Minimum milliseconds between two redraws (the last one is always drawn). Default 200. */
  minIntervalMs?: number;
  /** Clock in milliseconds; injectable for tests. */
  now?: () => number;
  /** Where the terminal bar goes; default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Force kernel display (true) or terminal bar (false); default: kernel when one is running. */
  kernel?: boolean;
}

/** Metrics shown after the bar; numbers are printed with 4 significant digits. */
export type ProgressMetrics = Record<string, number | string>;

const BAR_WIDTH = 30;

/**
 * @example
 * const progress = new Progress({ total: 100, label: "train" });
 * for (let step = 1; step <= 100; step++) progress.update(step, { loss: 2.3 / step });
 * progress.done();
 */
export class Progress {
  readonly total: number;
  readonly label: string;
  step = 0;
  metrics: ProgressMetrics = {};
  private readonly started: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private readonly minIntervalMs: number;
  private readonly now: () => number;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly handle: DisplayHandle | undefined;
  private lastLinePercent = -1;
  private finished = false;

  constructor(options: ProgressOptions) {
    this.total = Math.max(0, options.total);
    this.label = options.label ?? "";
    this.minIntervalMs = options.minIntervalMs ?? 200;
    this.now = options.now ?? (() => performance.now());
    this.stream = options.stream ?? process.stderr;
    this.started = this.now();
    const kernel = options.kernel ?? currentDisplayChannel() !== undefined;
    this.handle = kernel ? display(this, { displayId: true }) : undefined;
    if (!kernel) this.drawTerminal(false);
  }

  /** Sets the absolute step (and metrics) and redraws when due. */
  update(step: number, metrics?: ProgressMetrics): void {
    this.step = step;
    if (metrics) this.metrics = { ...this.metrics, ...metrics };
    this.draw(false);
  }

  /** Advances by `n` steps. */
  advance(n = 1, metrics?: ProgressMetrics): void {
    this.update(this.step + n, metrics);
  }

  /** Draws the final state (always), e.g. after the last step or when stopped early. */
  done(metrics?: ProgressMetrics): void {
    if (metrics) this.metrics = { ...this.metrics, ...metrics };
    this.finished = true;
    this.draw(true);
  }

  /** Seconds since the start. */
  elapsedSeconds(): number {
    return (this.now() - this.started) / 1000;
  }

  /** Estimated seconds left, or undefined before the first step or when the total is unknown. */
  etaSeconds(): number | undefined {
    if (this.total === 0 || this.step === 0) return undefined;
    return (this.elapsedSeconds() / this.step) * Math.max(0, this.total - this.step);
  }

  /** One line: `label  40/100 [=====>    ]  40% 00:12<00:18  loss 2.314`. */
  text(): string {
    return [...(this.label ? [this.label] : []), ...this.status(true)].join("  ");
  }

  /** The line after the label, with or without the text bar. */
  private status(withBar: boolean): string[] {
    const parts: string[] = [];
    if (this.total > 0) {
      const fraction = Math.min(1, this.step / this.total);
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `${"=".repeat(Math.max(0, filled - 1))}${filled > 0 ? (fraction >= 1 ? "=" : ">") : ""}`.padEnd(BAR_WIDTH, " ");
      parts.push(`${this.step}/${this.total}`, ...(withBar ? [`[${bar}]`] : []), `${Math.floor(fraction * 100)}%`.padStart(4, " "));
    } else {
      parts.push(`${this.step}`);
    }
    const eta = this.etaSeconds();
    parts.push(`${clock(this.elapsedSeconds())}${eta === undefined || this.finished ? "" : `<${clock(eta)}`}`);
    const metrics = formatMetrics(this.metrics);
    if (metrics) parts.push(metrics);
    return parts;
  }

  /**
   * The bundle shown in a kernel: an HTML progress bar and the text line.
   * The label and the line are <code> elements rather than a styled div, so
   * they stay monospace where a notebook drops inline styles (the classic
   * notebook sanitises an untrusted notebook's HTML); the text bar is left out
   * of the HTML, which has the <progress> bar.
   */
  [JUPYTER_DISPLAY](): MimeBundle {
    const max = this.total > 0 ? this.total : 1;
    const value = this.total > 0 ? Math.min(this.step, this.total) : 0;
    const html =
      `<div class="xalign-progress">` +
      `${this.label ? `<code>${escapeHtml(this.label)}</code> ` : ""}<progress value="${value}" max="${max}" style="width:20em"></progress> ` +
      `<code style="white-space:pre">${escapeHtml(this.status(false).join("  "))}</code></div>`;
    return { "text/plain": this.text(), "text/html": html };
  }

  private draw(force: boolean): void {
    const t = this.now();
    if (!force && t - this.lastDraw < this.minIntervalMs) return;
    this.lastDraw = t;
    if (this.handle) this.handle.update(this);
    else this.drawTerminal(force);
  }

  private drawTerminal(final: boolean): void {
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${this.text()}${final ? "\n" : ""}`);
      return;
    }
    // Not a terminal (a log file, CI): a line per 10% and the final line, never a flood of \r.
    const percent = this.total > 0 ? Math.floor((this.step / this.total) * 10) * 10 : -1;
    if (final || percent > this.lastLinePercent) {
      this.lastLinePercent = percent;
      this.stream.write(`${this.text()}\n`);
    }
  }
}

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function formatMetrics(metrics: ProgressMetrics): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k} ${typeof v === "number" ? formatNumber(v) : v}`)
    .join("  ");
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? String(Number(v.toPrecision(4))) : v.toExponential(3);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] ?? c);
}
