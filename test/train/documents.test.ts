import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IGNORE_INDEX } from "../../src/data/encode.js";
import { documentBatches } from "../../src/train/batches.js";
import { Rng } from "../../src/util/rng.js";

const BOS = 1;
const EOS = 2;
const PAD = 0;

/** Documents BOS, id..., EOS whose token ids encode (document, position) so any split or mix-up shows. */
function corpus(n: number, seed: number, maxLen: number): Int32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, d) => {
    const len = 1 + rng.int(maxLen);
    return Int32Array.from([BOS, ...Array.from({ length: len }, (_, i) => 1000 * (d + 1) + i), EOS]);
  });
}

describe("documentBatches (whole-document packing)", () => {
  it("rows hold whole documents from a boundary; every token after BOS is a label once; padding is masked and unscored", () => {
    const docs = corpus(300, 1, 40);
    const source = documentBatches(docs, { maxLength: 64, batchSize: 4, seed: 5, padId: PAD });
    const seen = new Map<number, number>();
    for (const batch of source.epoch(0)) {
      for (let r = 0; r < batch.batchSize; r++) {
        const row = Array.from(batch.inputIds.subarray(r * 64, (r + 1) * 64));
        const labels = Array.from(batch.labels.subarray(r * 64, (r + 1) * 64));
        const mask = Array.from(batch.attentionMask.subarray(r * 64, (r + 1) * 64));
        assert.equal(row[0], BOS, "a row starts at a document boundary");
        const real = mask.lastIndexOf(1) + 1;
        assert.ok(mask.slice(0, real).every((m) => m === 1) && mask.slice(real).every((m) => m === 0));
        assert.ok(row.slice(real).every((t) => t === PAD) && labels.slice(real).every((l) => l === IGNORE_INDEX));
        for (let i = 0; i < real; i++) {
          const tok = row[i] as number;
          if (tok === EOS) assert.equal(labels[i], IGNORE_INDEX, "a document's last token predicts nothing");
          else assert.equal(labels[i], row[i + 1], "a label is the next token of the same document");
          if (tok >= 1000) seen.set(tok, (seen.get(tok) ?? 0) + 1);
        }
        // A document is never split: its first body token follows its BOS in the same row, through to its EOS.
        for (let i = 0; i < real; i++) {
          if (row[i] !== BOS) continue;
          const d = Math.floor((row[i + 1] as number) / 1000) - 1;
          const doc = docs[d] as Int32Array;
          assert.deepEqual(row.slice(i, i + doc.length), Array.from(doc));
        }
      }
    }
    for (const count of seen.values()) assert.equal(count, 1, "no token appears twice in an epoch");
    assert.ok(source.packing.fill > 0.8, `rows are well filled (${source.packing.fill})`);
    assert.equal(source.packing.split, 0);
  });

  it("maxPerRow bounds the documents in a row (1: one per row, the rest padding); a bound below 1 is refused", () => {
    const docs = corpus(120, 3, 20);
    const one = documentBatches(docs, { maxLength: 64, batchSize: 4, seed: 5, padId: PAD, maxPerRow: 1 });
    assert.equal(one.packing.rows, docs.length, "one row per document");
    const two = documentBatches(docs, { maxLength: 64, batchSize: 4, seed: 5, padId: PAD, maxPerRow: 2 });
    for (const batch of two.epoch(0))
      for (let r = 0; r < batch.batchSize; r++) {
        const row = Array.from(batch.inputIds.subarray(r * 64, (r + 1) * 64));
        assert.ok(row.filter((t) => t === BOS).length <= 2);
      }
    const free = documentBatches(docs, { maxLength: 64, batchSize: 4, seed: 5, padId: PAD });
    assert.ok(free.packing.rows < two.packing.rows && two.packing.rows < one.packing.rows);
    assert.throws(() => documentBatches(docs, { maxLength: 64, batchSize: 4, seed: 5, padId: PAD, maxPerRow: 0 }), /maxPerRow/);
  });

  it("is deterministic in (seed, epoch) and reshuffles rows per epoch", () => {
    const docs = corpus(200, 2, 30);
    const a = documentBatches(docs, { maxLength: 48, batchSize: 4, seed: 9, padId: PAD });
    const b = documentBatches(docs, { maxLength: 48, batchSize: 4, seed: 9, padId: PAD });
    assert.deepEqual(a.epoch(1)[0]?.inputIds, b.epoch(1)[0]?.inputIds);
    assert.notDeepEqual(a.epoch(0)[0]?.inputIds, a.epoch(1)[0]?.inputIds);
  });

  it("cuts a document longer than a row into row-sized pieces, each token still a label once", () => {
    const long = Int32Array.from([BOS, ...Array.from({ length: 100 }, (_, i) => 50000 + i), EOS]);
    const source = documentBatches([long, ...corpus(20, 3, 10)], { maxLength: 32, batchSize: 1, seed: 1, padId: PAD });
    assert.equal(source.packing.split, 1);
    const labels = source.epoch(0).flatMap((batch) => Array.from(batch.labels).filter((l) => l >= 50000));
    for (let i = 1; i < 100; i++) assert.equal(labels.filter((l) => l === 50000 + i).length, 1, `token ${i}`);
  });

  it("with isolate, each position carries its document's number within the row (0 on padding)", () => {
    const docs = corpus(100, 6, 20);
    const batch = documentBatches(docs, { maxLength: 48, batchSize: 2, seed: 2, padId: PAD, isolate: true }).epoch(0)[0];
    const segments = batch?.segments as Int32Array;
    for (let r = 0; r < 2; r++) {
      let expected = 0;
      for (let i = 0; i < 48; i++) {
        const tok = batch?.inputIds[r * 48 + i] as number;
        if (tok === BOS) expected++;
        assert.equal(segments[r * 48 + i], batch?.attentionMask[r * 48 + i] ? expected : 0);
      }
    }
  });

  it("too little data is a clear error", () => {
    assert.throws(
      () => documentBatches(corpus(2, 4, 5), { maxLength: 64, batchSize: 8, seed: 1, padId: PAD }),
      /fewer than one batch of 8/,
    );
  });
});
