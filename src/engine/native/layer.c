/* The fused LLaMA decoder layer: decoderLayer, decoderLayerGrad. */
#include "xa_common.h"

/* ---- fused LLaMA decoder layer ----------------------------------------- */
/*
 * One pre-norm decoder layer, forward and backward, over rows [b * t, d]:
 *   xn1 = rmsnorm(x) * w1;  [q | k | v] = xn1 [Wq | Wk | Wv]  (one GEMM)
 *   q, k rotated (rotate-half) with per-row tables (the attention scale rides
 *   on q's tables); per batch item and head, P = softmax(q k^T + bias),
 *   bias -1e9 on future keys and padded keys (as the unfused path adds it);
 *   ctx = P v;  h = x + ctx Wo
 *   xn2 = rmsnorm(h) * w2;  [gate | up] = xn2 [Wg | Wu]  (one GEMM)
 *   y = h + (silu(gate) * up) Wd
 * Heads are read and written in place with BLAS strides: no transposes.
 * Query heads h*group .. h*group+group-1 share key/value head h (GQA).
 */

/* [rows, c0 + c1 + c2] from three row-major matrices [rows, ci] side by side (c2 may be 0). */
static void pack3(float *out, const float *a, int64_t c0, const float *b, int64_t c1, const float *c, int64_t c2, int64_t rows) {
  const int64_t w = c0 + c1 + c2;
  for (int64_t r = 0; r < rows; r++) {
    memcpy(out + r * w, a + r * c0, (size_t)c0 * sizeof(float));
    memcpy(out + r * w + c0, b + r * c1, (size_t)c1 * sizeof(float));
    if (c2) memcpy(out + r * w + c0 + c1, c + r * c2, (size_t)c2 * sizeof(float));
  }
}

/* The inverse of pack3. */
static void unpack3(const float *in, float *a, int64_t c0, float *b, int64_t c1, float *c, int64_t c2, int64_t rows) {
  const int64_t w = c0 + c1 + c2;
  for (int64_t r = 0; r < rows; r++) {
    memcpy(a + r * c0, in + r * w, (size_t)c0 * sizeof(float));
    memcpy(b + r * c1, in + r * w + c0, (size_t)c1 * sizeof(float));
    if (c2) memcpy(c + r * c2, in + r * w + c0 + c1, (size_t)c2 * sizeof(float));
  }
}

/* Rotary on `heads` heads of each row (row r at x + r * ld, table row r) in place; sign -1 is the transpose. */
XA_CLONES static void rotate_heads(float *x, int64_t ld, const float *cos, const float *sin, int64_t rows, int64_t heads, int64_t hd, float sign) {
  const int64_t half = hd / 2;
  for (int64_t r = 0; r < rows; r++) {
    const float *cs = cos + r * hd, *ss = sin + r * hd;
    for (int64_t h = 0; h < heads; h++) {
      float *y = x + r * ld + h * hd;
      for (int64_t i = 0; i < half; i++) {
        const float a = y[i], b = y[i + half];
        y[i] = a * cs[i] - sign * b * ss[i];
        y[i + half] = b * cs[i + half] + sign * a * ss[i + half];
      }
    }
  }
}

/* y = (x * r) * w per row, r = 1/sqrt(mean(x^2) + eps) kept. */
XA_CLONES void norm_rows(const float *x, const float *w, float *r, float *y, int64_t rows, int64_t d, float eps) {
  for (int64_t row = 0; row < rows; row++) {
    const float *xr = x + row * d;
    float *yr = y + row * d;
    double ss = 0;
    for (int64_t i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
    const float rr = 1.0f / sqrtf((float)(ss / (double)d) + eps);
    r[row] = rr;
    for (int64_t i = 0; i < d; i++) yr[i] = (xr[i] * rr) * w[i];
  }
}

/* Backward of y = (x * r) * w: dw = sum over rows of dy * (x * r); dx = base + d(x * r)/dx applied to dy * w. */
XA_CLONES void norm_rows_grad(const float *x, const float *w, const float *r, const float *dy, const float *base, float *dx, float *dw,
                           int64_t rows, int64_t d) {
  for (int64_t i = 0; i < d; i++) dw[i] = 0.0f;
  for (int64_t row = 0; row < rows; row++) {
    const float *xr = x + row * d, *dyr = dy + row * d, *br = base + row * d;
    float *dxr = dx + row * d;
    const float rr = r[row];
    double dot = 0;
    for (int64_t i = 0; i < d; i++) {
      const float dn = dyr[i] * w[i];
      dw[i] += dyr[i] * (xr[i] * rr);
      dot += (double)dn * xr[i];
    }
    const float k = (float)(dot * (double)rr * rr * rr / (double)d);
    for (int64_t i = 0; i < d; i++) dxr[i] = br[i] + ((dyr[i] * w[i]) * rr - xr[i] * k);
  }
}

/* silu(gate) * up and its gradient, over rows whose gate and up halves sit side by side ([rows, 2f]). */
typedef struct {
  const float *gu, *dact;
  float *act, *dgu;
  int64_t f;
} glu_ctx;

XA_CLONES static void glu_range(void *arg, int64_t lo, int64_t hi) {
  const glu_ctx *c = (const glu_ctx *)arg;
  const int64_t f = c->f;
  for (int64_t r = lo; r < hi; r++) {
    const float *g = c->gu + r * 2 * f, *u = g + f;
    float *y = c->act + r * f;
    for (int64_t i = 0; i < f; i++) {
      const float s = 1.0f / (1.0f + fast_expf(-g[i]));
      y[i] = g[i] * s * u[i];
    }
  }
}

XA_CLONES static void glu_grad_range(void *arg, int64_t lo, int64_t hi) {
  const glu_ctx *c = (const glu_ctx *)arg;
  const int64_t f = c->f;
  for (int64_t r = lo; r < hi; r++) {
    const float *g = c->gu + r * 2 * f, *u = g + f, *dy = c->dact + r * f;
    float *dg = c->dgu + r * 2 * f, *du = dg + f;
    for (int64_t i = 0; i < f; i++) {
      const float s = 1.0f / (1.0f + fast_expf(-g[i]));
      du[i] = dy[i] * g[i] * s;
      dg[i] = dy[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
  }
}

static int read_dims(const double *a, layer_dims *m) {
  m->b = (int64_t)a[0];
  m->t = (int64_t)a[1];
  m->d = (int64_t)a[2];
  m->nh = (int64_t)a[3];
  m->nkv = (int64_t)a[4];
  m->hd = (int64_t)a[5];
  m->f = (int64_t)a[6];
  return m->b > 0 && m->t > 0 && m->d > 0 && m->nh > 0 && m->nkv > 0 && m->nh % m->nkv == 0 && m->hd > 0 && m->hd % 2 == 0 && m->f > 0;
}

#define F(i) ((float *)(heap + (int64_t)a[i]))

/*
 * decoderLayer(heap, Float64Array[34]):
 *   0 x, 1 w1, 2 wq, 3 wk, 4 wv, 5 wo, 6 w2, 7 wg, 8 wu, 9 wd, 10 qcos, 11 qsin, 12 kcos, 13 ksin, 14 mask (-1: none),
 *   15 y, then what the backward pass reads: 16 r1, 17 xn1, 18 qkv, 19 p, 20 ctx, 21 h, 22 r2, 23 xn2, 24 gu, 25 act;
 *   26.. b, t, d, nh, nkv, hd, f; 33 eps.
 */
napi_value DecoderLayer(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, 34, &a, &bytes);
  if (!heap) return NULL;
  layer_dims m;
  if (!read_dims(a + 26, &m)) {
    napi_throw_range_error(env, "XA_NATIVE_ARGS", "decoderLayer: bad dimensions");
    return NULL;
  }
  const int64_t rows = m.b * m.t, d = m.d, D = m.nh * m.hd, KV = m.nkv * m.hd, W = D + 2 * KV, f = m.f;
  const double R = (double)rows, dd = (double)d, ff = (double)f;
  const double sizes[26] = {R * dd, dd, dd * D, dd * KV, dd * KV, (double)D * dd, dd, dd * ff, dd * ff, ff * dd,
                            R * m.hd, R * m.hd, R * m.hd, R * m.hd, R /* int32 */, R * dd, R, R * dd, R * W,
                            (double)m.b * m.nh * m.t * m.t, R * D, R * dd, R, R * dd, R * 2 * ff, R * ff};
  static const char *const names[26] = {"x", "w1", "wq", "wk", "wv", "wo", "w2", "wg", "wu", "wd", "qcos", "qsin", "kcos",
                                        "ksin", "mask", "y", "r1", "xn1", "qkv", "p", "ctx", "h", "r2", "xn2", "gu", "act"};
  OPERANDS_IN_HEAP("decoderLayer", a, sizes, names, 26, 14, bytes);
  float *wqkv = scratch(SCR_WQKV, (size_t)(d * W)), *wgu = scratch(SCR_WGU, (size_t)(d * 2 * f));
  if (!wqkv || !wgu) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "decoderLayer: out of memory for packed weights");
    return NULL;
  }
  const float eps = (float)a[33];
  float *x = F(0), *y = F(15), *xn1 = F(17), *qkv = F(18), *ctx = F(20), *h = F(21), *xn2 = F(23), *gu = F(24), *act = F(25);
  pack3(wqkv, F(2), D, F(3), KV, F(4), KV, d);
  pack3(wgu, F(7), f, F(8), f, NULL, 0, d);
  norm_rows(x, F(1), F(16), xn1, rows, d, eps);
  gemm(0, 0, rows, W, d, xn1, d, wqkv, W, 0.0f, qkv, W);
  rotate_heads(qkv, W, F(10), F(11), rows, m.nh, m.hd, 1.0f);
  rotate_heads(qkv + D, W, F(12), F(13), rows, m.nkv, m.hd, 1.0f);
  attn_ctx ac = {&m, qkv, NULL, a[14] < 0 ? NULL : (const int32_t *)(heap + (int64_t)a[14]), F(19), ctx, NULL, NULL};
  attn_parallel(&m, attn_fwd_range, &ac);
  memcpy(h, x, (size_t)(rows * d) * sizeof(float));
  gemm(0, 0, rows, d, D, ctx, D, F(5), d, 1.0f, h, d);
  norm_rows(h, F(6), F(22), xn2, rows, d, eps);
  gemm(0, 0, rows, 2 * f, d, xn2, d, wgu, 2 * f, 0.0f, gu, 2 * f);
  glu_ctx gc = {gu, NULL, act, NULL, f};
  parallel_for(rows, rows * f, glu_range, &gc);
  memcpy(y, h, (size_t)(rows * d) * sizeof(float));
  gemm(0, 0, rows, d, f, act, f, F(9), d, 1.0f, y, d);
  return NULL;
}

/*
 * decoderLayerGrad(heap, Float64Array[42]):
 *   0 dy, 1 x, 2 w1, 3 wq, 4 wk, 5 wv, 6 wo, 7 w2, 8 wg, 9 wu, 10 wd, 11 qcos, 12 qsin, 13 kcos, 14 ksin,
 *   15 r1, 16 xn1, 17 qkv, 18 p, 19 ctx, 20 h, 21 r2, 22 xn2, 23 gu, 24 act,
 *   outputs 25 dx, 26 dw1, 27 dwq, 28 dwk, 29 dwv, 30 dwo, 31 dw2, 32 dwg, 33 dwu, 34 dwd; 35.. b, t, d, nh, nkv, hd, f.
 */
napi_value DecoderLayerGrad(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, 42, &a, &bytes);
  if (!heap) return NULL;
  layer_dims m;
  if (!read_dims(a + 35, &m)) {
    napi_throw_range_error(env, "XA_NATIVE_ARGS", "decoderLayerGrad: bad dimensions");
    return NULL;
  }
  const int64_t rows = m.b * m.t, d = m.d, D = m.nh * m.hd, KV = m.nkv * m.hd, W = D + 2 * KV, f = m.f;
  const double R = (double)rows, dd = (double)d, ff = (double)f;
  const double sizes[35] = {R * dd, R * dd, dd, dd * D, dd * KV, dd * KV, (double)D * dd, dd, dd * ff, dd * ff, ff * dd,
                            R * m.hd, R * m.hd, R * m.hd, R * m.hd, R, R * dd, R * W, (double)m.b * m.nh * m.t * m.t,
                            R * D, R * dd, R, R * dd, R * 2 * ff, R * ff, R * dd, dd, dd * D, dd * KV, dd * KV,
                            (double)D * dd, dd, dd * ff, dd * ff, ff * dd};
  static const char *const names[35] = {"dy",  "x",   "w1",  "wq",  "wk",  "wv",  "wo",  "w2",  "wg",  "wu",  "wd",  "qcos",
                                        "qsin", "kcos", "ksin", "r1", "xn1", "qkv", "p",  "ctx", "h",   "r2",  "xn2", "gu",
                                        "act", "dx",  "dw1", "dwq", "dwk", "dwv", "dwo", "dw2", "dwg", "dwu", "dwd"};
  OPERANDS_IN_HEAP("decoderLayerGrad", a, sizes, names, 35, -1, bytes);
  float *dact = scratch(SCR_DACT, (size_t)(rows * f)), *dgu = scratch(SCR_DGU, (size_t)(rows * 2 * f)), *dxn = scratch(SCR_DXN, (size_t)(rows * d));
  float *dh = scratch(SCR_DH, (size_t)(rows * d)), *dctx = scratch(SCR_DCTX, (size_t)(rows * D)), *dqkv = scratch(SCR_DQKV, (size_t)(rows * W));
  float *ds = scratch(SCR_DSCORES, (size_t)(m.b * m.nkv * m.t * m.t));
  float *wqkv = scratch(SCR_WQKV, (size_t)(d * W)), *wgu = scratch(SCR_WGU, (size_t)(d * 2 * f));
  float *dw = scratch(SCR_DW, (size_t)(d * (W > 2 * f ? W : 2 * f)));
  if (!dact || !dgu || !dxn || !dh || !dctx || !dqkv || !ds || !wqkv || !wgu || !dw) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "decoderLayerGrad: out of memory for scratch buffers");
    return NULL;
  }
  const float *dy = F(0), *x = F(1), *xn1 = F(16), *h = F(20), *xn2 = F(22);
  pack3(wqkv, F(3), D, F(4), KV, F(5), KV, d);
  pack3(wgu, F(8), f, F(9), f, NULL, 0, d);
  /* feed-forward */
  gemm(1, 0, f, d, rows, F(24), f, dy, d, 0.0f, F(34), d);
  gemm(0, 1, rows, f, d, dy, d, F(10), d, 0.0f, dact, f);
  glu_ctx gc = {F(23), dact, NULL, dgu, f};
  parallel_for(rows, rows * f, glu_grad_range, &gc);
  gemm(1, 0, d, 2 * f, rows, xn2, d, dgu, 2 * f, 0.0f, dw, 2 * f);
  unpack3(dw, F(32), f, F(33), f, NULL, 0, d);
  gemm(0, 1, rows, d, 2 * f, dgu, 2 * f, wgu, 2 * f, 0.0f, dxn, d);
  norm_rows_grad(h, F(7), F(21), dxn, dy, dh, F(31), rows, d);
  /* attention */
  gemm(1, 0, D, d, rows, F(19), D, dh, d, 0.0f, F(30), d);
  gemm(0, 1, rows, D, d, dh, d, F(6), d, 0.0f, dctx, D);
  attn_ctx ac = {&m, F(17), dctx, NULL, F(18), NULL, dqkv, ds};
  attn_parallel(&m, attn_bwd_range, &ac);
  rotate_heads(dqkv, W, F(11), F(12), rows, m.nh, m.hd, -1.0f);
  rotate_heads(dqkv + D, W, F(13), F(14), rows, m.nkv, m.hd, -1.0f);
  gemm(1, 0, d, W, rows, xn1, d, dqkv, W, 0.0f, dw, W);
  unpack3(dw, F(27), D, F(28), KV, F(29), KV, d);
  gemm(0, 1, rows, d, W, dqkv, W, wqkv, W, 0.0f, dxn, d);
  norm_rows_grad(x, F(2), F(15), dxn, dh, F(25), F(26), rows, d);
  return NULL;
}
#undef F
