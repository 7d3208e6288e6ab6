/* Cross-entropy and the final norm + LM head + mean cross-entropy: softmaxXent(Grad), lmHeadLoss(Grad). */
#include "xa_common.h"

/* Labels must be below the vocabulary (negative: no loss); anything else is a RangeError naming it. */
static int check_labels(napi_env env, const int32_t *labels, int64_t rows, int64_t vocab) {
  for (int64_t r = 0; r < rows; r++) {
    if (labels[r] >= vocab) {
      char msg[160];
      snprintf(msg, sizeof msg, "cross-entropy: label %d at position %lld is outside the vocabulary [0, %lld) (negative labels mean no loss)",
               labels[r], (long long)r, (long long)vocab);
      napi_throw_range_error(env, "XA_NATIVE_LABEL", msg);
      return 0;
    }
  }
  return 1;
}

XA_CLONES static void xent_rows(const float *logits, const int32_t *labels, float *loss, float *lse_out, float *e, int64_t rows,
                                int64_t vocab) {
  for (int64_t r = 0; r < rows; r++) {
    const float *x = logits + r * vocab;
    float mx = x[0];
    for (int64_t v = 1; v < vocab; v++) mx = x[v] > mx ? x[v] : mx;
    /* exps into scratch first (a loop that vectorizes), then their sum in order */
    for (int64_t v = 0; v < vocab; v++) e[v] = fast_expf(x[v] - mx);
    double sum = 0;
    for (int64_t v = 0; v < vocab; v++) sum += e[v];
    float lse = mx + (float)log(sum);
    lse_out[r] = lse;
    int32_t label = labels[r];
    loss[r] = (label >= 0 && label < vocab) ? lse - x[label] : 0.0f;
  }
}

napi_value SoftmaxXent(napi_env env, napi_callback_info info) {
  double a[6];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 6, a, &bytes);
  if (!heap) return NULL;
  BOUNDS(a[4] >= 0 && a[4] < 9e15 && a[5] >= 1 && a[5] < 9e15, "softmaxXent");
  const int64_t rows = (int64_t)a[4], vocab = (int64_t)a[5];
  const double sizes[4] = {(double)(rows * vocab), (double)rows, (double)rows, (double)rows};
  static const char *const names[4] = {"logits", "labels", "loss", "lse"};
  OPERANDS_IN_HEAP("softmaxXent", a, sizes, names, 4, -1, bytes);
  const float *logits = (const float *)(heap + (int64_t)a[0]);
  const int32_t *labels = (const int32_t *)(heap + (int64_t)a[1]);
  float *loss = (float *)(heap + (int64_t)a[2]);
  float *lse_out = (float *)(heap + (int64_t)a[3]);
  if (!check_labels(env, labels, rows, vocab)) return NULL;
  float *e = scratch(SCR_EXPS, (size_t)vocab);
  if (!e) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "softmaxXent: out of memory");
    return NULL;
  }
  xent_rows(logits, labels, loss, lse_out, e, rows, vocab);
  return NULL;
}

XA_CLONES static void xent_grad_rows(const float *logits, const int32_t *labels, const float *lse, const float *dy, float *dx,
                                     int64_t rows, int64_t vocab) {
  for (int64_t r = 0; r < rows; r++) {
    const float *x = logits + r * vocab;
    float *g = dx + r * vocab;
    int32_t label = labels[r];
    if (label < 0 || label >= vocab) {
      for (int64_t v = 0; v < vocab; v++) g[v] = 0.0f;
      continue;
    }
    const float scale = dy[r], l = lse[r];
    for (int64_t v = 0; v < vocab; v++) g[v] = scale * fast_expf(x[v] - l);
    g[label] -= scale;
  }
}

napi_value SoftmaxXentGrad(napi_env env, napi_callback_info info) {
  double a[7];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 7, a, &bytes);
  if (!heap) return NULL;
  BOUNDS(a[5] >= 0 && a[5] < 9e15 && a[6] >= 1 && a[6] < 9e15, "softmaxXentGrad");
  const int64_t rows = (int64_t)a[5], vocab = (int64_t)a[6];
  const double sizes[5] = {(double)(rows * vocab), (double)rows, (double)rows, (double)rows, (double)(rows * vocab)};
  static const char *const names[5] = {"logits", "labels", "lse", "dy", "dx"};
  OPERANDS_IN_HEAP("softmaxXentGrad", a, sizes, names, 5, -1, bytes);
  const float *logits = (const float *)(heap + (int64_t)a[0]);
  const int32_t *labels = (const int32_t *)(heap + (int64_t)a[1]);
  const float *lse = (const float *)(heap + (int64_t)a[2]);
  const float *dy = (const float *)(heap + (int64_t)a[3]);
  float *dx = (float *)(heap + (int64_t)a[4]);
  xent_grad_rows(logits, labels, lse, dy, dx, rows, vocab);
  return NULL;
}

/* ---- final norm, LM head and mean cross-entropy --------------------------------- */

enum {
  LH_H, LH_W, LH_HEAD, LH_LABELS, LH_LOSS, LH_R, LH_XN, LH_LOGITS, LH_LSE,
  LH_OPERANDS, /* the heap offsets above; then the numbers */
  LH_ROWS = LH_OPERANDS, LH_D, LH_VOCAB, LH_EPS, LH_TIED,
  LH_ARGS
};
/*
 * lmHeadLoss(heap, Float64Array[14]): 0 h [rows, d], 1 w [d], 2 head ([d, vocab], or [vocab, d] when tied),
 *   3 labels int32 [rows], outputs 4 loss [1], 5 r [rows], 6 xn [rows, d], 7 logits [rows, vocab], 8 lse [rows];
 *   9 rows, 10 d, 11 vocab, 12 eps, 13 tied (0/1).
 * xn = rmsnorm(h) * w; logits = xn @ head (xn @ head^T when tied); loss = mean over labels >= 0 of
 * logsumexp(logits) - logits[label] (0 when there are none).
 */
napi_value LmHeadLoss(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, LH_ARGS, &a, &bytes);
  if (!heap) return NULL;
  const int64_t rows = (int64_t)a[LH_ROWS], d = (int64_t)a[LH_D], vocab = (int64_t)a[LH_VOCAB];
  const int tied = a[LH_TIED] != 0;
  const double R = (double)rows, dd = (double)d, V = (double)vocab;
  const double sizes[LH_OPERANDS] = {R * dd, dd, dd * V, R, 1, R, R * dd, R * V, R};
  static const char *const names[LH_OPERANDS] = {"h", "w", "head", "labels", "loss", "r", "xn", "logits", "lse"};
  BOUNDS(rows > 0 && d > 0 && vocab > 0, "lmHeadLoss");
  OPERANDS_IN_HEAP("lmHeadLoss", a, sizes, names, LH_OPERANDS, -1, bytes);
  float *e = scratch(SCR_EXPS, (size_t)vocab);
  if (!e) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "lmHeadLoss: out of memory");
    return NULL;
  }
  float *xn = (float *)(heap + (int64_t)a[LH_XN]), *logits = (float *)(heap + (int64_t)a[LH_LOGITS]), *lse = (float *)(heap + (int64_t)a[LH_LSE]);
  const int32_t *labels = (const int32_t *)(heap + (int64_t)a[LH_LABELS]);
  if (!check_labels(env, labels, rows, vocab)) return NULL;
  norm_rows((const float *)(heap + (int64_t)a[LH_H]), (const float *)(heap + (int64_t)a[LH_W]), (float *)(heap + (int64_t)a[LH_R]), xn, rows, d,
            (float)a[LH_EPS]);
  if (tied) gemm(0, 1, rows, vocab, d, xn, d, (const float *)(heap + (int64_t)a[LH_HEAD]), d, 0.0f, logits, vocab);
  else gemm(0, 0, rows, vocab, d, xn, d, (const float *)(heap + (int64_t)a[LH_HEAD]), vocab, 0.0f, logits, vocab);
  float *per_row = scratch(SCR_PER_ROW, (size_t)rows);
  if (!per_row) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "lmHeadLoss: out of memory");
    return NULL;
  }
  xent_rows(logits, labels, per_row, lse, e, rows, vocab);
  /* float32 sums in row order, then the division, as the unfused sum / count does */
  float total = 0.0f, count = 0.0f;
  for (int64_t r = 0; r < rows; r++) {
    total += per_row[r];
    if (labels[r] >= 0 && labels[r] < vocab) count += 1.0f;
  }
  *(float *)(heap + (int64_t)a[LH_LOSS]) = total / (count > 1.0f ? count : 1.0f);
  return NULL;
}

enum {
  LG_DY, LG_H, LG_W, LG_HEAD, LG_LABELS, LG_R, LG_XN, LG_LOGITS, LG_LSE, LG_DH, LG_DW, LG_DHEAD,
  LG_OPERANDS, /* the heap offsets above; then the numbers */
  LG_ROWS = LG_OPERANDS, LG_D, LG_VOCAB, LG_TIED,
  LG_ARGS
};
/*
 * lmHeadLossGrad(heap, Float64Array[16]): 0 dy [1], 1 h, 2 w, 3 head, 4 labels, 5 r, 6 xn, 7 logits, 8 lse,
 *   outputs 9 dh [rows, d], 10 dw [d], 11 dhead (head's shape); 12 rows, 13 d, 14 vocab, 15 tied.
 */
napi_value LmHeadLossGrad(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, LG_ARGS, &a, &bytes);
  if (!heap) return NULL;
  const int64_t rows = (int64_t)a[LG_ROWS], d = (int64_t)a[LG_D], vocab = (int64_t)a[LG_VOCAB];
  const int tied = a[LG_TIED] != 0;
  const double R = (double)rows, dd = (double)d, V = (double)vocab;
  const double sizes[LG_OPERANDS] = {1, R * dd, dd, dd * V, R, R, R * dd, R * V, R, R * dd, dd, dd * V};
  static const char *const names[LG_OPERANDS] = {"dy", "h", "w", "head", "labels", "r", "xn", "logits", "lse", "dh", "dw", "dhead"};
  BOUNDS(rows > 0 && d > 0 && vocab > 0, "lmHeadLossGrad");
  OPERANDS_IN_HEAP("lmHeadLossGrad", a, sizes, names, LG_OPERANDS, -1, bytes);
  float *dlogits = scratch(SCR_DLOGITS, (size_t)(rows * vocab)), *dxn = scratch(SCR_DXN, (size_t)(rows * d)), *per_row = scratch(SCR_PER_ROW, (size_t)rows);
  if (!dlogits || !dxn || !per_row) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "lmHeadLossGrad: out of memory");
    return NULL;
  }
  const int32_t *labels = (const int32_t *)(heap + (int64_t)a[LG_LABELS]);
  float count = 0.0f;
  for (int64_t r = 0; r < rows; r++) count += (labels[r] >= 0 && labels[r] < vocab) ? 1.0f : 0.0f;
  const float g = *(const float *)(heap + (int64_t)a[LG_DY]) / (count > 1.0f ? count : 1.0f);
  for (int64_t r = 0; r < rows; r++) per_row[r] = g;
  const float *xn = (const float *)(heap + (int64_t)a[LG_XN]), *head = (const float *)(heap + (int64_t)a[LG_HEAD]);
  xent_grad_rows((const float *)(heap + (int64_t)a[LG_LOGITS]), labels, (const float *)(heap + (int64_t)a[LG_LSE]), per_row, dlogits, rows, vocab);
  float *dhead = (float *)(heap + (int64_t)a[LG_DHEAD]);
  if (tied) {
    gemm(1, 0, vocab, d, rows, dlogits, vocab, xn, d, 0.0f, dhead, d);
    gemm(0, 0, rows, d, vocab, dlogits, vocab, head, d, 0.0f, dxn, d);
  } else {
    gemm(1, 0, d, vocab, rows, xn, d, dlogits, vocab, 0.0f, dhead, vocab);
    gemm(0, 1, rows, d, vocab, dlogits, vocab, head, vocab, 0.0f, dxn, d);
  }
  float *dh = (float *)(heap + (int64_t)a[LG_DH]);
  memset(dh, 0, (size_t)(rows * d) * sizeof(float));
  norm_rows_grad((const float *)(heap + (int64_t)a[LG_H]), (const float *)(heap + (int64_t)a[LG_W]), (const float *)(heap + (int64_t)a[LG_R]), dxn,
                 dh, dh, (float *)(heap + (int64_t)a[LG_DW]), rows, d);
  return NULL;
}
