/**
 * Streaming line reading with UTF-8 validation and 1-based line numbers, in
 * constant memory. Lines come in batches (one per 64 KiB chunk) because a
 * generator step per line would cost more than the work done on a short
 * sentence pair. The chunk is small on purpose: a batch's strings then die
 * young (in V8's new space); with 1 MiB chunks they outlived scavenges and
 * garbage collection took a third of the time (bench/data.ts).
 */
import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { DataError } from "../util/errors.js";
import { type ReadOptions, ReadReport } from "./report.js";

export interface LineBatch {
  /** Line number of lines[0]. */
  firstLine: number;
  /** Text without the newline (and without a trailing \r); null where the line was invalid UTF-8 and skipped. */
  lines: (string | null)[];
}

const CHUNK = 1 << 16;

/** Throws XA_DATA_NOT_FOUND when `path` is missing or a directory; returns its size. */
export async function fileSize(path: string): Promise<number> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw new DataError("XA_DATA_NOT_FOUND", "is a directory, expected a file", { file: path });
    return s.size;
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError("XA_DATA_NOT_FOUND", "cannot open the file", {
      file: path,
      hint: "check the path (relative paths in a mixture are relative to the YAML file)",
      cause: err,
    });
  }
}

/** The empty-file error, or a count when skipping. */
export function emptyFile(path: string, options: ReadOptions, report: ReadReport): void {
  if (options.skipInvalid) {
    report.skip("empty file", path, undefined);
    return;
  }
  throw new DataError("XA_DATA_EMPTY", "the file is empty", {
    file: path,
    hint: "check that the export finished, or pass --skip-invalid to ignore it",
  });
}

/**
 * Reads a text file as batches of lines. Invalid UTF-8 raises XA_DATA_UTF8
 * naming the line, or with `skipInvalid` yields null for that line and counts it.
 * An empty file raises XA_DATA_EMPTY (counted when skipping).
 *
 * @example
 * for await (const { firstLine, lines } of readLineBatches("train.en")) console.log(firstLine, lines.length);
 */
export async function* readLineBatches(path: string, options: ReadOptions = {}): AsyncGenerator<LineBatch> {
  const report = options.report ?? new ReadReport();
  const size = await fileSize(path);
  if (size === 0) return emptyFile(path, options, report);
  let nextLine = 1;
  let bytesRead = 0;
  const decodeBody = (body: Buffer, hasFinalNewline: boolean): LineBatch => {
    const firstLine = nextLine;
    let lines: (string | null)[];
    if (isUtf8(body)) {
      lines = body.toString("utf8").split("\n");
      if (hasFinalNewline) lines.pop();
    } else {
      lines = splitCheckingEachLine(body, hasFinalNewline, path, firstLine, options, report);
    }
    if (firstLine === 1 && lines[0]?.charCodeAt(0) === 0xfeff) lines[0] = (lines[0] as string).slice(1);
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i];
      if (l && l.charCodeAt(l.length - 1) === 13) lines[i] = l.slice(0, -1);
    }
    nextLine += lines.length;
    return { firstLine, lines };
  };
  // pieces of a line longer than a chunk wait here, joined once its end arrives (no quadratic copying)
  let pending: Buffer[] = [];
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) {
    const buf = chunk as Buffer;
    bytesRead += buf.length;
    options.onBytes?.(bytesRead);
    const lastNewline = buf.lastIndexOf(10);
    if (lastNewline < 0) {
      pending.push(buf);
      continue;
    }
    const head = buf.subarray(0, lastNewline + 1);
    const body = pending.length > 0 ? Buffer.concat([...pending, head]) : head;
    pending = lastNewline + 1 < buf.length ? [Buffer.from(buf.subarray(lastNewline + 1))] : [];
    yield decodeBody(body, true);
  }
  const carry = pending.length > 0 ? Buffer.concat(pending) : undefined;
  if (carry && carry.length > 0) yield decodeBody(carry, false);
}

function splitCheckingEachLine(
  body: Buffer,
  hasFinalNewline: boolean,
  path: string,
  firstLine: number,
  options: ReadOptions,
  report: ReadReport,
): (string | null)[] {
  const out: (string | null)[] = [];
  let start = 0;
  for (;;) {
    const nl = body.indexOf(10, start);
    const end = nl < 0 ? body.length : nl;
    if (nl < 0 && hasFinalNewline) break;
    const line = body.subarray(start, end);
    if (isUtf8(line)) out.push(line.toString("utf8"));
    else {
      const lineNo = firstLine + out.length;
      if (!options.skipInvalid) {
        throw new DataError("XA_DATA_UTF8", `invalid UTF-8 at byte ${firstInvalidByte(line) + 1} of the line`, {
          file: path,
          line: lineNo,
          hint: "re-encode the file as UTF-8 (e.g. iconv -f <encoding> -t UTF-8), or pass --skip-invalid to skip such lines",
        });
      }
      report.skip("invalid UTF-8", path, lineNo);
      out.push(null);
    }
    if (nl < 0) break;
    start = nl + 1;
    if (start === body.length && hasFinalNewline) break;
  }
  return out;
}

/** Offset of the first byte that breaks UTF-8 (a slow path, only for error messages). */
export function firstInvalidByte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const c = bytes[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    // isUtf8 on the one sequence also rejects overlongs and surrogates
    if (n === 0 || i + n >= bytes.length || !isUtf8(bytes.subarray(i, i + n + 1))) return i;
    i += n + 1;
  }
  return bytes.length;
}

/**
 * Reads a text file line by line (a convenience over {@link readLineBatches}).
 *
 * @example
 * for await (const { line, text } of readLines("notes.txt")) console.log(line, text);
 */
export async function* readLines(path: string, options: ReadOptions = {}): AsyncGenerator<{ line: number; text: string }> {
  for await (const batch of readLineBatches(path, options)) {
    for (let i = 0; i < batch.lines.length; i++) {
      const text = batch.lines[i];
      if (text !== null && text !== undefined) yield { line: batch.firstLine + i, text };
    }
  }
}
