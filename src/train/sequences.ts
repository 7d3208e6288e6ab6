/**
 * From files to training sequences. The tokenizer's encoder is asynchronous
 * (native, batched), while the data toolkit's `encodeExample` is the one
 * synchronous definition of an instruction sequence; this module bridges
 * them by encoding every distinct text once, in batches, then running
 * `encodeExample` against the results.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { type EncodedExample, encodeExample, type PromptTokenizer } from "../data/encode.js";
import type { InstructionExample } from "../data/example.js";
import { type PromptFormat, renderPrompt } from "../data/prompt.js";
import { toAlpacaRecords } from "../data/readers/fields.js";
import { readJsonArray } from "../data/readers/json-array.js";
import { readJsonl } from "../data/readers/jsonl.js";
import { DataError } from "../util/errors.js";
import { Rng } from "../util/rng.js";

/** What these functions need of a tokenizer (src/tokenizer's Tokenizer has it). */
export interface BatchTokenizer {
  encodeBatch(texts: string[], options?: { addBos?: boolean; addEos?: boolean }): Promise<number[][]>;
  bosId: number;
  eosId: number;
  padId?: number | undefined;
}

const BATCH = 2048;

async function encodeAll(tokenizer: BatchTokenizer, texts: Iterable<string>): Promise<Map<string, number[]>> {
  const unique = [...new Set(texts)];
  const out = new Map<string, number[]>();
  for (let i = 0; i < unique.length; i += BATCH) {
    const chunk = unique.slice(i, i + BATCH);
    const ids = await tokenizer.encodeBatch(chunk, { addBos: false, addEos: false });
    chunk.forEach((t, j) => {
      out.set(t, ids[j] as number[]);
    });
  }
  return out;
}

/** Encodes instruction examples with the loss on the response (see src/data/encode.ts for the exact layout). */
export async function encodeExamples(
  examples: readonly Pick<InstructionExample, "instruction" | "input" | "output" | "meta">[],
  tokenizer: BatchTokenizer,
  options: { maxLength: number; format?: PromptFormat },
): Promise<EncodedExample[]> {
  const format = options.format ?? "alpaca";
  const rendered = examples.map((e) => renderPrompt(e, format));
  const cache = await encodeAll(
    tokenizer,
    rendered.flatMap((r) => [r.prompt, r.response]),
  );
  const sync: PromptTokenizer = {
    encode: (text) => {
      const ids = cache.get(text);
      if (!ids) throw new Error(`encodeExamples: text was not pre-encoded: ${text.slice(0, 40)}`);
      return ids;
    },
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosId,
    ...(tokenizer.padId !== undefined ? { padId: tokenizer.padId } : {}),
  };
  return examples.map((e) => encodeExample(e, sync, { maxLength: options.maxLength, format }));
}

/** Reads Alpaca-layout records from .json (an array) or .jsonl files. */
export async function readInstructionFiles(
  files: readonly string[],
): Promise<Pick<InstructionExample, "instruction" | "input" | "output">[]> {
  const out: Pick<InstructionExample, "instruction" | "input" | "output">[] = [];
  for (const file of files) {
    const records = file.endsWith(".jsonl") ? readJsonl(file) : readJsonArray(file);
    for await (const r of toAlpacaRecords(records, { file }))
      out.push({ instruction: r.instruction, input: r.input ?? "", output: r.output });
    if (out.length === 0)
      throw new DataError("XA_DATA_EMPTY", "no instruction records", { file, hint: "expected an array of {instruction, input, output}" });
  }
  return out;
}

/** Non-empty lines of plain-text files (one document per line). */
export async function readTextLines(files: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const file of files) {
    const before = out.length;
    try {
      for await (const line of createInterface({
        input: createReadStream(file, { encoding: "utf8" }),
        crlfDelay: Number.POSITIVE_INFINITY,
      })) {
        if (line.trim()) out.push(line);
      }
    } catch (err) {
      throw new DataError("XA_DATA_READ", `cannot read: ${(err as Error).message}`, { file });
    }
    if (out.length === before)
      throw new DataError("XA_DATA_EMPTY", "the file has no text", {
        file,
        hint: "a pretraining corpus is plain text, one document per line",
      });
  }
  return out;
}

/** Each document as BOS + document + EOS, in order (for whole-document packing). */
export async function tokenDocuments(lines: readonly string[], tokenizer: BatchTokenizer): Promise<Int32Array[]> {
  const out: Int32Array[] = [];
  for (let i = 0; i < lines.length; i += BATCH) {
    const ids = await tokenizer.encodeBatch(lines.slice(i, i + BATCH) as string[], { addBos: false, addEos: false });
    for (const row of ids) {
      const doc = new Int32Array(row.length + 2);
      doc[0] = tokenizer.bosId;
      doc.set(row, 1);
      doc[row.length + 1] = tokenizer.eosId;
      out.push(doc);
    }
  }
  return out;
}

/** One token stream: BOS + document + EOS, for every document in order. */
export async function tokenStream(lines: readonly string[], tokenizer: BatchTokenizer): Promise<Int32Array> {
  const docs = await tokenDocuments(lines, tokenizer);
  const out = new Int32Array(docs.reduce((a, d) => a + d.length, 0));
  let o = 0;
  for (const d of docs) {
    out.set(d, o);
    o += d.length;
  }
  return out;
}

/** Splits items into train and validation deterministically by (seed, index); a ratio of 0 gives no validation. */
export function splitValidation<T>(items: readonly T[], ratio: number, seed: number): { train: T[]; validation: T[] } {
  const train: T[] = [];
  const validation: T[] = [];
  const rng = new Rng(seed).fork("validation-split");
  for (const item of items) (rng.float() < ratio ? validation : train).push(item);
  return { train, validation };
}
