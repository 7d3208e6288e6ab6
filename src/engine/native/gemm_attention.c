/* sgemm, and the attention of the fused decoder layer (forward and backward ranges). */
#include "xa_common.h"

napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 11) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "sgemm expects 11 arguments");
    return NULL;
  }
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_value buffer;
  size_t byte_offset;
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &length, &data, &buffer, &byte_offset));
  int64_t a_off = arg_int(env, argv[1]), b_off = arg_int(env, argv[2]), c_off = arg_int(env, argv[3]);
  int64_t batch_a = arg_int(env, argv[4]), batch_b = arg_int(env, argv[5]);
  int64_t m = arg_int(env, argv[6]), n = arg_int(env, argv[7]), k = arg_int(env, argv[8]);
  bool trans_a = false, trans_b = false;
  napi_get_value_bool(env, argv[9], &trans_a);
  napi_get_value_bool(env, argv[10], &trans_b);
  int64_t batch = batch_a > batch_b ? batch_a : batch_b;
  int64_t bytes = (int64_t)length;  // a Uint8Array: elements are bytes
  if (type != napi_uint8_array || m <= 0 || n <= 0 || k <= 0 || batch <= 0) {
    napi_throw_range_error(env, "XA_NATIVE_BOUNDS", "sgemm: operands outside the heap or misaligned");
    return NULL;
  }
  const double offs[3] = {(double)a_off, (double)b_off, (double)c_off};
  const double sizes[3] = {(double)(batch_a * m * k), (double)(batch_b * k * n), (double)(batch * m * n)};
  static const char *const names[3] = {"a", "b", "c"};
  OPERANDS_IN_HEAP("sgemm", offs, sizes, names, 3, -1, (size_t)bytes);
  uint8_t *heap = (uint8_t *)data;
  const float *a = (const float *)(heap + a_off);
  const float *b = (const float *)(heap + b_off);
  float *c = (float *)(heap + c_off);
  const int lda = (int)(trans_a ? m : k), ldb = (int)(trans_b ? k : n);
  for (int64_t i = 0; i < batch; i++) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                a + (batch_a == 1 ? 0 : i * m * k), lda, b + (batch_b == 1 ? 0 : i * k * n), ldb, 0.0f, c + i * m * n, (int)n);
  }
  return NULL;
}

/* Forward attention for (batch item, kv head) pairs lo..hi. */
XA_CLONES void attn_fwd_range(void *arg, int64_t lo, int64_t hi) {
  const attn_ctx *c = (const attn_ctx *)arg;
  const layer_dims *m = c->dm;
  const int64_t t = m->t, hd = m->hd, D = m->nh * hd, KV = m->nkv * hd, W = D + 2 * KV, group = m->nh / m->nkv;
  for (int64_t pair = lo; pair < hi; pair++) {
    const int64_t bi = pair / m->nkv, g = pair % m->nkv;
    const float *base = c->qkv + bi * t * W;
    const float *K = base + D + g * hd, *V = base + D + KV + g * hd;
    const int32_t *mask = c->mask ? c->mask + bi * t : NULL;
    for (int64_t h = g * group; h < (g + 1) * group; h++) {
      float *P = c->p + (bi * m->nh + h) * t * t;
      gemm(0, 1, t, t, hd, base + h * hd, W, K, W, 0.0f, P, t);
      for (int64_t i = 0; i < t; i++) {
        /* Hidden keys (future or padded) get exactly 0, as exp(-1e9 - max) is in the unfused path; a row
         * with every key hidden is uniform over all keys there, and here too. */
        float *row = P + i * t;
        float mx = -INFINITY;
        for (int64_t j = 0; j <= i; j++) {
          if (!mask || mask[j] == 1) mx = row[j] > mx ? row[j] : mx;
        }
        if (mx == -INFINITY) {
          for (int64_t j = 0; j < t; j++) row[j] = 1.0f / (float)t;
          continue;
        }
        /* exps first (a loop that vectorizes), then their sum in order */
        if (mask) {
          for (int64_t j = 0; j <= i; j++) row[j] = mask[j] == 1 ? fast_expf(row[j] - mx) : 0.0f;
        } else {
          for (int64_t j = 0; j <= i; j++) row[j] = fast_expf(row[j] - mx);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j <= i; j++) sum += row[j];
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j <= i; j++) row[j] *= inv;
        for (int64_t j = i + 1; j < t; j++) row[j] = 0.0f;
      }
      gemm(0, 0, t, hd, t, P, t, V, W, 0.0f, c->ctx + bi * t * D + h * hd, D);
    }
  }
}

/* Backward attention for (batch item, kv head) pairs lo..hi; each pair writes its own dk/dv columns. */
XA_CLONES void attn_bwd_range(void *arg, int64_t lo, int64_t hi) {
  const attn_ctx *c = (const attn_ctx *)arg;
  const layer_dims *m = c->dm;
  const int64_t t = m->t, hd = m->hd, D = m->nh * hd, KV = m->nkv * hd, W = D + 2 * KV, group = m->nh / m->nkv;
  for (int64_t pair = lo; pair < hi; pair++) {
    const int64_t bi = pair / m->nkv, g = pair % m->nkv;
    float *dS = c->ds_all + pair * t * t;
    const float *base = c->qkv + bi * t * W;
    const float *K = base + D + g * hd, *V = base + D + KV + g * hd;
    float *dbase = c->dqkv + bi * t * W;
    float *dK = dbase + D + g * hd, *dV = dbase + D + KV + g * hd;
    for (int64_t h = g * group; h < (g + 1) * group; h++) {
      const float *P = c->p + (bi * m->nh + h) * t * t;
      const float *dC = c->dctx + bi * t * D + h * hd;
      const float beta = h == g * group ? 0.0f : 1.0f;
      gemm(1, 0, t, hd, t, P, t, dC, D, beta, dV, W);
      gemm(0, 1, t, t, hd, dC, D, V, W, 0.0f, dS, t);
      for (int64_t i = 0; i < t; i++) {
        const float *pr = P + i * t;
        float *dr = dS + i * t;
        float dot = 0.0f;
        for (int64_t j = 0; j < t; j++) dot += pr[j] * dr[j];
        for (int64_t j = 0; j < t; j++) dr[j] = pr[j] * (dr[j] - dot);
      }
      gemm(0, 0, t, hd, t, dS, t, K, W, 0.0f, dbase + h * hd, W);
      gemm(1, 0, t, hd, t, dS, t, base + h * hd, W, beta, dK, W);
    }
  }
}

/* Runs an attention range over b * nkv pairs, split over the elementwise threads when there are several
 * (BLAS then runs one thread per call, restored after). */
void attn_parallel(const layer_dims *m, range_fn fn, attn_ctx *c) {
  const int64_t pairs = m->b * m->nkv;
  const int64_t work = pairs * (m->nh / m->nkv) * m->t * m->t * m->hd;
  if (ew_threads <= 1 || pairs < 2 || work < PARALLEL_MIN * 64) {
    fn(c, 0, pairs);
    return;
  }
  const int blas = get_threads();
  set_threads(1);
  parallel_for(pairs, work, fn, c);
  set_threads(blas);
}
