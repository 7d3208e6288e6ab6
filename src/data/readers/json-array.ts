/**
 * A streaming reader for a file holding one JSON array of objects (the
 * Stanford Alpaca / x-LLM layout), in constant memory: a small scanner finds
 * each top-level object's text, which JSON.parse then reads. Line numbers are
 * those of each object's opening brace.
 */
import { isUtf8 } from "node:buffer";
import { createReadStream } from "node:fs";
import { DataError } from "../../util/errors.js";
import { jsonErrorOffset, lineOfOffset } from "../json-position.js";
import { emptyFile, fileSize, firstInvalidByte } from "../lines.js";
import { type ReadOptions, ReadReport } from "../report.js";
import type { JsonRecord } from "./jsonl.js";

const CHUNK = 1 << 16;

/** Bytes at the end of `buf` that start a UTF-8 sequence the chunk does not finish. */
function incompleteTail(buf: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, buf.length); back++) {
    const b = buf[buf.length - back] as number;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}

/**
 * Reads the objects of a top-level JSON array one at a time.
 *
 * @example
 * for await (const { line, value } of readJsonArray("alpaca_data.json")) console.log(line, value.instruction);
 */
export async function* readJsonArray(path: string, options: ReadOptions = {}): AsyncGenerator<JsonRecord> {
  const report = options.report ?? new ReadReport();
  const size = await fileSize(path);
  if (size === 0) return emptyFile(path, options, report);
  const fail = (message: string, line: number, hint: string, code = "XA_DATA_JSON"): never => {
    throw new DataError(code, message, { file: path, line, hint });
  };
  let line = 1;
  let started = false;
  let ended = false;
  let expectValue = true; // after "[" or ",": an object may come; after an object: "," or "]"
  let depth = 0;
  let inString = false;
  let escaped = false;
  let parts: string[] = [];
  let objectStart = 0;
  let objectLine = 0;
  let objectDirty = false;
  let carry: Buffer | undefined;
  let bytesRead = 0;
  let sawContent = false;

  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) {
    bytesRead += (chunk as Buffer).length;
    options.onBytes?.(bytesRead);
    let buf = carry ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    const tail = incompleteTail(buf);
    carry = tail > 0 ? Buffer.from(buf.subarray(buf.length - tail)) : undefined;
    if (tail > 0) buf = buf.subarray(0, buf.length - tail);
    const valid = isUtf8(buf);
    if (!valid && !options.skipInvalid) {
      const at = firstInvalidByte(buf);
      let l = line;
      for (let i = 0; i < at; i++) if (buf[i] === 10) l++;
      fail("invalid UTF-8", l, "re-encode the file as UTF-8, or pass --skip-invalid to skip the objects it touches", "XA_DATA_UTF8");
    }
    const text = buf.toString("utf8");
    objectStart = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) line++;
      if (depth > 0) {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 92) escaped = true;
          else if (c === 34) inString = false;
        } else if (c === 34) inString = true;
        else if (c === 123 || c === 91) depth++;
        else if (c === 125 || c === 93) {
          depth--;
          if (depth === 0) {
            parts.push(text.slice(objectStart, i + 1));
            const record = parseObject(parts.join(""), objectLine, objectDirty || (!valid && parts.some((p) => p.includes("\uFFFD"))));
            parts = [];
            objectDirty = false;
            expectValue = false;
            if (record) yield record;
          }
        }
        continue;
      }
      if (c === 32 || c === 10 || c === 13 || c === 9 || c === 0xfeff) continue;
      sawContent = true;
      if (ended) fail("unexpected text after the closing ]", line, "the file must hold exactly one JSON array");
      if (!started) {
        if (c !== 91) fail("expected a JSON array ([ ... ]) of objects", line, "for one object per line use the jsonl reader");
        started = true;
        expectValue = true;
      } else if (c === 123 && expectValue) {
        depth = 1;
        objectStart = i;
        objectLine = line;
      } else if (c === 44 && !expectValue) expectValue = true;
      else if (c === 93) ended = true;
      else
        fail(
          `unexpected ${JSON.stringify(text[i])} between array elements`,
          line,
          expectValue ? "each element must be an object { ... }" : "separate objects with commas",
        );
    }
    if (depth > 0) {
      parts.push(text.slice(objectStart));
      if (!valid) objectDirty ||= text.slice(objectStart).includes("\uFFFD");
    }
  }
  if (carry && !options.skipInvalid)
    fail("invalid UTF-8 (an incomplete character at the end of the file)", line, "re-encode the file as UTF-8", "XA_DATA_UTF8");
  if (!sawContent) return emptyFile(path, options, report);
  if (depth > 0) fail("the file ends inside an object", objectLine, "the file looks truncated; re-export it");
  if (!ended) fail("the file ends before the closing ]", line, "the file looks truncated; re-export it");

  function parseObject(text: string, at: number, dirty: boolean): JsonRecord | undefined {
    if (dirty) {
      report.skip("invalid UTF-8", path, at);
      return undefined;
    }
    try {
      const value = JSON.parse(text) as Record<string, unknown>;
      report.records++;
      return { line: at, value };
    } catch (err) {
      if (options.skipInvalid) {
        report.skip("malformed JSON", path, at);
        return undefined;
      }
      const offset = jsonErrorOffset(text);
      const line = offset === undefined ? at : at + lineOfOffset(text, offset) - 1;
      return fail(
        `malformed JSON (in the object starting at line ${at}): ${(err as Error).message}`,
        line,
        "fix the object or pass --skip-invalid",
      );
    }
  }
}
