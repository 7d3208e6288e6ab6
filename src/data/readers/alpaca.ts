/** The Stanford Alpaca / x-LLM data file: one JSON array of {instruction, input, output}. */
import type { AlpacaRecord } from "../example.js";
import type { ReadOptions } from "../report.js";
import { type AlpacaFields, toAlpacaRecords } from "./fields.js";
import { readJsonArray } from "./json-array.js";

/**
 * Streams the records of an Alpaca JSON file; `input` may be absent (then "").
 *
 * @example
 * for await (const r of readAlpacaJson("alpaca_data.json")) console.log(r.line, r.instruction);
 */
export async function* readAlpacaJson(
  path: string,
  options: ReadOptions & { fields?: AlpacaFields } = {},
): AsyncGenerator<AlpacaRecord & { line: number }> {
  yield* toAlpacaRecords(readJsonArray(path, options), { ...options, file: path });
}
