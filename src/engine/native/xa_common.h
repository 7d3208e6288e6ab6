/*
 * Shared by the kernel files of xalign's native addon (see README.md): includes, the BLAS shims,
 * argument reading, bounds checks, scratch buffers, the thread pool of the elementwise loops, and the
 * few types and row kernels more than one kernel group uses. Functions shared between files are
 * XA_HIDDEN: not exported from the .node, so nothing outside the addon can interpose them.
 */
#ifndef XA_COMMON_H
#define XA_COMMON_H

#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef XALIGN_ACCELERATE
#include <Accelerate/Accelerate.h>
static inline void set_threads(int n) { (void)n; }
static inline int get_threads(void) { return 0; }
static inline const char *blas_name(void) { return "Accelerate"; }
#else
#include <cblas.h>
static inline void set_threads(int n) { openblas_set_num_threads(n); }
static inline int get_threads(void) { return openblas_get_num_threads(); }
static inline const char *blas_name(void) { return openblas_get_config(); }
#endif

/*
 * Hot loops are compiled for AVX-512, AVX2 and baseline x86-64, chosen at load
 * time by the CPU (GCC function multi-versioning), so a build copied to an
 * older machine still runs. Floating-point contraction stays off and no sum
 * is reordered, so every version gives the same bits.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define XA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define XA_CLONES
#endif

#define XA_HIDDEN __attribute__((visibility("hidden")))

/*
 * exp for float32 in a form compilers vectorize (no libm call, no branches):
 * e^x = 2^n * e^r with n = round(x / ln 2), |r| <= ln(2)/2, e^r by a degree-6
 * polynomial (Taylor coefficients; error within 2 ulp of expf over the range
 * the kernels use). Below -87.3 it returns 0 (expf gives a subnormal there).
 */
static inline float fast_expf(float x) {
  const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits */
  float xc = x < -87.3f ? -87.3f : x > 88.3f ? 88.3f : x;
  float t = xc * 1.44269504088896341f + shifter;
  union {
    float f;
    int32_t i;
  } bits = {t};
  const int32_t n = bits.i - 0x4B400000;
  const float nf = t - shifter;
  float r = xc - nf * 0.693145751953125f;
  r = r - nf * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  union {
    int32_t i;
    float f;
  } scale = {(n + 127) << 23};
  const float y = p * scale.f;
  return x < -87.3f ? 0.0f : y;
}

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: " #call); \
      return NULL;                                                   \
    }                                                                \
  } while (0)

#define BOUNDS(cond, what)                                                           \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      napi_throw_range_error(env, "XA_NATIVE_BOUNDS", what ": operands outside the heap"); \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

/* ---- arguments (common.c) ------------------------------------------------- */

#define MAX_ARGS 20

XA_HIDDEN int64_t arg_int(napi_env env, napi_value v);
/* The heap (argv[0], a Uint8Array) and argv[1..count] as doubles (exact for offsets below 2^53). */
XA_HIDDEN uint8_t *heap_nums(napi_env env, napi_callback_info info, size_t count, double *out, size_t *bytes);
/* The heap (argv[0]) and a Float64Array (argv[1]) of any length, written to *length. */
XA_HIDDEN uint8_t *heap_table_any(napi_env env, napi_callback_info info, const double **nums, size_t *length, size_t *bytes);
/* The heap (argv[0]) and a Float64Array of exactly `count` numbers (argv[1]). */
XA_HIDDEN uint8_t *heap_table(napi_env env, napi_callback_info info, size_t count, const double **nums, size_t *bytes);
/* A typed array argument of the given type: its data and element count, or NULL (with an exception pending). */
XA_HIDDEN void *typed_arg(napi_env env, napi_value v, napi_typedarray_type want, size_t *length, const char *what);

/* ---- bounds (common.c) ---------------------------------------------------- */

XA_HIDDEN int in_heap_d(double off, double n, size_t bytes);
/* The first operand i < n (byte offset off[i], sizes[i] elements of 4 bytes) that does not lie in the heap,
 * or -1 when all do; operand `optional` (or -1: none) may instead be absent, given as a negative offset. */
XA_HIDDEN int operand_outside_heap(const double *off, const double *sizes, int n, int optional, size_t bytes);

/* The bounds check of every kernel's operands: off[0..n) (heap byte offsets), sizes[i] floats or int32s
 * each, names[i] naming operand i in the RangeError ("kernel: operands outside the heap (name)"). */
#define OPERANDS_IN_HEAP(what, off, sizes, names, n, optional, bytes)                          \
  do {                                                                                          \
    const int bad_ = operand_outside_heap((off), (sizes), (n), (optional), (bytes));            \
    if (bad_ >= 0) {                                                                            \
      char msg_[200];                                                                           \
      snprintf(msg_, sizeof msg_, "%s: operands outside the heap (%s)", (what), (names)[bad_]); \
      napi_throw_range_error(env, "XA_NATIVE_BOUNDS", msg_);                                    \
      return NULL;                                                                              \
    }                                                                                           \
  } while (0)

/* ---- scratch (common.c) --------------------------------------------------- */

/*
 * Grow-only float scratch buffers, one per slot (one call at a time: N-API calls run on the JS thread).
 * A slot is reused by every kernel that names it; two buffers one call holds at once need two slots.
 * (decodeStep has its own byte scratch, DS_* in decode.c.)
 */
enum {
  SCR_DACT,     /* decoderLayerGrad: d(act) [rows, f] */
  SCR_DGU,      /* decoderLayerGrad: d(gate | up) [rows, 2f] */
  SCR_DXN,      /* decoderLayerGrad, lmHeadLossGrad: d(normalized rows) [rows, d] */
  SCR_DH,       /* decoderLayerGrad: d(h) [rows, d] */
  SCR_DCTX,     /* decoderLayerGrad: d(ctx) [rows, D] */
  SCR_DQKV,     /* decoderLayerGrad: d(q | k | v) [rows, D + 2 KV] */
  SCR_DSCORES,  /* decoderLayerGrad: d(scores) [b * nkv, t, t] */
  SCR_PER_ROW,  /* lmHeadLoss(Grad): per-row loss or gradient scale [rows] */
  SCR_DLOGITS,  /* lmHeadLossGrad: d(logits) [rows, vocab] */
  SCR_WQKV,     /* decoderLayer(Grad): packed [Wq | Wk | Wv] [d, D + 2 KV] */
  SCR_WGU,      /* decoderLayer(Grad): packed [Wg | Wu] [d, 2f] */
  SCR_DW,       /* decoderLayerGrad: packed weight gradient [d, max(D + 2 KV, 2f)] */
  SCR_EXPS,     /* softmaxXent, lmHeadLoss: one row's exps [vocab] */
  SCRATCH_SLOTS
};
XA_HIDDEN float *scratch(int slot, size_t n);

/* ---- parallel loops (common.c) -------------------------------------------- */

extern XA_HIDDEN int ew_threads;
#define MAX_THREADS 16
#define PARALLEL_MIN 32768 /* elements below which one thread does the whole loop */
typedef void (*range_fn)(void *ctx, int64_t lo, int64_t hi);
/* fn over [0, n) in ew_threads contiguous chunks; `work` is the element count the loop touches. */
XA_HIDDEN void parallel_for(int64_t n, int64_t work, range_fn fn, void *ctx);

/* ---- shared by the layer, attention and head kernels ------------------------ */

static inline void gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                 float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b,
              (int)ldb, beta, c, (int)ldc);
}

typedef struct {
  int64_t b, t, d, nh, nkv, hd, f;
} layer_dims;

typedef struct {
  const layer_dims *dm;
  const float *qkv, *dctx; /* qkv [rows, D + 2 KV]: q at column 0, k at D, v at D + KV */
  const int32_t *mask;     /* [b, t] 1 = real token, or NULL */
  float *p, *ctx, *dqkv, *ds_all;
} attn_ctx;


/* gemm_attention.c */
XA_HIDDEN void attn_fwd_range(void *arg, int64_t lo, int64_t hi);
XA_HIDDEN void attn_bwd_range(void *arg, int64_t lo, int64_t hi);
XA_HIDDEN void attn_parallel(const layer_dims *m, range_fn fn, attn_ctx *c);
/* layer.c */
XA_HIDDEN void norm_rows(const float *x, const float *w, float *r, float *y, int64_t rows, int64_t d, float eps);
XA_HIDDEN void norm_rows_grad(const float *x, const float *w, const float *r, const float *dy, const float *base, float *dx, float *dw,
                              int64_t rows, int64_t d);

/* ---- the exported kernels (see README.md) --------------------------------- */

XA_HIDDEN napi_value Sgemm(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value DecoderLayer(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value DecoderLayerGrad(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value SoftmaxXent(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value SoftmaxXentGrad(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value LmHeadLoss(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value LmHeadLossGrad(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value AdamWAll(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value SumSquares(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value RmsNorm(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value RmsNormGrad(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value Swiglu(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value SwigluGrad(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value Rotary(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value Embedding(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value EmbeddingGrad(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value DecodeCreate(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value DecodeStep(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value DecodeSelectRows(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value DecodeLength(napi_env env, napi_callback_info info);
XA_HIDDEN napi_value DecodeFree(napi_env env, napi_callback_info info);

#endif
