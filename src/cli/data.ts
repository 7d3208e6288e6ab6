/** `xalign data`: build a mixture from a YAML spec, or print statistics of an example file. */
import { readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import {
  type BuildProgress,
  buildMixture,
  computeStats,
  DEFAULT_MAX_INVALID,
  type InstructionExample,
  loadMixtureSpec,
  ReadReport,
  readExamples,
  writeMixture,
} from "../data/index.js";
import type { Manifest } from "../data/manifest.js";
import { ConfigError } from "../util/errors.js";
import { parseCommand } from "./args.js";

const HELP = `Usage:
  xalign data build <mixture.yaml> [--out DIR] [--force] [--skip-invalid] [--max-invalid 0.5]
  xalign data stats <file.json|file.jsonl> [--format alpaca|chat] [--json] [--skip-invalid]

build  reads, cleans and builds every source of the mixture, samples it with
       the spec's seed and writes train/validation/scales as x-LLM JSON and
       JSONL plus manifest.json to DIR (default runs/<mixture name>/data).
       Bad input stops the build with the file and line; --skip-invalid skips
       and counts bad records instead (the counts are in the summary and manifest),
       but still fails when more than --max-invalid (default 0.5) of a
       source's records are invalid: that file is probably the wrong one.
       Every input file is listed with its resolved path in the build log
       and in the manifest (inputs[].resolved).
       DIR must be empty or new; --force replaces an earlier build there (a
       folder holding xalign's manifest.json): the new build is written to a
       temporary folder beside it and swapped in only when complete.
stats  examples, tokens (approximate: words, CJK/Thai characters) and length
       percentiles per language and source.`;

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

/** A one-line progress bar redrawn in place on a TTY, at most every 100 ms. */
function progressBar(stream: NodeJS.WriteStream): { update(p: BuildProgress): void; done(): void } {
  if (!stream.isTTY) return { update() {}, done() {} };
  let last = 0;
  let drawn = false;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 100 && p.bytesRead < p.bytesTotal) return;
      last = now;
      const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesRead / p.bytesTotal) : 1;
      const width = 30;
      const filled = Math.round(frac * width);
      const bar = `${"=".repeat(filled)}${filled < width ? ">" : ""}${" ".repeat(Math.max(0, width - filled - 1))}`;
      stream.write(
        `\r[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.source} (${p.index + 1}/${p.sources}) ${formatBytes(p.bytesRead)}/${formatBytes(p.bytesTotal)}\x1b[K`,
      );
      drawn = true;
    },
    done() {
      if (drawn) stream.write("\r\x1b[K");
    },
  };
}

function table(header: string[], rows: (string | number)[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: (string | number)[]) =>
    cells
      .map((c, i) => (typeof c === "number" ? String(c).padStart(widths[i] as number) : String(c).padEnd(widths[i] as number)))
      .join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** The end-of-build summary: per source what was read, skipped, filtered and taken. */
export function buildSummary(manifest: Manifest, outDir: string): string {
  const rows = manifest.sources.map((s) => {
    const skipped = Object.values(s.read.skipped).reduce((a, b) => a + b, 0);
    const filtered = s.clean ? s.clean.input - s.clean.kept : 0;
    return [s.name, s.lang, s.read.records, skipped, filtered, s.available, s.selected, s.train, s.validation];
  });
  const lines = [
    `mixture ${manifest.mixture} (seed ${manifest.seed})`,
    table(["source", "lang", "read", "skipped", "filtered", "built", "selected", "train", "valid"], rows),
  ];
  for (const s of manifest.sources) {
    if (s.clean && s.clean.input > s.clean.kept) {
      const removed = Object.entries(s.clean.removed)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
      lines.push(`  ${s.name} filters: ${removed}`);
    }
    lines.push(`  ${s.name} read ${s.inputs.map((i) => i.resolved).join(", ")}`);
    const skips = Object.entries(s.read.skipped);
    if (skips.length > 0) lines.push(`  ${s.name} skipped: ${skips.map(([k, n]) => `${k} ${n}`).join(", ")}`);
  }
  lines.push(
    `train ${manifest.counts.train.total}, validation ${manifest.counts.validation.total}${Object.keys(manifest.counts.scales).length ? `, scales ${Object.keys(manifest.counts.scales).join(", ")}` : ""}`,
  );
  lines.push(`wrote ${manifest.outputs.length} files and manifest.json to ${outDir}`);
  return lines.join("\n");
}

async function build(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("data build", argv, {
    out: { type: "string" },
    "skip-invalid": { type: "boolean" },
    force: { type: "boolean" },
    "max-invalid": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const maxInvalid = values["max-invalid"] === undefined ? DEFAULT_MAX_INVALID : Number(values["max-invalid"]);
  if (!(maxInvalid >= 0 && maxInvalid <= 1))
    throw new ConfigError("XA_CLI_ARGS", `--max-invalid must be a share between 0 and 1, got "${values["max-invalid"]}"`, {
      field: "--max-invalid",
    });
  if (positionals.length !== 1)
    throw new ConfigError("XA_CLI_ARGS", "expected one mixture file", { hint: "xalign data build <mixture.yaml> [--out DIR]" });
  const spec = await loadMixtureSpec(positionals[0] as string);
  const outDir = resolve((values.out as string | undefined) ?? `runs/${spec.name}/data`);
  await checkOutDir(outDir, values.force === true);
  const bar = progressBar(process.stderr);
  let mixture: Awaited<ReturnType<typeof buildMixture>>;
  try {
    mixture = await buildMixture(spec, { skipInvalid: values["skip-invalid"] === true, maxInvalid, onProgress: (p) => bar.update(p) });
  } finally {
    bar.done();
  }
  const manifest = await writeMixtureSwapped(mixture, outDir);
  console.log(buildSummary(manifest, outDir));
  return 0;
}

/** Whether `dir` holds a data build (manifest.json written by `xalign data build`). */
function isDataBuild(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { xalign?: unknown; mixture?: unknown; outputs?: unknown };
    return typeof m.xalign === "string" && Array.isArray(m.outputs);
  } catch {
    return false;
  }
}

/** --out must be new or empty; with --force it may also hold an earlier build, which is replaced. */
async function checkOutDir(outDir: string, force: boolean): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return;
    if (code === "ENOTDIR")
      throw new ConfigError("XA_DATA_OUT", `--out ${outDir} is a file, not a folder`, { field: "--out", hint: "choose a folder path" });
    throw err;
  }
  if (entries.length === 0) return;
  if (!force)
    throw new ConfigError("XA_DATA_OUT_NOT_EMPTY", `--out ${outDir} is not empty (${entries.length} entries)`, {
      field: "--out",
      hint: "choose a new folder, or pass --force to replace an earlier build there (old files would otherwise mix with the new build)",
    });
  if (!isDataBuild(outDir))
    throw new ConfigError(
      "XA_DATA_OUT_NOT_OURS",
      `--force refuses to replace ${outDir}: it holds no manifest.json of an earlier data build`,
      {
        field: "--out",
        hint: "choose a new folder, or empty this one yourself",
      },
    );
}

/**
 * Writes the build into a temp folder beside `outDir`, then swaps it in
 * (old folder renamed aside, new one renamed into place, old removed), so
 * readers see either the old build or the new one, never a mix.
 */
async function writeMixtureSwapped(mixture: Awaited<ReturnType<typeof buildMixture>>, outDir: string): Promise<Manifest> {
  const tmp = `${outDir}.tmp-${process.pid}`;
  const old = `${outDir}.old-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(dirname(outDir), { recursive: true });
  let manifest: Manifest;
  try {
    manifest = await writeMixture(mixture, tmp);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  let hadOld = false;
  try {
    await rename(outDir, old);
    hadOld = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  await rename(tmp, outDir);
  if (hadOld) await rm(old, { recursive: true, force: true });
  return manifest;
}

async function stats(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("data stats", argv, {
    format: { type: "string" },
    json: { type: "boolean" },
    "skip-invalid": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (positionals.length !== 1)
    throw new ConfigError("XA_CLI_ARGS", "expected one example file", { hint: "xalign data stats <file.json|file.jsonl>" });
  const format = (values.format as string | undefined) ?? "alpaca";
  if (format !== "alpaca" && format !== "chat")
    throw new ConfigError("XA_CLI_ARGS", `--format must be alpaca or chat, got ${format}`, { field: "--format" });
  const report = new ReadReport();
  const examples: InstructionExample[] = [];
  for await (const e of readExamples(positionals[0] as string, { skipInvalid: values["skip-invalid"] === true, report })) examples.push(e);
  const result = computeStats(examples, { format });
  if (values.json) console.log(JSON.stringify({ ...result.toJSON(), read: report.toJSON() }, null, 2));
  else {
    console.log(result.toMarkdown());
    if (report.skippedTotal > 0) console.log(`skipped: ${JSON.stringify(report.toJSON().skipped)}`);
  }
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === "build") return build(rest);
  if (sub === "stats") return stats(rest);
  console[sub === undefined || sub === "--help" || sub === "-h" ? "log" : "error"](HELP);
  return sub === "--help" || sub === "-h" ? 0 : 2;
}
