/**
 * Line-aligned files read in lockstep: Moses-style parallel corpora
 * (train.en + train.zh) and Flores-style per-language files. Files whose line
 * counts differ are an error naming the shorter file and its first missing line.
 */
import { DataError } from "../../util/errors.js";
import { type LineBatch, readLineBatches } from "../lines.js";
import { type ReadOptions, ReadReport } from "../report.js";

/** One aligned row: texts[i] is line `line` of paths[i]. */
export interface AlignedRow {
  line: number;
  texts: string[];
}

/** A sentence pair with its 1-based line (or row) number. */
export interface SentencePair {
  src: string;
  tgt: string;
  line: number;
}

interface Cursor {
  iterator: AsyncGenerator<LineBatch>;
  lines: (string | null)[];
  pos: number;
  done: boolean;
}

/**
 * Reads several line-aligned files together, a batch of rows at a time
 * (rows[k][i] is line firstLine + k of paths[i]; rows with an invalid line are
 * already dropped, so lines[k] gives each row's number).
 */
export async function* readAlignedBatches(
  paths: readonly string[],
  options: ReadOptions = {},
): AsyncGenerator<{ lines: number[]; rows: string[][] }> {
  const report = options.report ?? new ReadReport();
  const opts: ReadOptions = { ...options, report };
  const cursors: Cursor[] = paths.map((p, i) => ({
    iterator: readLineBatches(p, i === 0 ? opts : { ...opts, onBytes: undefined }),
    lines: [],
    pos: 0,
    done: false,
  }));
  const refill = async (c: Cursor): Promise<void> => {
    while (!c.done && c.pos >= c.lines.length) {
      const next = await c.iterator.next();
      if (next.done) c.done = true;
      else {
        c.lines = next.value.lines;
        c.pos = 0;
      }
    }
  };
  let line = 1;
  for (;;) {
    for (const c of cursors) await refill(c);
    if (cursors.some((c) => c.done)) break;
    let n = Number.POSITIVE_INFINITY;
    for (const c of cursors) n = Math.min(n, c.lines.length - c.pos);
    const lines: number[] = [];
    const rows: string[][] = [];
    for (let k = 0; k < n; k++, line++) {
      const texts: string[] = [];
      let valid = true;
      for (const c of cursors) {
        const t = c.lines[c.pos++];
        if (t === null || t === undefined) valid = false;
        else texts.push(t);
      }
      if (valid) {
        lines.push(line);
        rows.push(texts);
      }
    }
    report.records += rows.length;
    yield { lines, rows };
  }
  // one file ended: count what is left in the others, so the message can give both counts
  const counts = await Promise.all(
    cursors.map(async (c) => {
      let rest = c.done ? 0 : c.lines.length - c.pos;
      if (!c.done) for await (const batch of c.iterator) rest += batch.lines.length;
      return line - 1 + rest;
    }),
  );
  const shortest = Math.min(...counts);
  const longest = Math.max(...counts);
  if (shortest === longest) return;
  const shortIndex = counts.indexOf(shortest);
  const longIndex = counts.indexOf(longest);
  const shortPath = paths[shortIndex] as string;
  const longPath = paths[longIndex] as string;
  if (options.skipInvalid) {
    for (let i = 0; i < paths.length; i++) {
      const extra = (counts[i] as number) - shortest;
      if (extra > 0) report.skip("unpaired line", paths[i] as string, shortest + 1, extra);
    }
    return;
  }
  throw new DataError(
    "XA_DATA_LINE_COUNT",
    `${shortPath} has ${shortest} lines but ${longPath} has ${longest}; line ${shortest + 1} has no partner`,
    {
      file: shortPath,
      line: shortest + 1,
      hint: "the files of a parallel corpus must be line-aligned: re-export both sides together, or pass --skip-invalid to drop the unpaired lines",
    },
  );
}

/**
 * Reads several line-aligned files together, one row at a time.
 *
 * @example
 * for await (const row of readAligned(["dev.en", "dev.zh", "dev.ar"])) console.log(row.line, row.texts);
 */
export async function* readAligned(paths: readonly string[], options: ReadOptions = {}): AsyncGenerator<AlignedRow> {
  for await (const batch of readAlignedBatches(paths, options)) {
    for (let k = 0; k < batch.rows.length; k++) yield { line: batch.lines[k] as number, texts: batch.rows[k] as string[] };
  }
}

/**
 * A Moses-style parallel corpus: two line-aligned files, one sentence per line.
 *
 * @example
 * for await (const { src, tgt } of readMosesPairs("train.en", "train.zh")) console.log(src, "->", tgt);
 */
export async function* readMosesPairs(srcPath: string, tgtPath: string, options: ReadOptions = {}): AsyncGenerator<SentencePair> {
  for await (const batch of readMosesPairBatches(srcPath, tgtPath, options)) for (const pair of batch) yield pair;
}

/**
 * The same pairs a batch (one 64 KiB chunk of text) at a time: one await per
 * batch instead of per pair, for throughput-bound pipelines.
 *
 * @example
 * for await (const batch of readMosesPairBatches("train.en", "train.zh")) for (const pair of batch) use(pair);
 */
export async function* readMosesPairBatches(srcPath: string, tgtPath: string, options: ReadOptions = {}): AsyncGenerator<SentencePair[]> {
  for await (const { lines, rows } of readAlignedBatches([srcPath, tgtPath], options)) {
    const pairs: SentencePair[] = new Array(rows.length);
    for (let k = 0; k < rows.length; k++) {
      const row = rows[k] as string[];
      pairs[k] = { src: row[0] as string, tgt: row[1] as string, line: lines[k] as number };
    }
    yield pairs;
  }
}
