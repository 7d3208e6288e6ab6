/**
 * From generic records (JSONL lines, JSON array elements, Parquet rows) to
 * sentence pairs or Alpaca records, with a missing or non-string field raising
 * XA_DATA_FIELD at the record's line (counted as "missing field" when skipping).
 */
import { DataError } from "../../util/errors.js";
import type { AlpacaRecord } from "../example.js";
import { type ReadOptions, ReadReport } from "../report.js";
import type { SentencePair } from "./aligned.js";
import type { JsonRecord } from "./jsonl.js";

/** A value at a dotted path ("translation.en"); undefined when absent. */
export function getField(value: unknown, path: string): unknown {
  let v: unknown = value;
  for (const key of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

export interface FieldOptions extends ReadOptions {
  /** The file the records came from, for messages. */
  file: string;
  /** Word used for the position in messages ("line" for JSON text, "row" for Parquet). */
  unit?: "line" | "row";
}

function fieldError(file: string, line: number, field: string, problem: string, unit: "line" | "row"): DataError {
  return new DataError("XA_DATA_FIELD", `${unit === "row" ? `row ${line}: ` : ""}${problem}`, {
    file,
    ...(unit === "line" ? { line } : {}),
    field,
    hint: "every record needs this field as a string (map other names with the source's `fields`), or pass --skip-invalid",
  });
}

/**
 * Picks string fields from each record; records missing one are an error (or skipped and counted).
 * `optional` fields default to "".
 */
export async function* pickFields<K extends string>(
  records: AsyncIterable<JsonRecord>,
  fields: Record<K, string>,
  options: FieldOptions & { optional?: readonly string[] },
): AsyncGenerator<Record<K, string> & { line: number }> {
  const report = options.report ?? new ReadReport();
  const unit = options.unit ?? "line";
  const entries = Object.entries(fields) as [K, string][];
  outer: for await (const { line, value } of records) {
    const out: Record<string, string | number> = { line };
    for (const [key, path] of entries) {
      const v = getField(value, path);
      if (typeof v === "string") {
        out[key] = v;
        continue;
      }
      if (v === undefined && options.optional?.includes(key)) {
        out[key] = "";
        continue;
      }
      const problem =
        v === undefined ? `missing field "${path}"` : `field "${path}" is ${v === null ? "null" : typeof v}, expected a string`;
      if (options.skipInvalid) {
        report.skip("missing field", options.file, line);
        continue outer;
      }
      throw fieldError(options.file, line, path, problem, unit);
    }
    yield out as Record<K, string> & { line: number };
  }
}

/** Field names of the Alpaca layout in a record (defaults: the same names). */
export interface AlpacaFields {
  instruction?: string;
  input?: string;
  output?: string;
}

/**
 * Alpaca records from generic records; `input` may be absent (then "").
 *
 * @example
 * for await (const r of toAlpacaRecords(readJsonArray("alpaca_data.json"), { file: "alpaca_data.json" })) console.log(r.output);
 */
export async function* toAlpacaRecords(
  records: AsyncIterable<JsonRecord>,
  options: FieldOptions & { fields?: AlpacaFields },
): AsyncGenerator<AlpacaRecord & { line: number }> {
  const f = options.fields ?? {};
  yield* pickFields<keyof AlpacaRecord>(
    records,
    { instruction: f.instruction ?? "instruction", input: f.input ?? "input", output: f.output ?? "output" },
    { ...options, optional: ["input"] },
  );
}

/**
 * Sentence pairs from generic records, e.g. `{ src: "translation.en", tgt: "translation.zh" }`
 * for Hugging Face translation datasets.
 */
export async function* toSentencePairs(
  records: AsyncIterable<JsonRecord>,
  fields: { src: string; tgt: string },
  options: FieldOptions,
): AsyncGenerator<SentencePair> {
  yield* pickFields(records, fields, options);
}
