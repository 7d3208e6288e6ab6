/**
 * Reads an experiment YAML file, applies presets and validates it. Every
 * problem is a ConfigError naming the file, line and field.
 *
 * @example
 * const exp = await loadExperiment("examples/tiny.yaml");
 * exp.config.stages[0].train.lr;
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { isMap, isSeq, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, DataError } from "../util/errors.js";
import { sha256File } from "../util/fs.js";
import { yamlErrorPosition } from "../util/yaml.js";
import { TRAIN_PRESETS, type TrainPresetName } from "./presets.js";
import { type ExperimentConfig, ExperimentSchema } from "./schema.js";

export interface LoadedExperiment {
  config: ExperimentConfig;
  /** The file it came from (absolute), and the folder relative paths resolve against. */
  file: string;
  baseDir: string;
}

/** Parses and validates an experiment from YAML text. */
export function parseExperiment(text: string, file = "<experiment>"): ExperimentConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new ConfigError("XA_CONFIG_YAML", `invalid YAML: ${e.message.split("\n")[0]}`, { file, ...yamlErrorPosition(e, lineCounter) });
  }
  const raw = doc.toJS() as unknown;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError("XA_CONFIG_SHAPE", "an experiment file must be a YAML mapping (name:, tokenizer:, model:, stages:)", { file });
  }
  const withPresets = applyTrainPresets(raw as Record<string, unknown>, file);
  const result = ExperimentSchema.safeParse(withPresets);
  if (!result.success) throw issueToError(result.error.issues[0]!, file, doc, lineCounter);
  return result.data;
}

/** Reads, parses and validates an experiment file. */
export async function loadExperiment(path: string): Promise<LoadedExperiment> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError("XA_CONFIG_MISSING", `cannot read the experiment file: ${(err as Error).message}`, { file: path });
  }
  return { config: parseExperiment(text, path), file, baseDir: dirname(file) };
}

/** SHA-256 of every data and validation file the experiment's stages read, by the path as written. */
export async function experimentDataHashes(exp: LoadedExperiment): Promise<Record<string, string>> {
  const files = [...new Set(exp.config.stages.flatMap((s) => [...s.data, ...(s.validation ?? [])]))];
  const hashes: Record<string, string> = {};
  for (const f of files) {
    const path = resolveFrom(exp, f);
    try {
      hashes[f] = await sha256File(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "EISDIR" && code !== "ENOTDIR") throw err;
      const i = exp.config.stages.findIndex((s) => s.data.includes(f) || (s.validation ?? []).includes(f));
      const stage = exp.config.stages[i];
      throw new DataError("XA_DATA_MISSING", `data file ${path} ${code === "EISDIR" ? "is a folder" : "does not exist"}`, {
        file: exp.file,
        field: `stages[${i}].${stage?.data.includes(f) ? "data" : "validation"}`,
        hint: `the run's manifest records the sha256 of every data file, even of stages already trained (their final/ exists): restore ${f} or fix the path in the experiment file`,
        cause: err,
      });
    }
  }
  return hashes;
}

/** Resolves a path from the experiment file against its folder. */
export function resolveFrom(exp: LoadedExperiment, path: string): string {
  return isAbsolute(path) ? path : resolve(exp.baseDir, path);
}

/** `preset: paper` inside a stage's train block expands to the preset's keys; the user's keys win. */
function applyTrainPresets(raw: Record<string, unknown>, file: string): Record<string, unknown> {
  const stages = raw.stages;
  if (!Array.isArray(stages)) return raw;
  return {
    ...raw,
    stages: stages.map((stage: unknown, i) => {
      if (stage === null || typeof stage !== "object") return stage;
      const train = (stage as Record<string, unknown>).train;
      if (train === null || typeof train !== "object" || !("preset" in train)) return stage;
      const { preset, ...rest } = train as Record<string, unknown>;
      const known = TRAIN_PRESETS[preset as TrainPresetName];
      if (!known) {
        throw new ConfigError("XA_CONFIG_PRESET", `unknown train preset "${String(preset)}"`, {
          file,
          field: `stages[${i}].train.preset`,
          hint: `use one of ${Object.keys(TRAIN_PRESETS).join(", ")}`,
        });
      }
      const { gpus: _gpus, bf16: _bf16, ...settings } = known;
      return { ...(stage as object), train: { ...settings, ...rest } };
    }),
  };
}

function issueToError(issue: z.core.$ZodIssue, file: string, doc: ReturnType<typeof parseDocument>, lines: LineCounter): ConfigError {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p));
  const field = path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : String(p)), "");
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    const keys = (issue as { keys: string[] }).keys;
    message = `unknown key${keys.length > 1 ? "s" : ""} ${keys.map((k) => `"${k}"`).join(", ")}`;
    path.push(keys[0]!);
  }
  return new ConfigError("XA_CONFIG_INVALID", message, {
    file,
    ...lineOf(doc, lines, path),
    field: field || "(top level)",
    hint: "see the experiment schema in src/config/schema.ts or examples/",
  });
}

function lineOf(doc: ReturnType<typeof parseDocument>, lines: LineCounter, path: (string | number)[]): { line?: number } {
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    const parent = n > 0 ? doc.getIn(path.slice(0, n - 1), true) : doc.contents;
    let offset = node?.range?.[0];
    if (isMap(parent)) {
      const pair = parent.items.find((it) => (it.key as { value?: unknown })?.value === path[n - 1]);
      const keyRange = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (keyRange) offset = keyRange[0];
    } else if (isSeq(parent) && offset === undefined) continue;
    if (offset !== undefined) return { line: lines.linePos(offset).line };
  }
  return {};
}
