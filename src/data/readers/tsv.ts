/** Tab-separated parallel data: one pair per line, source and target in chosen columns. */
import { DataError } from "../../util/errors.js";
import { readLineBatches } from "../lines.js";
import { type ReadOptions, ReadReport } from "../report.js";
import type { SentencePair } from "./aligned.js";

export interface TsvOptions extends ReadOptions {
  /** 0-based column of the source sentence (default 0). */
  srcColumn?: number;
  /** 0-based column of the target sentence (default 1). */
  tgtColumn?: number;
  /** Skip the first line (default false). */
  header?: boolean;
}

/**
 * Reads sentence pairs from a TSV file. A line with too few columns raises
 * XA_DATA_FIELD naming the line (counted as "missing column" when skipping).
 *
 * @example
 * for await (const { src, tgt } of readTsvPairs("en-zh.tsv")) console.log(src, tgt);
 */
export async function* readTsvPairs(path: string, options: TsvOptions = {}): AsyncGenerator<SentencePair> {
  const { srcColumn = 0, tgtColumn = 1, header = false } = options;
  const report = options.report ?? new ReadReport();
  const need = Math.max(srcColumn, tgtColumn) + 1;
  for await (const batch of readLineBatches(path, { ...options, report })) {
    for (let i = 0; i < batch.lines.length; i++) {
      const text = batch.lines[i];
      const line = batch.firstLine + i;
      if (text === null || text === undefined || (header && line === 1)) continue;
      const cols = text.split("\t");
      if (cols.length < need) {
        if (text === "" && options.skipInvalid) continue;
        if (options.skipInvalid) {
          report.skip("missing column", path, line);
          continue;
        }
        throw new DataError("XA_DATA_FIELD", `expected at least ${need} tab-separated columns, found ${cols.length}`, {
          file: path,
          line,
          hint: "check for a missing tab or an unescaped newline in a sentence, or pass --skip-invalid",
        });
      }
      report.records++;
      yield { src: cols[srcColumn] as string, tgt: cols[tgtColumn] as string, line };
    }
  }
}
