/**
 * Writing a built mixture: Alpaca JSON + JSONL for train, validation and each
 * scale, and manifest.json beside them (sources, counts per filter and per
 * source, input and output sha256, seed, xalign version). Everything is built
 * before anything is written, and each file is written atomically, so bad
 * input never leaves half-written output. No timestamps: the same spec and
 * seed give byte-identical files.
 */
import { stat } from "node:fs/promises";
import { basename, join, relative, sep } from "node:path";
import { sha256, sha256File, writeJsonAtomic } from "../util/fs.js";
import { VERSION } from "../version.js";
import type { InstructionExample } from "./example.js";
import { writeAlpacaJson, writeJsonl } from "./export.js";
import type { MixtureResult, SourceSummary } from "./mixture.js";

export interface SplitCounts {
  total: number;
  byLang: Record<string, number>;
  bySource: Record<string, number>;
}

export interface Manifest {
  xalign: string;
  mixture: string;
  spec: { file: string; sha256: string };
  seed: number;
  format: string;
  shuffle: boolean;
  /** Each input by its path relative to the spec's folder and, in `resolved`, the absolute path read. */
  sources: (Omit<SourceSummary, "inputs"> & { inputs: { path: string; resolved: string; bytes: number; sha256: string }[] })[];
  temperature?: MixtureResult["temperature"];
  counts: { train: SplitCounts; validation: SplitCounts; scales: Record<string, SplitCounts> };
  outputs: { path: string; examples: number; bytes: number; sha256: string }[];
}

function sortedCounts(items: readonly InstructionExample[], key: (e: InstructionExample) => string): Record<string, number> {
  const m = new Map<string, number>();
  for (const e of items) m.set(key(e), (m.get(key(e)) ?? 0) + 1);
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Examples per language and per source. */
export function splitCounts(items: readonly InstructionExample[]): SplitCounts {
  return { total: items.length, byLang: sortedCounts(items, (e) => e.lang), bySource: sortedCounts(items, (e) => e.source) };
}

const posix = (p: string) => p.split(sep).join("/");

/**
 * Writes a mixture to `outDir` and returns its manifest:
 * train.json/.jsonl, validation.json/.jsonl (when there is a split),
 * scales/<size>/train.json/.jsonl, manifest.json.
 *
 * @example
 * const manifest = await writeMixture(await buildMixture(spec), "runs/coit-zh/data");
 */
export async function writeMixture(result: MixtureResult, outDir: string): Promise<Manifest> {
  const { spec } = result;
  const outputs: Manifest["outputs"] = [];
  const emit = async (name: string, items: InstructionExample[]) => {
    for (const [file, write] of [
      [`${name}.json`, writeAlpacaJson],
      [`${name}.jsonl`, writeJsonl],
    ] as const) {
      const text = await write(join(outDir, file), items);
      outputs.push({ path: file, examples: items.length, bytes: Buffer.byteLength(text), sha256: sha256(text) });
    }
  };
  await emit("train", result.train);
  if (result.validation.length > 0) await emit("validation", result.validation);
  for (const s of result.scales) await emit(`scales/${s.size}/train`, s.train);
  const sources: Manifest["sources"] = [];
  for (const s of result.sources) {
    const inputs = [];
    for (const path of s.inputs)
      inputs.push({
        path: posix(relative(spec.baseDir, path)),
        resolved: path,
        bytes: (await stat(path)).size,
        sha256: await sha256File(path),
      });
    sources.push({ ...s, inputs });
  }
  const manifest: Manifest = {
    xalign: VERSION,
    mixture: spec.name,
    spec: { file: basename(spec.file), sha256: sha256(spec.text) },
    seed: spec.seed,
    format: spec.format,
    shuffle: spec.shuffle,
    sources,
    ...(result.temperature ? { temperature: result.temperature } : {}),
    counts: {
      train: splitCounts(result.train),
      validation: splitCounts(result.validation),
      scales: Object.fromEntries(result.scales.map((s) => [String(s.size), splitCounts(s.train)])),
    },
    outputs,
  };
  await writeJsonAtomic(join(outDir, "manifest.json"), manifest);
  return manifest;
}
