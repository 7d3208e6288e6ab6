/**
 * Causal language-model loss: mean cross-entropy over positions whose label
 * is not ignored, as logsumexp(logits) minus the target's logit. The target is
 * picked with a gather, never a one-hot [tokens, vocab] tensor (at vocab
 * 32000 that alone would be gigabytes; src/engine/fused.ts). On wasm with the
 * native addon the whole softmax cross-entropy and its gradient are one fused
 * kernel each.
 *
 * @example
 * // labels[t] is the target for logits[t]; -100 (any negative) is ignored.
 * const loss = causalLmLoss(model.forward(ids), labels);
 */
import * as tf from "@tensorflow/tfjs";
import { softmaxCrossEntropy } from "../engine/fused.js";

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
    const flat = tf.reshape(logits, [n, vocab]) as tf.Tensor2D;
    const targets = tf.reshape(labels, [n]).toInt() as tf.Tensor1D;
    // Native: one pass forward and one backward (src/engine/fused.ts); 0 where the label is negative.
    const count = tf.maximum(tf.sum(tf.cast(tf.greaterEqual(targets, 0), "float32")), 1);
    return tf.div(tf.sum(softmaxCrossEntropy(flat, targets)), count) as tf.Scalar;
  });
}
