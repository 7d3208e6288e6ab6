/*
 * xalign's native kernels for the TF.js wasm backend: sgemm through the
 * platform BLAS (OpenBLAS on Linux, Accelerate on macOS), reading and writing
 * the wasm heap in place, so a matMul costs no copies.
 *
 * Exports:
 *   sgemm(heap: Uint8Array, aOff, bOff, cOff, batchA, batchB, m, n, k, transA, transB)
 *     C[i] = op(A[i]) x op(B[i]) for i < max(batchA, batchB), row-major,
 *     offsets in bytes into `heap`; a batch of 1 is broadcast.
 *   softmaxXent(heap, logitsOff, labelsOff, lossOff, lseOff, rows, vocab)
 *     fused softmax cross-entropy: loss[r] = logsumexp(logits[r]) - logits[r][label[r]]
 *     (0 where label < 0), and the row's logsumexp kept for the gradient.
 *   softmaxXentGrad(heap, logitsOff, labelsOff, lseOff, dyOff, dxOff, rows, vocab)
 *     dx[r][v] = dy[r] * (softmax(logits[r])[v] - [v == label[r]]), 0 where label < 0.
 *   adamw(heap, p, g, m, v, out, n, beta1, 1-beta1, beta2, 1-beta2, bc1, bc2, eps, lr, lr*wd, decay)
 *     one AdamW step over one variable: m and v updated in place, the new
 *     parameter written to `out`, with the float32 operations of
 *     src/train/adamw.ts in the same order (so results match it bit for bit).
 *   rmsNorm(heap, x, y, r, rows, d, eps) / rmsNormGrad(heap, x, r, dy, dx, rows, d)
 *     y = x * r with r = 1/sqrt(mean(x^2) + eps) per row (kept for the gradient).
 *   swiglu(heap, gate, up, y, n) / swigluGrad(heap, gate, up, dy, dgate, dup, n)
 *     y = gate * sigmoid(gate) * up.
 *   rotary(heap, x, cos, sin, y, rows, t, d, sign)
 *     y = x * cos + rotate_half(x) * sign * sin over rows of d, row r using table row r % t.
 *   setThreads(n), getThreads(), blas(): string
 *   setElementwiseThreads(n): the fused kernels above split their loops over n
 *     pthreads (default 1) when the work is large enough to pay for the start.
 */
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#ifdef XALIGN_ACCELERATE
#include <Accelerate/Accelerate.h>
static void set_threads(int n) { (void)n; }
static int get_threads(void) { return 0; }
static const char *blas_name(void) { return "Accelerate"; }
#else
#include <cblas.h>
static void set_threads(int n) { openblas_set_num_threads(n); }
static int get_threads(void) { return openblas_get_num_threads(); }
static const char *blas_name(void) { return openblas_get_config(); }
#endif

#define CHECK(call)                                                  \
  do {                                                               \
    if ((call) != napi_ok) {                                         \
      napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: " #call); \
      return NULL;                                                   \
    }                                                                \
  } while (0)

static int64_t arg_int(napi_env env, napi_value v) {
  int64_t out = 0;
  napi_get_value_int64(env, v, &out);
  return out;
}

static napi_value Sgemm(napi_env env, napi_callback_info info) {
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
  if (type != napi_uint8_array || m <= 0 || n <= 0 || k <= 0 || batch <= 0 || a_off < 0 || b_off < 0 || c_off < 0 ||
      a_off + batch_a * m * k * 4 > bytes || b_off + batch_b * k * n * 4 > bytes || c_off + batch * m * n * 4 > bytes ||
      (a_off | b_off | c_off) % 4 != 0) {
    napi_throw_range_error(env, "XA_NATIVE_BOUNDS", "sgemm: operands outside the heap or misaligned");
    return NULL;
  }
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

/* Reads a Uint8Array view of the heap and `count` integer arguments after it. */
static uint8_t *heap_args(napi_env env, napi_callback_info info, size_t count, int64_t *out, size_t *bytes) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != count + 1) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: wrong number of arguments");
    return NULL;
  }
  napi_typedarray_type type;
  void *data;
  napi_value buffer;
  size_t byte_offset;
  if (napi_get_typedarray_info(env, argv[0], &type, bytes, &data, &buffer, &byte_offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: the heap must be a Uint8Array");
    return NULL;
  }
  for (size_t i = 0; i < count; i++) out[i] = arg_int(env, argv[i + 1]);
  return (uint8_t *)data;
}

static int in_heap(int64_t off, int64_t n, size_t bytes) { return off >= 0 && off % 4 == 0 && off + n * 4 <= (int64_t)bytes; }

static napi_value SoftmaxXent(napi_env env, napi_callback_info info) {
  int64_t a[6];
  size_t bytes;
  uint8_t *heap = heap_args(env, info, 6, a, &bytes);
  if (!heap) return NULL;
  int64_t rows = a[4], vocab = a[5];
  if (rows < 0 || vocab <= 0 || !in_heap(a[0], rows * vocab, bytes) || !in_heap(a[1], rows, bytes) || !in_heap(a[2], rows, bytes) ||
      !in_heap(a[3], rows, bytes)) {
    napi_throw_range_error(env, "XA_NATIVE_BOUNDS", "softmaxXent: operands outside the heap");
    return NULL;
  }
  const float *logits = (const float *)(heap + a[0]);
  const int32_t *labels = (const int32_t *)(heap + a[1]);
  float *loss = (float *)(heap + a[2]);
  float *lse_out = (float *)(heap + a[3]);
  for (int64_t r = 0; r < rows; r++) {
    const float *x = logits + r * vocab;
    float mx = x[0];
    for (int64_t v = 1; v < vocab; v++) mx = x[v] > mx ? x[v] : mx;
    double sum = 0;
    for (int64_t v = 0; v < vocab; v++) sum += expf(x[v] - mx);
    float lse = mx + (float)log(sum);
    lse_out[r] = lse;
    int32_t label = labels[r];
    loss[r] = (label >= 0 && label < vocab) ? lse - x[label] : 0.0f;
  }
  return NULL;
}

static napi_value SoftmaxXentGrad(napi_env env, napi_callback_info info) {
  int64_t a[7];
  size_t bytes;
  uint8_t *heap = heap_args(env, info, 7, a, &bytes);
  if (!heap) return NULL;
  int64_t rows = a[5], vocab = a[6];
  if (rows < 0 || vocab <= 0 || !in_heap(a[0], rows * vocab, bytes) || !in_heap(a[1], rows, bytes) || !in_heap(a[2], rows, bytes) ||
      !in_heap(a[3], rows, bytes) || !in_heap(a[4], rows * vocab, bytes)) {
    napi_throw_range_error(env, "XA_NATIVE_BOUNDS", "softmaxXentGrad: operands outside the heap");
    return NULL;
  }
  const float *logits = (const float *)(heap + a[0]);
  const int32_t *labels = (const int32_t *)(heap + a[1]);
  const float *lse = (const float *)(heap + a[2]);
  const float *dy = (const float *)(heap + a[3]);
  float *dx = (float *)(heap + a[4]);
  for (int64_t r = 0; r < rows; r++) {
    const float *x = logits + r * vocab;
    float *g = dx + r * vocab;
    int32_t label = labels[r];
    if (label < 0 || label >= vocab) {
      for (int64_t v = 0; v < vocab; v++) g[v] = 0.0f;
      continue;
    }
    const float scale = dy[r], l = lse[r];
    for (int64_t v = 0; v < vocab; v++) g[v] = scale * expf(x[v] - l);
    g[label] -= scale;
  }
  return NULL;
}

/* ---- parallel loops ---------------------------------------------------- */

static int ew_threads = 1;
#define MAX_THREADS 16
#define PARALLEL_MIN 32768 /* elements below which one thread does the whole loop */

typedef void (*range_fn)(void *ctx, int64_t lo, int64_t hi);
typedef struct {
  range_fn fn;
  void *ctx;
  int64_t lo, hi;
} range_job;

static void *run_range(void *arg) {
  range_job *j = (range_job *)arg;
  j->fn(j->ctx, j->lo, j->hi);
  return NULL;
}

/* fn over [0, n) in ew_threads contiguous chunks; `work` is the element count the loop touches. */
static void parallel_for(int64_t n, int64_t work, range_fn fn, void *ctx) {
  int t = ew_threads;
  if (t > n) t = (int)n;
  if (t <= 1 || work < PARALLEL_MIN) {
    fn(ctx, 0, n);
    return;
  }
  pthread_t ids[MAX_THREADS];
  range_job jobs[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  for (int i = 0; i < t; i++) {
    jobs[i].fn = fn;
    jobs[i].ctx = ctx;
    jobs[i].lo = n * i / t;
    jobs[i].hi = n * (i + 1) / t;
  }
  for (int i = 1; i < t; i++) started[i] = pthread_create(&ids[i], NULL, run_range, &jobs[i]) == 0;
  run_range(&jobs[0]);
  for (int i = 1; i < t; i++) {
    if (started[i]) pthread_join(ids[i], NULL);
    else run_range(&jobs[i]);
  }
}

/* ---- arguments --------------------------------------------------------- */

#define MAX_ARGS 20

/* The heap (argv[0], a Uint8Array) and argv[1..count] as doubles (exact for offsets below 2^53). */
static uint8_t *heap_nums(napi_env env, napi_callback_info info, size_t count, double *out, size_t *bytes) {
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  if (count + 1 > MAX_ARGS || napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != count + 1) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: wrong number of arguments");
    return NULL;
  }
  napi_typedarray_type type;
  void *data;
  napi_value buffer;
  size_t byte_offset;
  if (napi_get_typedarray_info(env, argv[0], &type, bytes, &data, &buffer, &byte_offset) != napi_ok || type != napi_uint8_array) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: the heap must be a Uint8Array");
    return NULL;
  }
  for (size_t i = 0; i < count; i++) {
    if (napi_get_value_double(env, argv[i + 1], &out[i]) != napi_ok) {
      napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: arguments after the heap must be numbers");
      return NULL;
    }
  }
  return (uint8_t *)data;
}

static int in_heap_d(double off, double n, size_t bytes) {
  return off >= 0 && n >= 0 && (int64_t)off % 4 == 0 && off + n * 4 <= (double)bytes;
}

#define BOUNDS(cond, what)                                                           \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      napi_throw_range_error(env, "XA_NATIVE_BOUNDS", what ": operands outside the heap"); \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

/* ---- AdamW ------------------------------------------------------------- */

typedef struct {
  float *p, *m, *v, *out;
  const float *g;
  float b1, omb1, b2, omb2, bc1, bc2, eps, lr, lrwd;
  int decay;
} adamw_ctx;

static void adamw_range(void *arg, int64_t lo, int64_t hi) {
  const adamw_ctx *c = (const adamw_ctx *)arg;
  for (int64_t i = lo; i < hi; i++) {
    const float g = c->g[i];
    const float m = c->m[i] * c->b1 + g * c->omb1;
    const float v = c->v[i] * c->b2 + (g * g) * c->omb2;
    const float update = (m / c->bc1) / (sqrtf(v / c->bc2) + c->eps);
    const float p = c->p[i];
    const float decayed = c->decay ? p - p * c->lrwd : p;
    c->m[i] = m;
    c->v[i] = v;
    c->out[i] = decayed - update * c->lr;
  }
}

static napi_value AdamW(napi_env env, napi_callback_info info) {
  double a[16];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 16, a, &bytes);
  if (!heap) return NULL;
  const double n = a[5];
  BOUNDS(in_heap_d(a[0], n, bytes) && in_heap_d(a[1], n, bytes) && in_heap_d(a[2], n, bytes) && in_heap_d(a[3], n, bytes) &&
             in_heap_d(a[4], n, bytes),
         "adamw");
  adamw_ctx c = {
      (float *)(heap + (int64_t)a[0]), (float *)(heap + (int64_t)a[2]), (float *)(heap + (int64_t)a[3]),
      (float *)(heap + (int64_t)a[4]), (const float *)(heap + (int64_t)a[1]),
      (float)a[6], (float)a[7], (float)a[8], (float)a[9], (float)a[10], (float)a[11], (float)a[12], (float)a[13], (float)a[14],
      a[15] != 0,
  };
  parallel_for((int64_t)n, (int64_t)n, adamw_range, &c);
  return NULL;
}

/* ---- RMSNorm ----------------------------------------------------------- */

typedef struct {
  const float *x, *dy;
  float *y, *r, *dx;
  const float *rin;
  int64_t d;
  float eps;
} rms_ctx;

static void rms_range(void *arg, int64_t lo, int64_t hi) {
  const rms_ctx *c = (const rms_ctx *)arg;
  const int64_t d = c->d;
  for (int64_t row = lo; row < hi; row++) {
    const float *x = c->x + row * d;
    float *y = c->y + row * d;
    double ss = 0;
    for (int64_t i = 0; i < d; i++) ss += (double)x[i] * x[i];
    const float r = 1.0f / sqrtf((float)(ss / (double)d) + c->eps);
    c->r[row] = r;
    for (int64_t i = 0; i < d; i++) y[i] = x[i] * r;
  }
}

static void rms_grad_range(void *arg, int64_t lo, int64_t hi) {
  const rms_ctx *c = (const rms_ctx *)arg;
  const int64_t d = c->d;
  for (int64_t row = lo; row < hi; row++) {
    const float *x = c->x + row * d;
    const float *dy = c->dy + row * d;
    float *dx = c->dx + row * d;
    const float r = c->rin[row];
    double dot = 0;
    for (int64_t i = 0; i < d; i++) dot += (double)dy[i] * x[i];
    const float k = (float)(dot * (double)r * r * r / (double)d);
    for (int64_t i = 0; i < d; i++) dx[i] = dy[i] * r - x[i] * k;
  }
}

static napi_value RmsNorm(napi_env env, napi_callback_info info) {
  double a[6];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 6, a, &bytes);
  if (!heap) return NULL;
  const double rows = a[3], d = a[4];
  BOUNDS(d > 0 && in_heap_d(a[0], rows * d, bytes) && in_heap_d(a[1], rows * d, bytes) && in_heap_d(a[2], rows, bytes), "rmsNorm");
  rms_ctx c = {(const float *)(heap + (int64_t)a[0]), NULL, (float *)(heap + (int64_t)a[1]), (float *)(heap + (int64_t)a[2]),
               NULL, NULL, (int64_t)d, (float)a[5]};
  parallel_for((int64_t)rows, (int64_t)(rows * d), rms_range, &c);
  return NULL;
}

static napi_value RmsNormGrad(napi_env env, napi_callback_info info) {
  double a[6];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 6, a, &bytes);
  if (!heap) return NULL;
  const double rows = a[4], d = a[5];
  BOUNDS(d > 0 && in_heap_d(a[0], rows * d, bytes) && in_heap_d(a[1], rows, bytes) && in_heap_d(a[2], rows * d, bytes) &&
             in_heap_d(a[3], rows * d, bytes),
         "rmsNormGrad");
  rms_ctx c = {(const float *)(heap + (int64_t)a[0]), (const float *)(heap + (int64_t)a[2]), NULL, NULL,
               (float *)(heap + (int64_t)a[3]), (const float *)(heap + (int64_t)a[1]), (int64_t)d, 0.0f};
  parallel_for((int64_t)rows, (int64_t)(rows * d), rms_grad_range, &c);
  return NULL;
}

/* ---- SwiGLU ------------------------------------------------------------ */

typedef struct {
  const float *gate, *up, *dy;
  float *y, *dgate, *dup;
} swiglu_ctx;

static void swiglu_range(void *arg, int64_t lo, int64_t hi) {
  const swiglu_ctx *c = (const swiglu_ctx *)arg;
  for (int64_t i = lo; i < hi; i++) {
    const float g = c->gate[i];
    const float s = 1.0f / (1.0f + expf(-g));
    c->y[i] = g * s * c->up[i];
  }
}

static void swiglu_grad_range(void *arg, int64_t lo, int64_t hi) {
  const swiglu_ctx *c = (const swiglu_ctx *)arg;
  for (int64_t i = lo; i < hi; i++) {
    const float g = c->gate[i], u = c->up[i], dy = c->dy[i];
    const float s = 1.0f / (1.0f + expf(-g));
    c->dup[i] = dy * g * s;
    c->dgate[i] = dy * u * s * (1.0f + g * (1.0f - s));
  }
}

static napi_value Swiglu(napi_env env, napi_callback_info info) {
  double a[4];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 4, a, &bytes);
  if (!heap) return NULL;
  const double n = a[3];
  BOUNDS(in_heap_d(a[0], n, bytes) && in_heap_d(a[1], n, bytes) && in_heap_d(a[2], n, bytes), "swiglu");
  swiglu_ctx c = {(const float *)(heap + (int64_t)a[0]), (const float *)(heap + (int64_t)a[1]), NULL, (float *)(heap + (int64_t)a[2]),
                  NULL, NULL};
  parallel_for((int64_t)n, (int64_t)n, swiglu_range, &c);
  return NULL;
}

static napi_value SwigluGrad(napi_env env, napi_callback_info info) {
  double a[6];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 6, a, &bytes);
  if (!heap) return NULL;
  const double n = a[5];
  BOUNDS(in_heap_d(a[0], n, bytes) && in_heap_d(a[1], n, bytes) && in_heap_d(a[2], n, bytes) && in_heap_d(a[3], n, bytes) &&
             in_heap_d(a[4], n, bytes),
         "swigluGrad");
  swiglu_ctx c = {(const float *)(heap + (int64_t)a[0]), (const float *)(heap + (int64_t)a[1]), (const float *)(heap + (int64_t)a[2]),
                  NULL, (float *)(heap + (int64_t)a[3]), (float *)(heap + (int64_t)a[4])};
  parallel_for((int64_t)n, (int64_t)n, swiglu_grad_range, &c);
  return NULL;
}

/* ---- rotary ------------------------------------------------------------ */

typedef struct {
  const float *x, *cos, *sin;
  float *y;
  int64_t t, d;
  float sign;
} rotary_ctx;

static void rotary_range(void *arg, int64_t lo, int64_t hi) {
  const rotary_ctx *c = (const rotary_ctx *)arg;
  const int64_t d = c->d, half = d / 2;
  for (int64_t row = lo; row < hi; row++) {
    const float *x = c->x + row * d;
    float *y = c->y + row * d;
    const float *cs = c->cos + (row % c->t) * d;
    const float *ss = c->sin + (row % c->t) * d;
    for (int64_t i = 0; i < half; i++) {
      const float a = x[i], b = x[i + half];
      y[i] = a * cs[i] - c->sign * b * ss[i];
      y[i + half] = b * cs[i + half] + c->sign * a * ss[i + half];
    }
  }
}

static napi_value Rotary(napi_env env, napi_callback_info info) {
  double a[8];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 8, a, &bytes);
  if (!heap) return NULL;
  const double rows = a[4], t = a[5], d = a[6];
  BOUNDS(t > 0 && d > 0 && (int64_t)d % 2 == 0 && in_heap_d(a[0], rows * d, bytes) && in_heap_d(a[1], t * d, bytes) &&
             in_heap_d(a[2], t * d, bytes) && in_heap_d(a[3], rows * d, bytes),
         "rotary");
  rotary_ctx c = {(const float *)(heap + (int64_t)a[0]), (const float *)(heap + (int64_t)a[1]), (const float *)(heap + (int64_t)a[2]),
                  (float *)(heap + (int64_t)a[3]), (int64_t)t, (int64_t)d, (float)a[7]};
  parallel_for((int64_t)rows, (int64_t)(rows * d), rotary_range, &c);
  return NULL;
}

static napi_value SetElementwiseThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc == 1) {
    int64_t n = arg_int(env, argv[0]);
    ew_threads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
  }
  return NULL;
}

static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc == 1) set_threads((int)arg_int(env, argv[0]));
  return NULL;
}

static napi_value GetThreads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(napi_create_int32(env, get_threads(), &out));
  return out;
}

static napi_value Blas(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(napi_create_string_utf8(env, blas_name(), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sgemm", NULL, Sgemm, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxXent", NULL, SoftmaxXent, NULL, NULL, NULL, napi_default, NULL},
      {"softmaxXentGrad", NULL, SoftmaxXentGrad, NULL, NULL, NULL, napi_default, NULL},
      {"adamw", NULL, AdamW, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNorm", NULL, RmsNorm, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNormGrad", NULL, RmsNormGrad, NULL, NULL, NULL, napi_default, NULL},
      {"swiglu", NULL, Swiglu, NULL, NULL, NULL, napi_default, NULL},
      {"swigluGrad", NULL, SwigluGrad, NULL, NULL, NULL, napi_default, NULL},
      {"rotary", NULL, Rotary, NULL, NULL, NULL, napi_default, NULL},
      {"setElementwiseThreads", NULL, SetElementwiseThreads, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"getThreads", NULL, GetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"blas", NULL, Blas, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
