/**
 * Batches for the two objectives, in a deterministic order that depends only
 * on (seed, epoch), so a run resumed at (epoch, index) sees exactly the
 * batches an uninterrupted run would have seen.
 *
 * - Causal-LM pretraining packs one token stream into windows of maxLength+1
 *   tokens (stride maxLength): inputs are the first maxLength, targets the
 *   last maxLength, so every token but the first is a target once.
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
