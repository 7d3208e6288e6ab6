/** JSON Lines: one JSON object per line. */
import { DataError } from "../../util/errors.js";
import { readLineBatches } from "../lines.js";
import { type ReadOptions, ReadReport } from "../report.js";

/** A parsed object and where it was (line for text formats, 1-based row for Parquet). */
export interface JsonRecord {
  line: number;
  value: Record<string, unknown>;
}

/**
 * Reads a JSONL file. Malformed JSON or a non-object raises XA_DATA_JSON at
 * that line (counted as "malformed JSON" when skipping); blank lines are ignored.
 *
 * @example
 * for await (const { line, value } of readJsonl("data.jsonl")) console.log(line, value.instruction);
 */
export async function* readJsonl(path: string, options: ReadOptions = {}): AsyncGenerator<JsonRecord> {
  const report = options.report ?? new ReadReport();
  for await (const batch of readLineBatches(path, { ...options, report })) {
    for (let i = 0; i < batch.lines.length; i++) {
      const text = batch.lines[i];
      if (text === null || text === undefined || text.trim() === "") continue;
      const line = batch.firstLine + i;
      let value: unknown;
      let problem: string | undefined;
      try {
        value = JSON.parse(text);
        if (value === null || typeof value !== "object" || Array.isArray(value)) problem = "expected a JSON object";
      } catch (err) {
        problem = `malformed JSON: ${(err as Error).message}`;
      }
      if (problem !== undefined) {
        if (options.skipInvalid) {
          report.skip("malformed JSON", path, line);
          continue;
        }
        throw new DataError("XA_DATA_JSON", problem, {
          file: path,
          line,
          hint: "each line must be one JSON object; fix the line or pass --skip-invalid",
        });
      }
      report.records++;
      yield { line, value: value as Record<string, unknown> };
    }
  }
}
