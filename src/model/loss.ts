/**
 * Causal language-model loss: mean cross-entropy over positions whose label
 * is not ignored, as logsumexp(logits) minus the target's logit. The target is
 * picked with a gather, never a one-hot [tokens, vocab] tensor (at vocab
 * 32000 that alone would be gigabytes).
 *
 * @example
 * // labels[t] is the target for logits[t]; -100 (any negative) is ignored.
 * const loss = causalLmLoss(model.forward(ids), labels);
 */
import * as tf from "@tensorflow/tfjs";

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
    const valid = tf.greaterEqual(targets, 0);
    const safeTargets = tf.where(valid, targets, tf.zerosLike(targets));
    const offsets = tf.add(tf.mul(tf.range(0, n, 1, "int32"), tf.scalar(vocab, "int32")), safeTargets);
    const picked = tf.gather(tf.reshape(flat, [n * vocab]), offsets);
    const nll = tf.sub(tf.logSumExp(flat, 1), picked);
    const weights = tf.cast(valid, "float32");
    const count = tf.maximum(tf.sum(weights), 1);
    return tf.div(tf.sum(tf.mul(nll, weights)), count) as tf.Scalar;
  });
}
