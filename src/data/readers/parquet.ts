/**
 * Parquet (the file format of Hugging Face datasets) through hyparquet, a
 * maintained pure-JS reader: no native build, and it reads one row group at a
 * time, so memory stays bounded by the largest row group, not the file.
 */
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import { DataError } from "../../util/errors.js";
import { emptyFile, fileSize } from "../lines.js";
import { type ReadOptions, ReadReport } from "../report.js";
import type { JsonRecord } from "./jsonl.js";

export interface ParquetOptions extends ReadOptions {
  /** Columns to read (default: all). */
  columns?: string[];
}

/**
 * Reads a Parquet file row group by row group; `line` is the 1-based row number.
 *
 * @example
 * for await (const { line, value } of readParquet("train-00000-of-00001.parquet")) console.log(line, value.translation);
 */
export async function* readParquet(path: string, options: ParquetOptions = {}): AsyncGenerator<JsonRecord> {
  const report = options.report ?? new ReadReport();
  const size = await fileSize(path);
  if (size === 0) return emptyFile(path, options, report);
  const file = await asyncBufferFromFile(path);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new DataError("XA_DATA_PARQUET", `not a readable Parquet file: ${(err as Error).message}`, {
      file: path,
      hint: "check that the download finished (Parquet files end with the magic bytes PAR1)",
      cause: err,
    });
  }
  const total = Number(metadata.num_rows);
  if (total === 0) return emptyFile(path, options, report);
  if (options.columns) {
    const names = new Set(metadata.schema.map((s) => s.name));
    for (const c of options.columns) {
      if (!names.has(c)) {
        throw new DataError("XA_DATA_FIELD", `no column "${c}"`, {
          file: path,
          field: c,
          hint: `columns are: ${[...names].slice(1).join(", ")}`,
        });
      }
    }
  }
  let rowStart = 0;
  let bytesRead = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = (await parquetReadObjects({
      file,
      metadata,
      rowStart,
      rowEnd,
      ...(options.columns ? { columns: options.columns } : {}),
    })) as Record<string, unknown>[];
    bytesRead += Number(group.total_byte_size);
    options.onBytes?.(Math.min(size, bytesRead));
    for (let i = 0; i < rows.length; i++) {
      report.records++;
      yield { line: rowStart + i + 1, value: rows[i] as Record<string, unknown> };
    }
    rowStart = rowEnd;
  }
}
