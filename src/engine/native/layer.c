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

enum {
  DL_X, DL_W1, DL_WQ, DL_WK, DL_WV, DL_WO, DL_W2, DL_WG, DL_WU, DL_WD, DL_QCOS, DL_QSIN, DL_KCOS, DL_KSIN, DL_MASK, DL_Y, DL_R1, DL_XN1, DL_QKV, DL_P, DL_CTX, DL_H, DL_R2, DL_XN2, DL_GU, DL_ACT,
  DL_OPERANDS, /* the heap offsets above; then the numbers */
  DL_B = DL_OPERANDS, DL_T, DL_D, DL_NH, DL_NKV, DL_HD, DL_F, DL_EPS,
  DL_ARGS
};
/*
 * decoderLayer(heap, Float64Array[34]):
 *   0 x, 1 w1, 2 wq, 3 wk, 4 wv, 5 wo, 6 w2, 7 wg, 8 wu, 9 wd, 10 qcos, 11 qsin, 12 kcos, 13 ksin, 14 mask (-1: none),
 *   15 y, then what the backward pass reads: 16 r1, 17 xn1, 18 qkv, 19 p, 20 ctx, 21 h, 22 r2, 23 xn2, 24 gu, 25 act;
 *   26.. b, t, d, nh, nkv, hd, f; 33 eps.
 */
napi_value DecoderLayer(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, DL_ARGS, &a, &bytes);
  if (!heap) return NULL;
  layer_dims m;
  if (!read_dims(a + DL_B, &m)) {
    napi_throw_range_error(env, "XA_NATIVE_ARGS", "decoderLayer: bad dimensions");
    return NULL;
  }
  const int64_t rows = m.b * m.t, d = m.d, D = m.nh * m.hd, KV = m.nkv * m.hd, W = D + 2 * KV, f = m.f;
  const double R = (double)rows, dd = (double)d, ff = (double)f;
  const double sizes[DL_OPERANDS] = {R * dd, dd, dd * D, dd * KV, dd * KV, (double)D * dd, dd, dd * ff, dd * ff, ff * dd,
                            R * m.hd, R * m.hd, R * m.hd, R * m.hd, R /* int32 */, R * dd, R, R * dd, R * W,
                            (double)m.b * m.nh * m.t * m.t, R * D, R * dd, R, R * dd, R * 2 * ff, R * ff};
  static const char *const names[DL_OPERANDS] = {"x", "w1", "wq", "wk", "wv", "wo", "w2", "wg", "wu", "wd", "qcos", "qsin", "kcos",
                                        "ksin", "mask", "y", "r1", "xn1", "qkv", "p", "ctx", "h", "r2", "xn2", "gu", "act"};
  OPERANDS_IN_HEAP("decoderLayer", a, sizes, names, DL_OPERANDS, DL_MASK, bytes);
  float *wqkv = scratch(SCR_WQKV, (size_t)(d * W)), *wgu = scratch(SCR_WGU, (size_t)(d * 2 * f));
  if (!wqkv || !wgu) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "decoderLayer: out of memory for packed weights");
    return NULL;
  }
  const float eps = (float)a[DL_EPS];
  float *x = F(DL_X), *y = F(DL_Y), *xn1 = F(DL_XN1), *qkv = F(DL_QKV), *ctx = F(DL_CTX), *h = F(DL_H), *xn2 = F(DL_XN2), *gu = F(DL_GU), *act = F(DL_ACT);
  pack3(wqkv, F(DL_WQ), D, F(DL_WK), KV, F(DL_WV), KV, d);
  pack3(wgu, F(DL_WG), f, F(DL_WU), f, NULL, 0, d);
  norm_rows(x, F(DL_W1), F(DL_R1), xn1, rows, d, eps);
  gemm(0, 0, rows, W, d, xn1, d, wqkv, W, 0.0f, qkv, W);
  rotate_heads(qkv, W, F(DL_QCOS), F(DL_QSIN), rows, m.nh, m.hd, 1.0f);
  rotate_heads(qkv + D, W, F(DL_KCOS), F(DL_KSIN), rows, m.nkv, m.hd, 1.0f);
  attn_ctx ac = {&m, qkv, NULL, a[DL_MASK] < 0 ? NULL : (const int32_t *)(heap + (int64_t)a[DL_MASK]), F(DL_P), ctx, NULL, NULL};
  attn_parallel(&m, attn_fwd_range, &ac);
  memcpy(h, x, (size_t)(rows * d) * sizeof(float));
  gemm(0, 0, rows, d, D, ctx, D, F(DL_WO), d, 1.0f, h, d);
  norm_rows(h, F(DL_W2), F(DL_R2), xn2, rows, d, eps);
  gemm(0, 0, rows, 2 * f, d, xn2, d, wgu, 2 * f, 0.0f, gu, 2 * f);
  glu_ctx gc = {gu, NULL, act, NULL, f};
  parallel_for(rows, rows * f, glu_range, &gc);
  memcpy(y, h, (size_t)(rows * d) * sizeof(float));
  gemm(0, 0, rows, d, f, act, f, F(DL_WD), d, 1.0f, y, d);
  return NULL;
}

enum {
  DG_DY, DG_X, DG_W1, DG_WQ, DG_WK, DG_WV, DG_WO, DG_W2, DG_WG, DG_WU, DG_WD, DG_QCOS, DG_QSIN, DG_KCOS, DG_KSIN, DG_R1, DG_XN1, DG_QKV, DG_P, DG_CTX, DG_H, DG_R2, DG_XN2, DG_GU, DG_ACT, DG_DX, DG_DW1, DG_DWQ, DG_DWK, DG_DWV, DG_DWO, DG_DW2, DG_DWG, DG_DWU, DG_DWD,
  DG_OPERANDS, /* the heap offsets above; then the numbers */
  DG_B = DG_OPERANDS, DG_T, DG_D, DG_NH, DG_NKV, DG_HD, DG_F,
  DG_ARGS
};
/*
 * decoderLayerGrad(heap, Float64Array[42]):
 *   0 dy, 1 x, 2 w1, 3 wq, 4 wk, 5 wv, 6 wo, 7 w2, 8 wg, 9 wu, 10 wd, 11 qcos, 12 qsin, 13 kcos, 14 ksin,
 *   15 r1, 16 xn1, 17 qkv, 18 p, 19 ctx, 20 h, 21 r2, 22 xn2, 23 gu, 24 act,
 *   outputs 25 dx, 26 dw1, 27 dwq, 28 dwk, 29 dwv, 30 dwo, 31 dw2, 32 dwg, 33 dwu, 34 dwd; 35.. b, t, d, nh, nkv, hd, f.
 */
napi_value DecoderLayerGrad(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, DG_ARGS, &a, &bytes);
  if (!heap) return NULL;
  layer_dims m;
  if (!read_dims(a + DG_B, &m)) {
    napi_throw_range_error(env, "XA_NATIVE_ARGS", "decoderLayerGrad: bad dimensions");
    return NULL;
  }
  const int64_t rows = m.b * m.t, d = m.d, D = m.nh * m.hd, KV = m.nkv * m.hd, W = D + 2 * KV, f = m.f;
  const double R = (double)rows, dd = (double)d, ff = (double)f;
  const double sizes[DG_OPERANDS] = {R * dd, R * dd, dd, dd * D, dd * KV, dd * KV, (double)D * dd, dd, dd * ff, dd * ff, ff * dd,
                            R * m.hd, R * m.hd, R * m.hd, R * m.hd, R, R * dd, R * W, (double)m.b * m.nh * m.t * m.t,
                            R * D, R * dd, R, R * dd, R * 2 * ff, R * ff, R * dd, dd, dd * D, dd * KV, dd * KV,
                            (double)D * dd, dd, dd * ff, dd * ff, ff * dd};
  static const char *const names[DG_OPERANDS] = {"dy",  "x",   "w1",  "wq",  "wk",  "wv",  "wo",  "w2",  "wg",  "wu",  "wd",  "qcos",
                                        "qsin", "kcos", "ksin", "r1", "xn1", "qkv", "p",  "ctx", "h",   "r2",  "xn2", "gu",
                                        "act", "dx",  "dw1", "dwq", "dwk", "dwv", "dwo", "dw2", "dwg", "dwu", "dwd"};
  OPERANDS_IN_HEAP("decoderLayerGrad", a, sizes, names, DG_OPERANDS, -1, bytes);
  float *dact = scratch(SCR_DACT, (size_t)(rows * f)), *dgu = scratch(SCR_DGU, (size_t)(rows * 2 * f)), *dxn = scratch(SCR_DXN, (size_t)(rows * d));
  float *dh = scratch(SCR_DH, (size_t)(rows * d)), *dctx = scratch(SCR_DCTX, (size_t)(rows * D)), *dqkv = scratch(SCR_DQKV, (size_t)(rows * W));
  float *ds = scratch(SCR_DSCORES, (size_t)(m.b * m.nkv * m.t * m.t));
  float *wqkv = scratch(SCR_WQKV, (size_t)(d * W)), *wgu = scratch(SCR_WGU, (size_t)(d * 2 * f));
  float *dw = scratch(SCR_DW, (size_t)(d * (W > 2 * f ? W : 2 * f)));
  if (!dact || !dgu || !dxn || !dh || !dctx || !dqkv || !ds || !wqkv || !wgu || !dw) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "decoderLayerGrad: out of memory for scratch buffers");
    return NULL;
  }
  const float *dy = F(DG_DY), *x = F(DG_X), *xn1 = F(DG_XN1), *h = F(DG_H), *xn2 = F(DG_XN2);
  pack3(wqkv, F(DG_WQ), D, F(DG_WK), KV, F(DG_WV), KV, d);
  pack3(wgu, F(DG_WG), f, F(DG_WU), f, NULL, 0, d);
  /* feed-forward */
  gemm(1, 0, f, d, rows, F(DG_ACT), f, dy, d, 0.0f, F(DG_DWD), d);
  gemm(0, 1, rows, f, d, dy, d, F(DG_WD), d, 0.0f, dact, f);
  glu_ctx gc = {F(DG_GU), dact, NULL, dgu, f};
  parallel_for(rows, rows * f, glu_grad_range, &gc);
  gemm(1, 0, d, 2 * f, rows, xn2, d, dgu, 2 * f, 0.0f, dw, 2 * f);
  unpack3(dw, F(DG_DWG), f, F(DG_DWU), f, NULL, 0, d);
  gemm(0, 1, rows, d, 2 * f, dgu, 2 * f, wgu, 2 * f, 0.0f, dxn, d);
  norm_rows_grad(h, F(DG_W2), F(DG_R2), dxn, dy, dh, F(DG_DW2), rows, d);
  /* attention */
  gemm(1, 0, D, d, rows, F(DG_CTX), D, dh, d, 0.0f, F(DG_DWO), d);
  gemm(0, 1, rows, D, d, dh, d, F(DG_WO), d, 0.0f, dctx, D);
  attn_ctx ac = {&m, F(DG_QKV), dctx, NULL, F(DG_P), NULL, dqkv, ds};
  attn_parallel(&m, attn_bwd_range, &ac);
  rotate_heads(dqkv, W, F(DG_QCOS), F(DG_QSIN), rows, m.nh, m.hd, -1.0f);
  rotate_heads(dqkv + D, W, F(DG_KCOS), F(DG_KSIN), rows, m.nkv, m.hd, -1.0f);
  gemm(1, 0, d, W, rows, xn1, d, dqkv, W, 0.0f, dw, W);
  unpack3(dw, F(DG_DWQ), D, F(DG_DWK), KV, F(DG_DWV), KV, d);
  gemm(0, 1, rows, d, W, dqkv, W, wqkv, W, 0.0f, dxn, d);
  norm_rows_grad(x, F(DG_W1), F(DG_R1), dxn, dh, F(DG_DX), F(DG_DW1), rows, d);
  return NULL;
}
#undef F
