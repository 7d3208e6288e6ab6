/**
 * Batches for the two objectives, in a deterministic order that depends only
 * on (seed, epoch), so a run resumed at (epoch, index) sees exactly the
 * batches an uninterrupted run would have seen.
 *
 * - Causal-LM pretraining packs one token stream into windows of maxLength+1
 *   tokens (stride maxLength): inputs are the first maxLength, targets the
 *   last maxLength, so every token but the first is a target once.
 * - Whole-document packing (documentBatches) never splits a document that
 *   fits in a row: rows start at a document boundary, hold whole documents,
 *   and the rest is padding that is masked and not scored. A QA passage then
 *   always travels with its questions.
 * - Instruction tuning pads examples to the longest in their batch; batches
 *   are bucketed by length (sorted inside shuffled pools of 32 batches) to
 *   waste little padding, then shuffled.
 */
import { IGNORE_INDEX } from "../data/encode.js";
import { TrainingError } from "../util/errors.js";
import { Rng } from "../util/rng.js";

export interface Batch {
  /** int32 [batch, length], row-major. */
  inputIds: Int32Array;
  labels: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
  batchSize: number;
  length: number;
  /** Positions that carry loss. */
  supervisedTokens: number;
  /**
   * Whole-document rows with isolation: the document number (1, 2, ...) of each position within its row, 0
   * on padding. A model attends only within a document and restarts positions at each one.
   */
  segments?: Int32Array;
}

export interface Sequence {
  inputIds: number[];
  labels: number[];
}

/** Where a run is in its data: resumes continue from here. */
export interface DataPosition {
  epoch: number;
  /** Index of the next batch within the epoch. */
  index: number;
}

/** A finite, re-playable set of batches per epoch. */
export interface BatchSource {
  /** Batches per epoch. */
  readonly batchesPerEpoch: number;
  /** The batches of an epoch, in order; deterministic in (seed, epoch). */
  epoch(epoch: number): Batch[];
}

/** Packs a token stream into [batch, maxLength] language-modelling batches. */
export function packedBatches(tokens: ArrayLike<number>, options: { maxLength: number; batchSize: number; seed: number }): BatchSource {
  const { maxLength, batchSize, seed } = options;
  const windows = Math.floor((tokens.length - 1) / maxLength);
  const perEpoch = Math.floor(windows / batchSize);
  if (perEpoch < 1) {
    throw new TrainingError(
      "XA_TRAIN_TOO_LITTLE_DATA",
      `the corpus has ${tokens.length} tokens: fewer than one batch of ${batchSize} x ${maxLength + 1}`,
      {
        hint: "add text, or lower batch_size or max_length",
      },
    );
  }
  return lastEpochCached(perEpoch, (epoch) => {
    const order = new Rng(seed).fork(`packed-epoch-${epoch}`).shuffle([...Array(windows).keys()]);
    const out: Batch[] = [];
    for (let b = 0; b < perEpoch; b++) {
      const inputIds = new Int32Array(batchSize * maxLength);
      const labels = new Int32Array(batchSize * maxLength);
      for (let r = 0; r < batchSize; r++) {
        const start = (order[b * batchSize + r] as number) * maxLength;
        for (let t = 0; t < maxLength; t++) {
          inputIds[r * maxLength + t] = tokens[start + t] as number;
          labels[r * maxLength + t] = tokens[start + t + 1] as number;
        }
      }
      out.push({
        inputIds,
        labels,
        attentionMask: new Int32Array(batchSize * maxLength).fill(1),
        batchSize,
        length: maxLength,
        supervisedTokens: batchSize * maxLength,
      });
    }
    return out;
  });
}

/** How rows of whole documents were filled: for manifests and the notebooks' data table. */
export interface DocumentPacking {
  documents: number;
  /** Documents longer than a row, cut into row-sized pieces. */
  split: number;
  rows: number;
  /** Real tokens / row slots. */
  fill: number;
}

/**
 * Packs documents (each BOS ... EOS, e.g. from {@link tokenDocuments}) whole
 * into rows of maxLength tokens, first fit over a seeded shuffle, so each row
 * starts at a document boundary and no document shorter than a row is split.
 * Inside a row, position i predicts token i+1 of the same document; a
 * document's last token and the padding carry no label, and the padding has
 * attention mask 0. Rows are built once (deterministic in seed); each epoch
 * shuffles them by (seed, epoch). A document longer than a row is cut into
 * pieces of maxLength+1 tokens with stride maxLength, as {@link packedBatches} does.
 */
export function documentBatches(
  documents: readonly ArrayLike<number>[],
  options: {
    maxLength: number;
    batchSize: number;
    seed: number;
    padId: number;
    isolate?: boolean;
    /** At most this many documents share a row (1: one document per row, the rest padding); unbounded by default. */
    maxPerRow?: number;
  },
): BatchSource & { packing: DocumentPacking } {
  const { maxLength, batchSize, seed, padId } = options;
  // A piece is a run of tokens that stays together; its last token predicts nothing.
  const pieces: ArrayLike<number>[] = [];
  let split = 0;
  for (const doc of documents) {
    if (doc.length < 2) continue;
    if (doc.length <= maxLength) {
      pieces.push(doc);
      continue;
    }
    split++;
    for (let s = 0; s + 1 < doc.length; s += maxLength)
      pieces.push(Array.prototype.slice.call(doc, s, Math.min(doc.length, s + maxLength + 1)));
  }
  const order = new Rng(seed).fork("document-rows").shuffle([...pieces.keys()]);
  const rows: number[][] = [];
  const space: number[] = [];
  /** Rows still open for first fit; a bounded window keeps packing linear in the corpus. */
  const open: number[] = [];
  const perRow = options.maxPerRow ?? Number.POSITIVE_INFINITY;
  if (!(perRow >= 1)) throw new TrainingError("XA_TRAIN_BAD_PACKING", `maxPerRow must be at least 1, got ${perRow}`);
  for (const i of order) {
    const piece = pieces[i] as ArrayLike<number>;
    // An over-long piece fills a row alone: maxLength inputs, its last token a label only.
    const need = Math.min(piece.length, maxLength);
    let at = open.findIndex((r) => (space[r] as number) >= need);
    if (at < 0) {
      rows.push([]);
      space.push(maxLength);
      open.push(rows.length - 1);
      if (open.length > 64) open.shift();
      at = open.length - 1;
    }
    const r = open[at] as number;
    (rows[r] as number[]).push(i);
    space[r] = (space[r] as number) - need;
    if ((space[r] as number) < 8 || (rows[r] as number[]).length >= perRow) open.splice(at, 1);
  }
  const perEpoch = Math.floor(rows.length / batchSize);
  if (perEpoch < 1) {
    throw new TrainingError(
      "XA_TRAIN_TOO_LITTLE_DATA",
      `${pieces.length} documents fill ${rows.length} rows: fewer than one batch of ${batchSize}`,
      {
        hint: "add text, or lower batch_size or max_length",
      },
    );
  }
  const filled = rows.reduce((a, _, r) => a + maxLength - (space[r] as number), 0);
  const packing = { documents: documents.length, split, rows: rows.length, fill: filled / (rows.length * maxLength) };
  const source = lastEpochCached(perEpoch, (epoch) => {
    const rowOrder = new Rng(seed).fork(`document-epoch-${epoch}`).shuffle([...rows.keys()]);
    const out: Batch[] = [];
    for (let b = 0; b < perEpoch; b++) {
      const inputIds = new Int32Array(batchSize * maxLength).fill(padId);
      const labels = new Int32Array(batchSize * maxLength).fill(IGNORE_INDEX);
      const attentionMask = new Int32Array(batchSize * maxLength);
      const segments = options.isolate ? new Int32Array(batchSize * maxLength) : undefined;
      let supervisedTokens = 0;
      for (let r = 0; r < batchSize; r++) {
        let o = r * maxLength;
        let segment = 0;
        for (const i of rows[rowOrder[b * batchSize + r] as number] as number[]) {
          const piece = pieces[i] as ArrayLike<number>;
          const n = Math.min(piece.length, maxLength);
          segment++;
          for (let j = 0; j < n; j++) {
            inputIds[o + j] = piece[j] as number;
            attentionMask[o + j] = 1;
            if (segments) segments[o + j] = segment;
            if (j + 1 < piece.length) {
              labels[o + j] = piece[j + 1] as number;
              supervisedTokens++;
            }
          }
          o += n;
        }
      }
      out.push({ inputIds, labels, attentionMask, batchSize, length: maxLength, supervisedTokens, ...(segments ? { segments } : {}) });
    }
    return out;
  });
  return Object.assign(source, { packing });
}

/** Pads sequences (right padding) into one batch. */
export function padBatch(seqs: readonly Sequence[], padId: number): Batch {
  const length = Math.max(...seqs.map((s) => s.inputIds.length));
  const n = seqs.length;
  const inputIds = new Int32Array(n * length).fill(padId);
  const labels = new Int32Array(n * length).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(n * length);
  let supervisedTokens = 0;
  seqs.forEach((s, r) => {
    for (let t = 0; t < s.inputIds.length; t++) {
      inputIds[r * length + t] = s.inputIds[t] as number;
      const label = s.labels[t] as number;
      labels[r * length + t] = label;
      attentionMask[r * length + t] = 1;
      if (label !== IGNORE_INDEX) supervisedTokens++;
    }
  });
  return { inputIds, labels, attentionMask, batchSize: n, length, supervisedTokens };
}

/** Length-bucketed, shuffled batches of encoded instruction examples. */
export function bucketedBatches(
  seqs: readonly Sequence[],
  options: { batchSize: number; seed: number; padId: number; dropLast?: boolean },
): BatchSource {
  const { batchSize, seed, padId } = options;
  const usable = seqs.filter((s) => s.labels.some((l) => l !== IGNORE_INDEX));
  const perEpoch = options.dropLast === false ? Math.ceil(usable.length / batchSize) : Math.floor(usable.length / batchSize);
  if (perEpoch < 1) {
    throw new TrainingError(
      "XA_TRAIN_TOO_LITTLE_DATA",
      `${usable.length} examples with a supervised response: fewer than one batch of ${batchSize}`,
      {
        hint: "add examples or lower batch_size",
      },
    );
  }
  return lastEpochCached(perEpoch, (epoch) => {
    const rng = new Rng(seed).fork(`bucketed-epoch-${epoch}`);
    const order = rng.shuffle([...usable.keys()]);
    const pool = batchSize * 32;
    const groups: number[][] = [];
    for (let p = 0; p < order.length; p += pool) {
      const chunk = order
        .slice(p, p + pool)
        .sort((a, b) => (usable[a] as Sequence).inputIds.length - (usable[b] as Sequence).inputIds.length || a - b);
      for (let i = 0; i < chunk.length; i += batchSize) groups.push(chunk.slice(i, i + batchSize));
    }
    const full = groups.filter((g) => g.length === batchSize || options.dropLast === false);
    const out = rng.shuffle(full.slice(0, perEpoch)).map((g) =>
      padBatch(
        g.map((i) => usable[i] as Sequence),
        padId,
      ),
    );
    return out;
  });
}

/** A BatchSource that keeps the batches of the last epoch asked for (an epoch is read front to back). */
function lastEpochCached(batchesPerEpoch: number, make: (epoch: number) => Batch[]): BatchSource {
  let last: { epoch: number; batches: Batch[] } | undefined;
  return {
    batchesPerEpoch,
    epoch(epoch: number): Batch[] {
      if (last?.epoch !== epoch) last = { epoch, batches: make(epoch) };
      return last.batches;
    },
  };
}
