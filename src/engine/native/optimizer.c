/* Multi-tensor optimizer kernels: adamwAll, sumSquares. */
#include "xa_common.h"

/* sum of x^2 in double, in eight interleaved partial sums (a fixed order, so the same bits on every run). */
XA_CLONES static double sum_squares(const float *x, int64_t n) {
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; k++) part[k] += (double)x[i + k] * x[i + k];
  }
  double total = 0;
  for (; i < n; i++) total += (double)x[i] * x[i];
  for (int k = 0; k < 8; k++) total += part[k];
  return total;
}

/* ---- AdamW ------------------------------------------------------------- */

typedef struct {
  float *p, *m, *v, *out;
  const float *g;
  float b1, omb1, b2, omb2, bc1, bc2, eps, lr, lrwd;
  int decay;
  float gscale; /* the gradient is g * gscale (clipping, accumulation), applied first as the TF.js path does */
  int scaled;
} adamw_ctx;

XA_CLONES static void adamw_range(void *arg, int64_t lo, int64_t hi) {
  const adamw_ctx *c = (const adamw_ctx *)arg;
  /* Locals (restrict) so the stores cannot alias the context: the loop then vectorizes. */
  float *restrict pm = c->m, *restrict pv = c->v, *restrict out = c->out;
  const float *restrict pp = c->p, *restrict pg = c->g;
  const float b1 = c->b1, omb1 = c->omb1, b2 = c->b2, omb2 = c->omb2, bc1 = c->bc1, bc2 = c->bc2, eps = c->eps, lr = c->lr;
  const float lrwd = c->lrwd, gscale = c->scaled ? c->gscale : 1.0f;
  const int decay = c->decay, scaled = c->scaled;
  for (int64_t i = lo; i < hi; i++) {
    const float g = scaled ? pg[i] * gscale : pg[i];
    const float m = pm[i] * b1 + g * omb1;
    const float v = pv[i] * b2 + (g * g) * omb2;
    const float update = (m / bc1) / (sqrtf(v / bc2) + eps);
    const float p = pp[i];
    const float decayed = decay ? p - p * lrwd : p;
    pm[i] = m;
    pv[i] = v;
    out[i] = decayed - update * lr;
  }
}


/* ---- multi-tensor optimizer kernels ----------------------------------------------- */

enum { /* the table's header */
  AW_N, AW_BETA1, AW_OMB1, AW_BETA2, AW_OMB2, AW_BC1, AW_BC2, AW_EPS, AW_LR, AW_LRWD, AW_GSCALE, AW_SCALED,
  AW_HEADER
};
enum { /* then per variable */
  AV_P, AV_G, AV_M, AV_V, AV_OUT,
  AV_OPERANDS, /* the heap offsets above; then size * 2 + decay */
  AV_SIZE_DECAY = AV_OPERANDS,
  AV_FIELDS
};
/*
 * adamwAll(heap, Float64Array[12 + 6n]): one AdamW step over n variables in one call:
 *   0 n, 1 beta1, 2 1-beta1, 3 beta2, 4 1-beta2, 5 bc1, 6 bc2, 7 eps, 8 lr, 9 lr*wd, 10 gradScale, 11 scaled (0/1),
 *   then per variable: p, g, m, v, out offsets, size * 2 + decay (0/1).
 * The float32 operations of src/train/adamw.ts per element, with g * gradScale first when `scaled`.
 */
napi_value AdamWAll(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes, length;
  uint8_t *heap = heap_table_any(env, info, &a, &length, &bytes);
  if (!heap) return NULL;
  if (length < AW_HEADER) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "adamwAll: the table is too short");
    return NULL;
  }
  const int64_t n = (int64_t)a[AW_N];
  if (n < 0 || length != (size_t)(AW_HEADER + AV_FIELDS * n)) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "adamwAll: the table's length does not match its variable count");
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    const double *v = a + AW_HEADER + AV_FIELDS * i;
    const double size = floor(v[AV_SIZE_DECAY] / 2);
    const double sizes[AV_OPERANDS] = {size, size, size, size, size};
    static const char *const names[AV_OPERANDS] = {"p", "g", "m", "v", "out"};
    OPERANDS_IN_HEAP("adamwAll", v, sizes, names, AV_OPERANDS, -1, bytes);
  }
  for (int64_t i = 0; i < n; i++) {
    const double *v = a + AW_HEADER + AV_FIELDS * i;
    const int64_t size = (int64_t)v[AV_SIZE_DECAY] / 2;
    const int decay = (int64_t)v[AV_SIZE_DECAY] % 2;
    adamw_ctx c = {
        (float *)(heap + (int64_t)v[AV_P]), (float *)(heap + (int64_t)v[AV_M]), (float *)(heap + (int64_t)v[AV_V]),
        (float *)(heap + (int64_t)v[AV_OUT]), (const float *)(heap + (int64_t)v[AV_G]),
        (float)a[AW_BETA1], (float)a[AW_OMB1], (float)a[AW_BETA2], (float)a[AW_OMB2], (float)a[AW_BC1], (float)a[AW_BC2], (float)a[AW_EPS], (float)a[AW_LR], (float)a[AW_LRWD],
        decay, (float)a[AW_GSCALE], a[AW_SCALED] != 0,
    };
    parallel_for(size, size, adamw_range, &c);
  }
  return NULL;
}

/* sumSquares(heap, Float64Array[1 + 2n]): n, then per tensor offset and size; returns sum of x^2 over all (double). */
napi_value SumSquares(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes, length;
  const uint8_t *heap = heap_table_any(env, info, &a, &length, &bytes);
  if (!heap) return NULL;
  if (length < 1) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "sumSquares: the table is empty");
    return NULL;
  }
  const int64_t n = (int64_t)a[0];
  if (n < 0 || length != (size_t)(1 + 2 * n)) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "sumSquares: the table's length does not match its tensor count");
    return NULL;
  }
  double total = 0;
  for (int64_t i = 0; i < n; i++) {
    static const char *const names[1] = {"tensor"};
    OPERANDS_IN_HEAP("sumSquares", a + 1 + 2 * i, a + 2 + 2 * i, names, 1, -1, bytes);
    total += sum_squares((const float *)(heap + (int64_t)a[1 + 2 * i]), (int64_t)a[2 + 2 * i]);
  }
  napi_value out;
  CHECK(napi_create_double(env, total, &out));
  return out;
}
