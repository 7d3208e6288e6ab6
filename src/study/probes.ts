/**
 * The copy probe: can a model copy a span it has just read? Each item is BOS,
 * a span of names and values (concatenated tokenizations of answers drawn at
 * random), and the same span again; the score is top-1 next-token accuracy
 * on the second copy (from its second token on, the first is unpredictable).
 * A model that reads passages copies near 1; a plain LLaMA that answers
 * extractive questions from its prior stays near 0 (issue 16's prototypes:
 * .04–.06 without the canon convolution, .29–.32 with it).
 */
import * as tf from "@tensorflow/tfjs";
import type { LlamaModel } from "../model/llama.js";
import type { SynthQaSet } from "../synth/probe.js";
import { Rng } from "../util/rng.js";

export interface CopyProbeOptions {
  /** Spans (default 64). */
  spans?: number;
  /** Tokens per span (default 12). */
  length?: number;
  seed?: number;
  /** Rows per forward (default 32). */
  batchSize?: number;
}

/** The copy probe's pieces: each gold answer of a QA set (with its leading space, as it follows a question), tokenized. */
export function answerPieces(
  set: SynthQaSet,
  tokenizer: { encodeBatch(texts: string[], options?: { addBos?: boolean; addEos?: boolean }): Promise<number[][]> },
): Promise<number[][]> {
  const answers = set.data.flatMap((d) => d.paragraphs.flatMap((p) => p.qas.map((q) => ` ${q.answers[0]?.text ?? ""}`)));
  return tokenizer.encodeBatch(answers, { addBos: false, addEos: false });
}

/** Top-1 accuracy on the repeated half of BOS + span + span, over spans built from `pieces` (token ids of names and values). */
export function copyProbe(
  model: LlamaModel,
  bosId: number,
  pieces: readonly (readonly number[])[],
  options: CopyProbeOptions = {},
): number {
  const spans = options.spans ?? 64;
  const length = options.length ?? 12;
  const batchSize = options.batchSize ?? 32;
  const usable = pieces.filter((p) => p.length > 0);
  if (usable.length === 0) throw new Error("copyProbe: no non-empty pieces to build spans from");
  const rng = new Rng(options.seed ?? 0).fork("copy-probe");
  const rows: number[][] = [];
  for (let s = 0; s < spans; s++) {
    const span: number[] = [];
    while (span.length < length) span.push(...(rng.choice(usable) as number[]));
    span.length = length;
    rows.push([bosId, ...span, ...span]);
  }
  const t = 1 + 2 * length;
  let correct = 0;
  let total = 0;
  for (let i = 0; i < rows.length; i += batchSize) {
    const chunk = rows.slice(i, i + batchSize);
    const predicted = tf.tidy(() => {
      const ids = tf.tensor2d(chunk.flat(), [chunk.length, t], "int32");
      return tf.argMax(model.forward(ids), 2).dataSync();
    });
    chunk.forEach((row, r) => {
      // Position p predicts token p + 1; the second copy's token j sits at 1 + length + j.
      for (let j = 1; j < length; j++) {
        const p = length + j;
        total++;
        if (predicted[r * t + p] === row[p + 1]) correct++;
      }
    });
  }
  return correct / total;
}
