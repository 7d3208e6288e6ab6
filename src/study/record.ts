/**
 * What a study notebook leaves behind: runs/<notebook>/<timestamp>/ with its
 * tables (CSV and JSON), figures (standalone HTML and a static SVG), metrics.json (what
 * `xalign verify` compares), findings.json (what `npm start` prints) and a
 * manifest (parameters, seeds, data hashes, versions, backend, device,
 * durations). In a kernel, `table` and `figure` show what they save at once
 * (a display, not the cell's result), so a table recorded mid-cell is seen.
 *
 * @example
 * const record = await RunRecord.start("03-target-vs-source", { mode, seeds }, study);
 * await record.table("qa", rows); // saved and shown
 * record.finding("Target-side translation data helps non-English QA", { gain: 3.2 });
 * await record.finish();
 */
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { inKernel } from "../notebook/channel.js";
import { display } from "../notebook/display.js";
import { Table } from "../plot/table.js";
import { gitState, sha256File, writeFileAtomic, writeJsonAtomic, xalignHome } from "../util/fs.js";
import { VERSION } from "../version.js";
import { type FindingsView, findingsView } from "./present.js";
import type { Study } from "./study.js";

export type Row = Record<string, string | number | null>;

/** A row type whose every field is a table cell: a Row, or an interface such as CompetenceRow. */
export type TableRow<R> = { [K in keyof R]: string | number | null };

/** Rows as CSV (RFC 4180 quoting), columns in first-seen order. */
export function toCsv(rows: readonly Row[]): string {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[cols.map(cell).join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n")}\n`;
}

/** A figure-like object: anything that can save itself as standalone HTML (and, optionally, draw itself as SVG). */
export interface SavableFigure {
  saveHtml(path: string): Promise<void>;
  toSvg?(): string;
}

export interface Finding {
  notebook: string;
  finding: string;
  numbers: Record<string, number | string>;
  /** The study's (the paper's) claim the finding is compared with, e.g. "+42.5% average gain". */
  claim?: string;
}

export class RunRecord {
  readonly tables: Record<string, Row[]> = {};
  readonly findings: Finding[] = [];
  readonly metrics: Record<string, number> = {};
  private readonly started = Date.now();
  private readonly durations: Record<string, number> = {};
  private readonly arms: { label: string; seed: number; tune: number; evaluation: number }[] = [];
  /** The checkout's commit when the run started (what the run's code was). */
  private readonly git = gitState();

  private constructor(
    readonly notebook: string,
    readonly dir: string,
    readonly parameters: Record<string, unknown>,
    readonly study: Study | undefined,
  ) {}

  /** Starts a record in <runsDir>/<notebook>/<timestamp>/ (runsDir default: runsRoot(), $XALIGN_RUNS, else <home>/runs). */
  static async start(
    notebook: string,
    parameters: Record<string, unknown>,
    study?: Study,
    runsDir: string = runsRoot(),
  ): Promise<RunRecord> {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const dir = join(runsDir, notebook, stamp);
    return new RunRecord(notebook, dir, parameters, study);
  }

  /** Times a named part of the notebook (recorded in the manifest). */
  async time<T>(name: string, work: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await work();
    } finally {
      this.addDuration(name, (Date.now() - t0) / 1000);
    }
  }

  /** Adds seconds measured elsewhere to a named duration of the manifest. */
  addDuration(name: string, seconds: number): void {
    this.durations[name] = (this.durations[name] ?? 0) + seconds;
  }

  /**
   * Records one arm's tuning and evaluation seconds: listed per arm in the
   * manifest (`arm_durations_s`) and summed under "arms.tuning" and
   * "arms.evaluation" in its durations.
   */
  armDurations(arm: { label: string; seed: number; tuneSeconds: number; evalSeconds: number }): void {
    this.arms.push({ label: arm.label, seed: arm.seed, tune: arm.tuneSeconds, evaluation: arm.evalSeconds });
    this.addDuration("arms.tuning", arm.tuneSeconds);
    this.addDuration("arms.evaluation", arm.evalSeconds);
  }

  /**
   * Saves a table as CSV and JSON and, in a kernel, shows it (once: the
   * kernel does not show the returned table again as the cell's result).
   */
  async table<R extends TableRow<R>>(name: string, rows: readonly R[], caption = ""): Promise<Table> {
    // Rows typed by an interface (no index signature, e.g. CompetenceRow) are accepted as they are.
    const plain = rows as unknown as Row[];
    this.tables[name] = plain;
    const table = new Table(plain, caption ? { caption } : {});
    await writeFileAtomic(join(this.dir, `${name}.csv`), toCsv(plain));
    await writeJsonAtomic(join(this.dir, `${name}.json`), plain);
    if (inKernel()) display(table);
    return table;
  }

  /**
   * Saves a figure as standalone HTML (and its static picture as SVG, for
   * reading a run folder on GitHub or in a paper) and, in a kernel, shows it
   * (once, as `table` does).
   */
  async figure<F extends SavableFigure>(name: string, figure: F): Promise<F> {
    await figure.saveHtml(join(this.dir, `${name}.html`));
    if (figure.toSvg) await writeFileAtomic(join(this.dir, `${name}.svg`), figure.toSvg());
    if (inKernel()) display(figure);
    return figure;
  }

  /** Records numbers that `xalign verify` compares on a rerun. */
  metric(name: string, value: number): void {
    this.metrics[name] = value;
  }

  /** Records several metrics at once (`{ "qa.en.contains": 12.5, ... }`). */
  metricsFrom(values: Record<string, number>): void {
    for (const [name, value] of Object.entries(values)) this.metric(name, value);
  }

  /**
   * Records a finding with its measured numbers (printed by `npm start`) and,
   * optionally, the study's claim it is compared with.
   */
  finding(finding: string, numbers: Record<string, number | string>, options: { claim?: string } = {}): Finding {
    const f: Finding = { notebook: this.notebook, finding, numbers, ...(options.claim ? { claim: options.claim } : {}) };
    this.findings.push(f);
    return f;
  }

  /**
   * The run's findings for a notebook's last cell: sentences, numbers (no
   * "NaN%"), the study's claims, and the run folder as a link.
   */
  findingsView(): FindingsView {
    return findingsView(this.findings, this.dir);
  }

  /** Writes metrics.json, findings.json and manifest.json. */
  async finish(): Promise<string> {
    const study = this.study;
    const dataHashes: Record<string, string> = {};
    if (study) {
      const manifest = join(study.worldDir, "manifest.json");
      dataHashes["world/manifest.json"] = await sha256File(manifest);
      dataHashes["base/model.safetensors"] = await sha256File(join(study.baseDir, "model.safetensors"));
    }
    await writeJsonAtomic(join(this.dir, "metrics.json"), this.metrics);
    await writeJsonAtomic(join(this.dir, "findings.json"), this.findings);
    await writeJsonAtomic(join(this.dir, "manifest.json"), {
      format: "xalign-notebook-run/1",
      notebook: this.notebook,
      parameters: this.parameters,
      settings: study?.settings,
      data_sha256: dataHashes,
      artifacts: study ? { world: study.worldDir, base: study.baseDir } : undefined,
      versions: { xalign: VERSION, tfjs: tf.version.tfjs, node: process.version },
      ...this.git,
      backend: study?.engine.backend ?? tf.getBackend() ?? null,
      device: study?.engine.device ?? null,
      durations_s: { ...this.durations, total: (Date.now() - this.started) / 1000 },
      ...(this.arms.length > 0 ? { arm_durations_s: this.arms } : {}),
      tables: Object.keys(this.tables),
      finished_at: new Date().toISOString(),
    });
    return this.dir;
  }
}

/** Where notebook runs go by default: $XALIGN_RUNS, else <home>/runs (see xalignHome). */
export function runsRoot(): string {
  return resolve(process.env.XALIGN_RUNS ?? join(xalignHome(), "runs"));
}

/**
 * Where the real-data notebook (08) looks for downloaded corpora and
 * checkpoints: $XALIGN_DATA, else <home>/data (see xalignHome), so that a
 * notebook copied outside the checkout finds them too.
 */
export function dataRoot(): string {
  return resolve(process.env.XALIGN_DATA ?? join(xalignHome(), "data"));
}

/** The newest finished run of a notebook (one with a manifest) under the runs folder `runsDir`, if any. */
export async function latestRun(notebook: string, runsDir: string): Promise<string | undefined> {
  const dir = join(runsDir, notebook);
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch {
    return undefined;
  }
  for (const name of names.reverse()) {
    try {
      await readFile(join(dir, name, "manifest.json"));
      return join(dir, name);
    } catch {
      // unfinished run
    }
  }
  return undefined;
}
