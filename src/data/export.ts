/**
 * Writing examples for other trainers: the x-LLM / Stanford Alpaca JSON
 * layout (an array of objects with exactly instruction, input, output) and
 * JSONL of full {@link InstructionExample}s; and reading either back.
 */
import { basename, extname } from "node:path";
import { DataError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { type ExampleMeta, type InstructionExample, toAlpacaRecord } from "./example.js";
import { readJsonArray } from "./readers/json-array.js";
import { readJsonl } from "./readers/jsonl.js";
import { type ReadOptions, ReadReport } from "./report.js";

/**
 * Alpaca JSON text: one object per line inside the array, keys in the order
 * instruction, input, output, and nothing else (earlier dialogue turns are
 * folded into input).
 *
 * @example
 * await writeFile("train.json", toAlpacaJson(mix.train));
 */
export function toAlpacaJson(examples: readonly InstructionExample[]): string {
  if (examples.length === 0) return "[]\n";
  return `[\n${examples.map((e) => `  ${JSON.stringify(toAlpacaRecord(e))}`).join(",\n")}\n]\n`;
}

/**
 * JSONL with every field of each example (id, lang, source, task, meta too).
 *
 * @example
 * await writeFile("train.jsonl", toJsonl(mix.train));
 */
export function toJsonl(examples: readonly InstructionExample[]): string {
  let out = "";
  for (const e of examples) out += `${JSON.stringify(e)}\n`;
  return out;
}

/** Writes Alpaca JSON atomically. */
export async function writeAlpacaJson(path: string, examples: readonly InstructionExample[]): Promise<string> {
  const text = toAlpacaJson(examples);
  await writeFileAtomic(path, text);
  return text;
}

/** Writes JSONL atomically. */
export async function writeJsonl(path: string, examples: readonly InstructionExample[]): Promise<string> {
  const text = toJsonl(examples);
  await writeFileAtomic(path, text);
  return text;
}

/**
 * Reads examples back from Alpaca JSON (`.json`: lang/source/task become
 * "und", the file name, "general") or JSONL (`.jsonl`: full examples, or bare
 * Alpaca records treated the same way).
 *
 * @example
 * for await (const ex of readExamples("runs/coit-zh/data/train.jsonl")) console.log(ex.lang);
 */
export async function* readExamples(path: string, options: ReadOptions = {}): AsyncGenerator<InstructionExample> {
  const report = options.report ?? new ReadReport();
  const raw = extname(path) === ".jsonl" ? readJsonl(path, { ...options, report }) : readJsonArray(path, { ...options, report });
  const name = basename(path);
  let n = 0;
  for await (const { line, value: v } of raw) {
    const missing =
      ["instruction", "output"].find((k) => typeof v[k] !== "string") ??
      (v.input !== undefined && typeof v.input !== "string" ? "input" : undefined);
    if (missing !== undefined) {
      if (options.skipInvalid) {
        report.skip("missing field", path, line);
        continue;
      }
      throw new DataError("XA_DATA_FIELD", `missing string field "${missing}"`, {
        file: path,
        line,
        field: missing,
        hint: "examples need instruction and output strings (input optional)",
      });
    }
    const str = (k: string, fallback: string) => (typeof v[k] === "string" ? (v[k] as string) : fallback);
    const example: InstructionExample = {
      id: str("id", `${name}:${n}`),
      instruction: v.instruction as string,
      input: str("input", ""),
      output: v.output as string,
      lang: str("lang", "und"),
      source: str("source", name),
      task: str("task", "general"),
    };
    if (v.meta !== null && typeof v.meta === "object") example.meta = v.meta as ExampleMeta;
    n++;
    yield example;
  }
}
