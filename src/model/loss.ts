/**
 * Causal language-model loss: mean cross-entropy over positions whose label
 * is not ignored, as logsumexp(logits) minus the target's logit. The target is
 * picked with a gather, never a one-hot [tokens, vocab] tensor (at vocab
 * 32000 that alone would be gigabytes). On wasm with the native addon the
 * whole softmax cross-entropy and its gradient are one fused kernel each.
 *
 * @example
 * // labels[t] is the target for logits[t]; -100 (any negative) is ignored.
 * const loss = causalLmLoss(model.forward(ids), labels);
 */
import * as tf from "@tensorflow/tfjs";
import { nativeFusedOn, softmaxCrossEntropy } from "../engine/fused.js";

/**
 * `logits` [batch, t, vocab] (or [tokens, vocab]); `labels` int32 [batch, t]
 * (or [tokens]) already aligned with positions. Labels below 0 (HF's -100)
 * are ignored; with none left the loss is 0.
 */
export function causalLmLoss(logits: tf.Tensor, labels: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const vocab = logits.shape[logits.rank - 1] as number;
    const n = logits.size / vocab;
    if (labels.size !== n)
      throw new Error(`causalLmLoss: ${labels.size} labels for ${n} positions (shapes [${labels.shape}] and [${logits.shape}])`);
    const flat = tf.reshape(logits, [n, vocab]);
    const targets = tf.reshape(labels, [n]).toInt();
    if (nativeFusedOn() && flat.dtype === "float32") {
      // One native pass forward and one backward (src/engine/fused.ts); 0 where the label is negative.
      const count = tf.maximum(tf.sum(tf.cast(tf.greaterEqual(targets, 0), "float32")), 1);
      return tf.div(tf.sum(softmaxCrossEntropy(flat as tf.Tensor2D, targets as tf.Tensor1D)), count) as tf.Scalar;
    }
    const valid = tf.greaterEqual(targets, 0);
    const safeTargets = tf.where(valid, targets, tf.zerosLike(targets));
    const offsets = tf.add(tf.mul(tf.range(0, n, 1, "int32"), tf.scalar(vocab, "int32")), safeTargets);
    const picked = tf.gather(tf.reshape(flat, [n * vocab]), offsets);
    const nll = tf.sub(rowLogSumExp(flat as tf.Tensor2D), picked);
    const weights = tf.cast(valid, "float32");
    const count = tf.maximum(tf.sum(weights), 1);
    return tf.div(tf.sum(tf.mul(nll, weights)), count) as tf.Scalar;
  });
}

/**
 * log(sum(exp(x))) per row, with its gradient written out (softmax times the
 * incoming gradient). tf.logSumExp differentiates through its max shift with
 * an Equal over the whole [tokens, vocab] matrix, which on wasm cost more than
 * the rest of the loss; the shift's gradient cancels out anyway.
 */
const rowLogSumExp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const logits = args[0] as tf.Tensor2D;
  const save = args[1] as tf.GradSaveFunc;
  const max = tf.max(logits, 1, true);
  const value = tf.add(tf.log(tf.sum(tf.exp(tf.sub(logits, max)), 1, true)), max);
  save([logits, value]);
  return {
    value: tf.reshape(value, [logits.shape[0]]) as tf.Tensor1D,
    gradFunc: (dy: tf.Tensor1D, saved: tf.Tensor[]) => {
      const [input, lse] = saved as [tf.Tensor2D, tf.Tensor2D];
      return tf.mul(tf.exp(tf.sub(input, lse)), tf.reshape(dy, [-1, 1]));
    },
  };
}) as (x: tf.Tensor2D) => tf.Tensor1D;
