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
 *   adamwAll(heap, Float64Array): one AdamW step over every variable: m and v
 *     updated in place, new parameters written to fresh outputs, with the
 *     float32 operations of src/train/adamw.ts in the same order (so results
 *     match it bit for bit), the gradient scale (clipping, accumulation) first.
 *   sumSquares(heap, Float64Array): sum of squares over many tensors, in double.
 *   rmsNorm(heap, x, y, r, rows, d, eps) / rmsNormGrad(heap, x, r, dy, dx, rows, d)
 *     y = x * r with r = 1/sqrt(mean(x^2) + eps) per row (kept for the gradient).
 *   swiglu(heap, gate, up, y, n) / swigluGrad(heap, gate, up, dy, dgate, dup, n)
 *     y = gate * sigmoid(gate) * up.
 *   rotary(heap, x, cos, sin, y, rows, t, d, sign)
 *     y = x * cos + rotate_half(x) * sign * sin over rows of d, row r using table row r % t.
 *   decoderLayer / decoderLayerGrad(heap, Float64Array): a whole LLaMA decoder
 *     layer forward, and its backward with the input's and all weights' gradients.
 *   embedding / embeddingGrad(heap, Float64Array): rows by id, and their gradient.
 *   lmHeadLoss / lmHeadLossGrad(heap, Float64Array): final RMSNorm, LM head and mean
 *     cross-entropy in one kernel, and its backward.
 *   decodeCreate / decodeStep / decodeSelectRows / decodeLength / decodeFree: native decoding with a KV
 *     cache held here, every layer and the head per call (see "native decoding" below).
 *   setThreads(n), getThreads(), blas(): string
 *   setElementwiseThreads(n): the fused kernels above split their loops over n
 *     pthreads (default 1) when the work is large enough to pay for the start.
 */
#include <math.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Grow-only scratch buffers (one call at a time: N-API calls run on the JS thread). */
#define SCRATCH_SLOTS 13
static float *scratch_buf[SCRATCH_SLOTS];
static size_t scratch_len[SCRATCH_SLOTS];

static float *scratch(int slot, size_t n) {
  if (scratch_len[slot] < n) {
    free(scratch_buf[slot]);
    scratch_buf[slot] = (float *)malloc(n * sizeof(float));
    scratch_len[slot] = scratch_buf[slot] ? n : 0;
  }
  return scratch_buf[slot];
}

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
  if (!check_labels(env, labels, rows, vocab)) return NULL;
  float *e = scratch(12, (size_t)vocab);
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
  xent_grad_rows(logits, labels, lse, dy, dx, rows, vocab);
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

/*
 * A persistent pool of worker threads (started on first need, parked on a
 * condition variable between loops): starting a thread per loop cost more
 * than the small loops of the tiny model take. Loops are posted from the JS
 * thread only, one at a time, and never nest.
 */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER, pool_done = PTHREAD_COND_INITIALIZER;
static range_job pool_jobs[MAX_THREADS];
static int pool_size = 0;      /* workers started; worker i runs pool_jobs[i + 1] */
static int pool_active = 0;    /* workers with a job in the current generation */
static int pool_pending = 0;   /* of those, still running */
static uint64_t pool_gen = 0;  /* bumped once per posted loop */

static void *pool_worker(void *arg) {
  const int index = (int)(intptr_t)arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&pool_mu);
  for (;;) {
    while (pool_gen == seen) pthread_cond_wait(&pool_work, &pool_mu);
    seen = pool_gen;
    if (index >= pool_active) continue;
    range_job job = pool_jobs[index + 1];
    pthread_mutex_unlock(&pool_mu);
    job.fn(job.ctx, job.lo, job.hi);
    pthread_mutex_lock(&pool_mu);
    if (--pool_pending == 0) pthread_cond_signal(&pool_done);
  }
  return NULL;
}

/* Starts workers until there are `want`; returns how many exist. */
static int pool_grow(int want) {
  while (pool_size < want) {
    pthread_t id;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int ok = pthread_create(&id, &attr, pool_worker, (void *)(intptr_t)pool_size) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) break;
    pool_size++;
  }
  return pool_size;
}

/* fn over [0, n) in ew_threads contiguous chunks; `work` is the element count the loop touches. */
static void parallel_for(int64_t n, int64_t work, range_fn fn, void *ctx) {
  int t = ew_threads;
  if (t > n) t = (int)n;
  if (t > 1) t = 1 + (pool_grow(t - 1) < t - 1 ? pool_size : t - 1);
  if (t <= 1 || work < PARALLEL_MIN) {
    fn(ctx, 0, n);
    return;
  }
  pthread_mutex_lock(&pool_mu);
  for (int i = 0; i < t; i++) {
    pool_jobs[i].fn = fn;
    pool_jobs[i].ctx = ctx;
    pool_jobs[i].lo = n * i / t;
    pool_jobs[i].hi = n * (i + 1) / t;
  }
  pool_active = t - 1;
  pool_pending = t - 1;
  pool_gen++;
  pthread_cond_broadcast(&pool_work);
  pthread_mutex_unlock(&pool_mu);
  fn(ctx, pool_jobs[0].lo, pool_jobs[0].hi);
  pthread_mutex_lock(&pool_mu);
  while (pool_pending > 0) pthread_cond_wait(&pool_done, &pool_mu);
  pthread_mutex_unlock(&pool_mu);
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
  /* the range test first: it rules out infinities and huge values before the integer cast */
  return off >= 0 && n >= 0 && off + n * 4 <= (double)bytes && (int64_t)off % 4 == 0;
}

/* Whether operand i (byte offset off[i], sizes[i] elements of 4 bytes) lies in the heap for every i < n;
 * operand `optional` (or -1: none) may instead be absent, given as a negative offset. */
static int operands_in_heap(const double *off, const double *sizes, int n, int optional, size_t bytes) {
  for (int i = 0; i < n; i++) {
    if (i == optional && off[i] < 0) continue;
    if (!in_heap_d(off[i], sizes[i], bytes)) return 0;
  }
  return 1;
}

#define BOUNDS(cond, what)                                                           \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      napi_throw_range_error(env, "XA_NATIVE_BOUNDS", what ": operands outside the heap"); \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

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


/* ---- RMSNorm ----------------------------------------------------------- */

typedef struct {
  const float *x, *dy;
  float *y, *r, *dx;
  const float *rin;
  int64_t d;
  float eps;
} rms_ctx;

XA_CLONES static void rms_range(void *arg, int64_t lo, int64_t hi) {
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

XA_CLONES static void rms_grad_range(void *arg, int64_t lo, int64_t hi) {
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

XA_CLONES static void swiglu_range(void *arg, int64_t lo, int64_t hi) {
  const swiglu_ctx *c = (const swiglu_ctx *)arg;
  for (int64_t i = lo; i < hi; i++) {
    const float g = c->gate[i];
    const float s = 1.0f / (1.0f + fast_expf(-g));
    c->y[i] = g * s * c->up[i];
  }
}

XA_CLONES static void swiglu_grad_range(void *arg, int64_t lo, int64_t hi) {
  const swiglu_ctx *c = (const swiglu_ctx *)arg;
  for (int64_t i = lo; i < hi; i++) {
    const float g = c->gate[i], u = c->up[i], dy = c->dy[i];
    const float s = 1.0f / (1.0f + fast_expf(-g));
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

XA_CLONES static void rotary_range(void *arg, int64_t lo, int64_t hi) {
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

typedef struct {
  int64_t b, t, d, nh, nkv, hd, f;
} layer_dims;

static void gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                 float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)lda, b,
              (int)ldb, beta, c, (int)ldc);
}

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
XA_CLONES static void norm_rows(const float *x, const float *w, float *r, float *y, int64_t rows, int64_t d, float eps) {
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
XA_CLONES static void norm_rows_grad(const float *x, const float *w, const float *r, const float *dy, const float *base, float *dx, float *dw,
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

typedef struct {
  const layer_dims *dm;
  const float *qkv, *dctx; /* qkv [rows, D + 2 KV]: q at column 0, k at D, v at D + KV */
  const int32_t *mask;     /* [b, t] 1 = real token, or NULL */
  float *p, *ctx, *dqkv, *ds_all;
} attn_ctx;

/* Forward attention for (batch item, kv head) pairs lo..hi. */
XA_CLONES static void attn_fwd_range(void *arg, int64_t lo, int64_t hi) {
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
XA_CLONES static void attn_bwd_range(void *arg, int64_t lo, int64_t hi) {
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
static void attn_parallel(const layer_dims *m, range_fn fn, attn_ctx *c) {
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

/* The heap (argv[0]) and a Float64Array (argv[1]) of any length, written to *length. */
static uint8_t *heap_table_any(napi_env env, napi_callback_info info, const double **nums, size_t *length, size_t *bytes) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: expected (heap, Float64Array)");
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
  void *table;
  if (napi_get_typedarray_info(env, argv[1], &type, length, &table, &buffer, &byte_offset) != napi_ok || type != napi_float64_array) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: the arguments must be a Float64Array");
    return NULL;
  }
  *nums = (const double *)table;
  return (uint8_t *)data;
}

/* The heap (argv[0]) and a Float64Array of exactly `count` numbers (argv[1]). */
static uint8_t *heap_table(napi_env env, napi_callback_info info, size_t count, const double **nums, size_t *bytes) {
  size_t length;
  uint8_t *heap = heap_table_any(env, info, nums, &length, bytes);
  if (heap && length != count) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: the arguments must be a Float64Array of the right length");
    return NULL;
  }
  return heap;
}

#define F(i) ((float *)(heap + (int64_t)a[i]))

/*
 * decoderLayer(heap, Float64Array[34]):
 *   0 x, 1 w1, 2 wq, 3 wk, 4 wv, 5 wo, 6 w2, 7 wg, 8 wu, 9 wd, 10 qcos, 11 qsin, 12 kcos, 13 ksin, 14 mask (-1: none),
 *   15 y, then what the backward pass reads: 16 r1, 17 xn1, 18 qkv, 19 p, 20 ctx, 21 h, 22 r2, 23 xn2, 24 gu, 25 act;
 *   26.. b, t, d, nh, nkv, hd, f; 33 eps.
 */
static napi_value DecoderLayer(napi_env env, napi_callback_info info) {
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
  BOUNDS(operands_in_heap(a, sizes, 26, 14, bytes), "decoderLayer");
  float *wqkv = scratch(9, (size_t)(d * W)), *wgu = scratch(10, (size_t)(d * 2 * f));
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
static napi_value DecoderLayerGrad(napi_env env, napi_callback_info info) {
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
  BOUNDS(operands_in_heap(a, sizes, 35, -1, bytes), "decoderLayerGrad");
  float *dact = scratch(0, (size_t)(rows * f)), *dgu = scratch(1, (size_t)(rows * 2 * f)), *dxn = scratch(2, (size_t)(rows * d));
  float *dh = scratch(3, (size_t)(rows * d)), *dctx = scratch(4, (size_t)(rows * D)), *dqkv = scratch(5, (size_t)(rows * W));
  float *ds = scratch(6, (size_t)(m.b * m.nkv * m.t * m.t));
  float *wqkv = scratch(9, (size_t)(d * W)), *wgu = scratch(10, (size_t)(d * 2 * f));
  float *dw = scratch(11, (size_t)(d * (W > 2 * f ? W : 2 * f)));
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

/* ---- embedding ------------------------------------------------------------ */

/*
 * embedding(heap, Float64Array[6]): table [vocab, d], ids int32 [rows] -> out [rows, d] (out[r] = table[ids[r]]);
 * embeddingGrad(heap, Float64Array[6]): ids, dy [rows, d] -> dtable [vocab, d] (rows of dy summed per id).
 * An id outside [0, vocab) is a RangeError naming it.
 */
static int check_ids(napi_env env, const int32_t *ids, int64_t rows, int64_t vocab) {
  for (int64_t r = 0; r < rows; r++) {
    if (ids[r] < 0 || ids[r] >= vocab) {
      char msg[160];
      snprintf(msg, sizeof msg, "embedding: token id %d at position %lld is outside the vocabulary [0, %lld)", ids[r], (long long)r,
               (long long)vocab);
      napi_throw_range_error(env, "XA_NATIVE_TOKEN_ID", msg);
      return 0;
    }
  }
  return 1;
}

static napi_value Embedding(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, 6, &a, &bytes);
  if (!heap) return NULL;
  const int64_t rows = (int64_t)a[3], vocab = (int64_t)a[4], d = (int64_t)a[5];
  BOUNDS(d > 0 && in_heap_d(a[0], (double)vocab * d, bytes) && in_heap_d(a[1], (double)rows, bytes) &&
             in_heap_d(a[2], (double)rows * d, bytes),
         "embedding");
  const float *table = (const float *)(heap + (int64_t)a[0]);
  const int32_t *ids = (const int32_t *)(heap + (int64_t)a[1]);
  float *out = (float *)(heap + (int64_t)a[2]);
  if (!check_ids(env, ids, rows, vocab)) return NULL;
  for (int64_t r = 0; r < rows; r++) memcpy(out + r * d, table + (int64_t)ids[r] * d, (size_t)d * sizeof(float));
  return NULL;
}

static napi_value EmbeddingGrad(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, 6, &a, &bytes);
  if (!heap) return NULL;
  const int64_t rows = (int64_t)a[3], vocab = (int64_t)a[4], d = (int64_t)a[5];
  BOUNDS(d > 0 && in_heap_d(a[0], (double)rows, bytes) && in_heap_d(a[1], (double)rows * d, bytes) &&
             in_heap_d(a[2], (double)vocab * d, bytes),
         "embeddingGrad");
  const int32_t *ids = (const int32_t *)(heap + (int64_t)a[0]);
  const float *dy = (const float *)(heap + (int64_t)a[1]);
  float *dt = (float *)(heap + (int64_t)a[2]);
  if (!check_ids(env, ids, rows, vocab)) return NULL;
  memset(dt, 0, (size_t)(vocab * d) * sizeof(float));
  for (int64_t r = 0; r < rows; r++) {
    float *row = dt + (int64_t)ids[r] * d;
    const float *g = dy + r * d;
    for (int64_t i = 0; i < d; i++) row[i] += g[i];
  }
  return NULL;
}

/* ---- multi-tensor optimizer kernels ----------------------------------------------- */

/*
 * adamwAll(heap, Float64Array[12 + 6n]): one AdamW step over n variables in one call:
 *   0 n, 1 beta1, 2 1-beta1, 3 beta2, 4 1-beta2, 5 bc1, 6 bc2, 7 eps, 8 lr, 9 lr*wd, 10 gradScale, 11 scaled (0/1),
 *   then per variable: p, g, m, v, out offsets, size * 2 + decay (0/1).
 * The float32 operations of src/train/adamw.ts per element, with g * gradScale first when `scaled`.
 */
static napi_value AdamWAll(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes, length;
  uint8_t *heap = heap_table_any(env, info, &a, &length, &bytes);
  if (!heap) return NULL;
  if (length < 12) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "adamwAll: the table is too short");
    return NULL;
  }
  const int64_t n = (int64_t)a[0];
  if (n < 0 || length != (size_t)(12 + 6 * n)) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "adamwAll: the table's length does not match its variable count");
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    const double *v = a + 12 + 6 * i;
    const double size = floor(v[5] / 2);
    BOUNDS(in_heap_d(v[0], size, bytes) && in_heap_d(v[1], size, bytes) && in_heap_d(v[2], size, bytes) && in_heap_d(v[3], size, bytes) &&
               in_heap_d(v[4], size, bytes),
           "adamwAll");
  }
  for (int64_t i = 0; i < n; i++) {
    const double *v = a + 12 + 6 * i;
    const int64_t size = (int64_t)v[5] / 2;
    const int decay = (int64_t)v[5] % 2;
    adamw_ctx c = {
        (float *)(heap + (int64_t)v[0]), (float *)(heap + (int64_t)v[2]), (float *)(heap + (int64_t)v[3]),
        (float *)(heap + (int64_t)v[4]), (const float *)(heap + (int64_t)v[1]),
        (float)a[1], (float)a[2], (float)a[3], (float)a[4], (float)a[5], (float)a[6], (float)a[7], (float)a[8], (float)a[9],
        decay, (float)a[10], a[11] != 0,
    };
    parallel_for(size, size, adamw_range, &c);
  }
  return NULL;
}

/* sumSquares(heap, Float64Array[1 + 2n]): n, then per tensor offset and size; returns sum of x^2 over all (double). */
static napi_value SumSquares(napi_env env, napi_callback_info info) {
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
    BOUNDS(in_heap_d(a[1 + 2 * i], a[2 + 2 * i], bytes), "sumSquares");
    total += sum_squares((const float *)(heap + (int64_t)a[1 + 2 * i]), (int64_t)a[2 + 2 * i]);
  }
  napi_value out;
  CHECK(napi_create_double(env, total, &out));
  return out;
}

/* ---- final norm, LM head and mean cross-entropy --------------------------------- */

/*
 * lmHeadLoss(heap, Float64Array[13]): 0 h [rows, d], 1 w [d], 2 head ([d, vocab], or [vocab, d] when tied),
 *   3 labels int32 [rows], outputs 4 loss [1], 5 r [rows], 6 xn [rows, d], 7 logits [rows, vocab], 8 lse [rows];
 *   9 rows, 10 d, 11 vocab, 12 eps, 13 tied (0/1).
 * xn = rmsnorm(h) * w; logits = xn @ head (xn @ head^T when tied); loss = mean over labels >= 0 of
 * logsumexp(logits) - logits[label] (0 when there are none).
 */
static napi_value LmHeadLoss(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, 14, &a, &bytes);
  if (!heap) return NULL;
  const int64_t rows = (int64_t)a[9], d = (int64_t)a[10], vocab = (int64_t)a[11];
  const int tied = a[13] != 0;
  const double R = (double)rows, dd = (double)d, V = (double)vocab;
  const double sizes[9] = {R * dd, dd, dd * V, R, 1, R, R * dd, R * V, R};
  BOUNDS(rows > 0 && d > 0 && vocab > 0 && operands_in_heap(a, sizes, 9, -1, bytes), "lmHeadLoss");
  float *e = scratch(12, (size_t)vocab);
  if (!e) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "lmHeadLoss: out of memory");
    return NULL;
  }
  float *xn = (float *)(heap + (int64_t)a[6]), *logits = (float *)(heap + (int64_t)a[7]), *lse = (float *)(heap + (int64_t)a[8]);
  const int32_t *labels = (const int32_t *)(heap + (int64_t)a[3]);
  if (!check_labels(env, labels, rows, vocab)) return NULL;
  norm_rows((const float *)(heap + (int64_t)a[0]), (const float *)(heap + (int64_t)a[1]), (float *)(heap + (int64_t)a[5]), xn, rows, d,
            (float)a[12]);
  if (tied) gemm(0, 1, rows, vocab, d, xn, d, (const float *)(heap + (int64_t)a[2]), d, 0.0f, logits, vocab);
  else gemm(0, 0, rows, vocab, d, xn, d, (const float *)(heap + (int64_t)a[2]), vocab, 0.0f, logits, vocab);
  float *per_row = scratch(7, (size_t)rows);
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
  *(float *)(heap + (int64_t)a[4]) = total / (count > 1.0f ? count : 1.0f);
  return NULL;
}

/*
 * lmHeadLossGrad(heap, Float64Array[15]): 0 dy [1], 1 h, 2 w, 3 head, 4 labels, 5 r, 6 xn, 7 logits, 8 lse,
 *   outputs 9 dh [rows, d], 10 dw [d], 11 dhead (head's shape); 12 rows, 13 d, 14 vocab, 15 tied.
 */
static napi_value LmHeadLossGrad(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, 16, &a, &bytes);
  if (!heap) return NULL;
  const int64_t rows = (int64_t)a[12], d = (int64_t)a[13], vocab = (int64_t)a[14];
  const int tied = a[15] != 0;
  const double R = (double)rows, dd = (double)d, V = (double)vocab;
  const double sizes[12] = {1, R * dd, dd, dd * V, R, R, R * dd, R * V, R, R * dd, dd, dd * V};
  BOUNDS(rows > 0 && d > 0 && vocab > 0 && operands_in_heap(a, sizes, 12, -1, bytes), "lmHeadLossGrad");
  float *dlogits = scratch(8, (size_t)(rows * vocab)), *dxn = scratch(2, (size_t)(rows * d)), *per_row = scratch(7, (size_t)rows);
  if (!dlogits || !dxn || !per_row) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "lmHeadLossGrad: out of memory");
    return NULL;
  }
  const int32_t *labels = (const int32_t *)(heap + (int64_t)a[4]);
  float count = 0.0f;
  for (int64_t r = 0; r < rows; r++) count += (labels[r] >= 0 && labels[r] < vocab) ? 1.0f : 0.0f;
  const float g = *(const float *)(heap + (int64_t)a[0]) / (count > 1.0f ? count : 1.0f);
  for (int64_t r = 0; r < rows; r++) per_row[r] = g;
  const float *xn = (const float *)(heap + (int64_t)a[6]), *head = (const float *)(heap + (int64_t)a[3]);
  xent_grad_rows((const float *)(heap + (int64_t)a[7]), labels, (const float *)(heap + (int64_t)a[8]), per_row, dlogits, rows, vocab);
  float *dhead = (float *)(heap + (int64_t)a[11]);
  if (tied) {
    gemm(1, 0, vocab, d, rows, dlogits, vocab, xn, d, 0.0f, dhead, d);
    gemm(0, 0, rows, d, vocab, dlogits, vocab, head, d, 0.0f, dxn, d);
  } else {
    gemm(1, 0, d, vocab, rows, xn, d, dlogits, vocab, 0.0f, dhead, vocab);
    gemm(0, 1, rows, d, vocab, dlogits, vocab, head, vocab, 0.0f, dxn, d);
  }
  float *dh = (float *)(heap + (int64_t)a[9]);
  memset(dh, 0, (size_t)(rows * d) * sizeof(float));
  norm_rows_grad((const float *)(heap + (int64_t)a[1]), (const float *)(heap + (int64_t)a[2]), (const float *)(heap + (int64_t)a[5]), dxn,
                 dh, dh, (float *)(heap + (int64_t)a[10]), rows, d);
  return NULL;
}

/* ---- native decoding with a KV cache ------------------------------------------------ */
/*
 * A decoding session: the keys and values of every position seen so far, per
 * layer, row and key/value head, in native memory ([cap, hd] blocks), with
 * each slot's padding flag, and the canon convolution's carried inputs. One
 * decodeStep call runs t new positions per row (t = 1 when decoding, the
 * prompt width when prefilling) through every layer and returns the logits of
 * each row's last new position. The maths is the per-op path's with an
 * inference plan (src/model/llama.ts): normalized rows without the norm gain,
 * times projections with the gain folded in; the canon convolution on those
 * rows; rotate-half rotary with the attention scale on the queries' tables;
 * attention over every cached slot up to the query's own that holds a real
 * token (padded slots get weight exactly 0, as exp(-1e9 - max) does there);
 * SwiGLU; the head with the final norm folded in.
 *
 * A step runs in passes of at most `chunk` computed positions (whole rows
 * while they fit, a longer row in pieces; the KV cache and the canon state
 * carry from one pass to the next), with scratch sized by a pass and kept
 * between calls. Padding positions other than a row's last are not computed
 * (their outputs would be discarded, their keys are masked): their cache
 * slots get zeros and their canon inputs are zero, as before. In a prefill,
 * a row whose first real tokens repeat an earlier row's takes their keys,
 * values and canon inputs from it instead of computing them (decode_share).
 *
 *   decodeCreate(dims: Float64Array[11 or 12], cos: Float32Array, sin: Float32Array) -> session
 *     dims: layers, d, nh, nkv, hd, f, vocab, canon width (0: none), batch, capacity (positions), eps,
 *     [chunk: most positions per pass, 0 or absent: DECODE_CHUNK];
 *     cos/sin: [capacity, hd] rotary tables (rotate-half layout); the queries' are scaled by 1/sqrt(hd) here.
 *   decodeStep(session, heap, args: Float64Array, logits: Float32Array[batch * vocab])
 *     args: 0 t, 1 embed [vocab, d], 2 head [d, vocab], then per layer 8 offsets: q [d, D], k [d, KV], v [d, KV]
 *     (input norm folded in), o [D, d], gate [d, f], up [d, f] (post norm folded in), down [f, d], canon [w, d]
 *     (-1 without); then per row and new position (row-major): token id, position (rotary), real (1) or padding (0).
 *   decodeSelectRows(session, rows: Float64Array): keeps the given rows (ascending), dropping the others.
 *   decodeLength(session): positions cached.  decodeFree(session): frees it now (else the GC does).
 */

#define DECODER_MAGIC 0x58444543u /* "XDEC" */
/* Most positions one pass of decodeStep computes at once (a prefill runs in passes of whole rows or row pieces). */
#define DECODE_CHUNK 512
/* Most query rows of one attention block in a pass (bounds the scores buffer to DECODE_ATT_BLOCK x capacity). */
#define DECODE_ATT_BLOCK 64

typedef struct {
  uint32_t magic;
  int64_t layers, d, nh, nkv, hd, f, vocab, cw, batch, batch0, cap, len, chunk;
  float eps;
  float *qcos, *qsin, *kcos, *ksin; /* [cap, hd] */
  float *keys, *values;             /* keys [layers, batch0, nkv, hd, cap] (transposed), values [layers, batch0, nkv, cap, hd]: one block */
  size_t kv_floats;                 /* the block's size */
  uint8_t *real;                    /* [batch0, cap] */
  float *canon;                     /* [layers, batch0, cw - 1, d], oldest first */
} decoder;

/*
 * Freed KV cache blocks kept for later sessions (a few, DECODE_SPARE_MAX bytes
 * at most in all): evaluation opens a session per batch, and a fresh block of
 * tens of MB costs a page fault per 4 KB page on first touch in every one. A
 * session takes the smallest kept block that fits.
 */
#define DECODE_SPARES 4
#define DECODE_SPARE_MAX ((size_t)256 << 20)
static float *kv_spare[DECODE_SPARES];
static size_t kv_spare_floats[DECODE_SPARES];

static float *kv_take(size_t floats) {
  int best = -1;
  for (int i = 0; i < DECODE_SPARES; i++)
    if (kv_spare[i] && kv_spare_floats[i] >= floats && (best < 0 || kv_spare_floats[i] < kv_spare_floats[best])) best = i;
  if (best < 0) return (float *)malloc(floats * sizeof(float));
  float *out = kv_spare[best];
  kv_spare[best] = NULL;
  kv_spare_floats[best] = 0;
  return out;
}

static void kv_give(float *block, size_t floats) {
  if (!block) return;
  /* room for it: drop the smallest kept blocks while the total would pass the limit or no slot is free */
  for (;;) {
    size_t total = floats * sizeof(float);
    int empty = -1, smallest = -1;
    for (int i = 0; i < DECODE_SPARES; i++) {
      if (!kv_spare[i]) empty = i;
      else {
        total += kv_spare_floats[i] * sizeof(float);
        if (smallest < 0 || kv_spare_floats[i] < kv_spare_floats[smallest]) smallest = i;
      }
    }
    if (total <= DECODE_SPARE_MAX && empty >= 0) {
      kv_spare[empty] = block;
      kv_spare_floats[empty] = floats;
      return;
    }
    if (smallest < 0 || kv_spare_floats[smallest] > floats) {
      free(block);
      return;
    }
    free(kv_spare[smallest]);
    kv_spare[smallest] = NULL;
    kv_spare_floats[smallest] = 0;
  }
}

static void decoder_free_buffers(decoder *s) {
  kv_give(s->keys, s->kv_floats);
  float *bufs[] = {s->qcos, s->qsin, s->kcos, s->ksin, s->canon};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(s->real);
  memset(s, 0, sizeof *s);
}

static void decoder_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  decoder *s = (decoder *)data;
  decoder_free_buffers(s);
  free(s);
}

/*
 * Scratch for decodeStep, shared by every session and kept between calls and
 * sessions (grow-only; one call at a time: N-API calls run on the JS thread),
 * so a step touches memory that is already mapped: sized by a pass (at most
 * the session's chunk of positions), not by the whole prefill.
 */
enum { DS_X, DS_XN, DS_Q, DS_K, DS_V, DS_CTX, DS_TMP, DS_GATE, DS_UP, DS_PAD, DS_SCORES, DS_LAST, DS_ROWS, DS_SHARE, DS_SLOTS };
static void *dscratch_buf[DS_SLOTS];
static size_t dscratch_len[DS_SLOTS];

static void *dscratch(int slot, size_t bytes) {
  if (dscratch_len[slot] < bytes) {
    free(dscratch_buf[slot]);
    dscratch_buf[slot] = malloc(bytes);
    dscratch_len[slot] = dscratch_buf[slot] ? bytes : 0;
  }
  return dscratch_buf[slot];
}

static decoder *get_decoder(napi_env env, napi_value v) {
  napi_valuetype type;
  void *data = NULL;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_external || napi_get_value_external(env, v, &data) != napi_ok || !data ||
      ((decoder *)data)->magic != DECODER_MAGIC) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "decode: not a live decoding session (created by decodeCreate, not yet freed)");
    return NULL;
  }
  return (decoder *)data;
}

/* A typed array argument of the given type: its data and element count, or NULL (with an exception pending). */
static void *typed_arg(napi_env env, napi_value v, napi_typedarray_type want, size_t *length, const char *what) {
  napi_typedarray_type type;
  void *data;
  napi_value buffer;
  size_t byte_offset;
  if (napi_get_typedarray_info(env, v, &type, length, &data, &buffer, &byte_offset) != napi_ok || type != want) {
    napi_throw_error(env, "XA_NATIVE_ARGS", what);
    return NULL;
  }
  return data;
}

static napi_value DecodeCreate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "decodeCreate expects (dims, cos, sin)");
    return NULL;
  }
  size_t nd, nc, ns;
  const double *a = (const double *)typed_arg(env, argv[0], napi_float64_array, &nd, "decodeCreate: dims must be a Float64Array");
  if (!a) return NULL;
  const float *cos_in = (const float *)typed_arg(env, argv[1], napi_float32_array, &nc, "decodeCreate: cos must be a Float32Array");
  if (!cos_in) return NULL;
  const float *sin_in = (const float *)typed_arg(env, argv[2], napi_float32_array, &ns, "decodeCreate: sin must be a Float32Array");
  if (!sin_in) return NULL;
  if (nd != 11 && nd != 12) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "decodeCreate: dims must hold 11 or 12 numbers");
    return NULL;
  }
  for (int i = 0; i < (int)nd; i++) {
    if (i == 10) continue;
    if (!(a[i] >= 0 && a[i] < 1e9 && a[i] == (double)(int64_t)a[i])) {
      napi_throw_range_error(env, "XA_NATIVE_ARGS", "decodeCreate: dimensions must be integers");
      return NULL;
    }
  }
  decoder *s = (decoder *)calloc(1, sizeof(decoder));
  if (!s) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "decodeCreate: out of memory");
    return NULL;
  }
  s->layers = (int64_t)a[0];
  s->d = (int64_t)a[1];
  s->nh = (int64_t)a[2];
  s->nkv = (int64_t)a[3];
  s->hd = (int64_t)a[4];
  s->f = (int64_t)a[5];
  s->vocab = (int64_t)a[6];
  s->cw = (int64_t)a[7];
  s->batch = s->batch0 = (int64_t)a[8];
  s->cap = (int64_t)a[9];
  s->eps = (float)a[10];
  s->chunk = nd == 12 && a[11] >= 1 ? (int64_t)a[11] : DECODE_CHUNK;
  if (s->layers < 1 || s->d < 1 || s->nh < 1 || s->nkv < 1 || s->nh % s->nkv != 0 || s->hd < 2 || s->hd % 2 != 0 || s->f < 1 ||
      s->vocab < 1 || s->batch < 1 || s->cap < 1 || nc != (size_t)(s->cap * s->hd) || ns != nc) {
    free(s);
    napi_throw_range_error(env, "XA_NATIVE_ARGS", "decodeCreate: bad dimensions (or tables not [capacity, head_dim])");
    return NULL;
  }
  const int64_t hd = s->hd, cap = s->cap, kvsize = s->layers * s->batch0 * s->nkv * cap * hd;
  const int64_t cw1 = s->cw > 0 ? s->cw - 1 : 0;
  s->qcos = (float *)malloc((size_t)(cap * hd) * sizeof(float));
  s->qsin = (float *)malloc((size_t)(cap * hd) * sizeof(float));
  s->kcos = (float *)malloc((size_t)(cap * hd) * sizeof(float));
  s->ksin = (float *)malloc((size_t)(cap * hd) * sizeof(float));
  s->kv_floats = (size_t)(2 * kvsize);
  s->keys = kv_take(s->kv_floats);
  s->values = s->keys ? s->keys + kvsize : NULL;
  s->real = (uint8_t *)calloc((size_t)(s->batch0 * cap), 1);
  s->canon = (float *)calloc((size_t)(s->layers * s->batch0 * (cw1 > 0 ? cw1 : 1) * s->d), sizeof(float));
  if (!s->qcos || !s->qsin || !s->kcos || !s->ksin || !s->keys || !s->values || !s->real || !s->canon) {
    decoder_free_buffers(s);
    free(s);
    napi_throw_error(env, "XA_NATIVE_MEMORY", "decodeCreate: out of memory for the KV cache");
    return NULL;
  }
  /* The queries' tables carry the attention scale, rounded to float32 as src/model/rope.ts rows() does. */
  const double scale = 1.0 / sqrt((double)hd);
  for (int64_t i = 0; i < cap * hd; i++) {
    s->kcos[i] = cos_in[i];
    s->ksin[i] = sin_in[i];
    s->qcos[i] = (float)((double)cos_in[i] * scale);
    s->qsin[i] = (float)((double)sin_in[i] * scale);
  }
  s->magic = DECODER_MAGIC;
  napi_value out;
  if (napi_create_external(env, s, decoder_finalize, NULL, &out) != napi_ok) {
    decoder_free_buffers(s);
    free(s);
    napi_throw_error(env, "XA_NATIVE_ARGS", "decodeCreate: napi_create_external failed");
    return NULL;
  }
  return out;
}

/* y [rows, out] (= or +=, by beta) x [rows, in] @ w [in, out]: a matrix-vector product for one row, else a GEMM. */
static void project_rows(const float *x, int64_t rows, int64_t in, const float *w, int64_t out, float *y) {
  if (rows == 1) cblas_sgemv(CblasRowMajor, CblasTrans, (int)in, (int)out, 1.0f, w, (int)out, x, 1, 0.0f, y, 1);
  else gemm(0, 0, rows, out, in, x, in, w, out, 0.0f, y, out);
}

/* Normalized rows without the gain (the per-op path's rmsNormalize): y = x / sqrt(mean(x^2) + eps). */
XA_CLONES static void normalize_rows(const float *x, float *y, int64_t rows, int64_t d, float eps) {
  for (int64_t row = 0; row < rows; row++) {
    const float *xr = x + row * d;
    float *yr = y + row * d;
    double ss = 0;
    for (int64_t i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
    const float r = 1.0f / sqrtf((float)(ss / (double)d) + eps);
    for (int64_t i = 0; i < d; i++) yr[i] = xr[i] * r;
  }
}

/* x += y elementwise. */
XA_CLONES static void add_into(float *restrict x, const float *restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = x[i] + y[i];
}

/* Rotate-half rotary on `heads` heads of one row in place with table rows cs, ss. */
XA_CLONES static void rotate_row(float *x, const float *cs, const float *ss, int64_t heads, int64_t hd) {
  const int64_t half = hd / 2;
  for (int64_t h = 0; h < heads; h++) {
    float *y = x + h * hd;
    for (int64_t i = 0; i < half; i++) {
      const float a = y[i], b = y[i + half];
      y[i] = a * cs[i] - 1.0f * b * ss[i];
      y[i + half] = b * cs[i + half] + 1.0f * a * ss[i + half];
    }
  }
}

/* Softmax over the real slots of scores[0..n) in place; padded slots get 0 (all padded: all 0). The exps as in the
   fused layer's attention (fast_expf, a loop that vectorizes), then their sum in order. */
XA_CLONES static void masked_softmax(float *restrict sc, const uint8_t *restrict real, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; j++)
    if (real[j] && sc[j] > mx) mx = sc[j];
  if (mx == -INFINITY) {
    memset(sc, 0, (size_t)n * sizeof(float));
    return;
  }
  for (int64_t j = 0; j < n; j++) sc[j] = real[j] ? fast_expf(sc[j] - mx) : 0.0f;
  float sum = 0.0f;
  for (int64_t j = 0; j < n; j++) sum += sc[j];
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; j++) sc[j] *= inv;
}

/*
 * One query head against the first n cached slots of its kv head (decoding):
 * scores from the transposed keys Kt [hd, cap] (a loop over slots that
 * vectorizes), the masked softmax, then the weighted sum of the values V
 * [cap, hd]. No BLAS call: at a few thousand multiply-adds each, sgemv's
 * per-call cost would dominate.
 */
XA_CLONES static void attend_one(const float *restrict q, const float *restrict Kt, const float *restrict V, const uint8_t *restrict real,
                                 int64_t n, int64_t cap, int64_t hd, float *restrict sc, float *restrict out) {
  for (int64_t j = 0; j < n; j++) sc[j] = 0.0f;
  for (int64_t c = 0; c < hd; c++) {
    const float qc = q[c], *row = Kt + c * cap;
    for (int64_t j = 0; j < n; j++) sc[j] = sc[j] + qc * row[j];
  }
  masked_softmax(sc, real, n);
  for (int64_t c = 0; c < hd; c++) out[c] = 0.0f;
  for (int64_t j = 0; j < n; j++) {
    const float p = sc[j], *vj = V + j * hd;
    for (int64_t c = 0; c < hd; c++) out[c] = out[c] + p * vj[c];
  }
}

/* y = gate * sigmoid(gate) * up in place of gate (SwiGLU), as the fused layer's glu_range computes it. */
XA_CLONES static void swiglu_rows(float *restrict gate, const float *restrict up, int64_t n) {
  for (int64_t e = 0; e < n; e++) {
    const float gv = gate[e];
    const float sg = 1.0f / (1.0f + fast_expf(-gv));
    gate[e] = gv * sg * up[e];
  }
}

#define DECODE_LAYER_ARGS 8

/* The canon convolution at one position: out = xn + sum_k in[-k] * w[k], in[0] at `own` (the padded-input window). */
XA_CLONES static void canon_row(float *restrict out, const float *restrict xn, const float *restrict own, const float *restrict w, int64_t cw,
                                int64_t d) {
  for (int64_t c = 0; c < d; c++) out[c] = xn[c];
  for (int64_t k = 0; k < cw; k++) {
    const float *in = own - k * d, *wk = w + k * d;
    for (int64_t c = 0; c < d; c++) out[c] = out[c] + in[c] * wk[c];
  }
}

/* A computed position of a pass: its batch row and index among the step's t new positions. */
typedef struct {
  int64_t b, i;
} decode_row;

/* A piece of one batch row in a pass: new positions [i0, i1) of row b, whose computed ones are pass rows [r0, r1). */
typedef struct {
  int64_t b, i0, i1, r0, r1;
} decode_seg;

/* A canon input a recipient row of a shared prefix takes from the row that computed it (see decode_share). */
typedef struct {
  int64_t src_i, dst_b, dst_k; /* the source row's position, the recipient row, the slot of its canon state */
} decode_need;

/*
 * Prefix sharing in a prefill (a first step of t > 1 positions): a row whose
 * first real tokens equal those of an earlier row (its donor; at least
 * DECODE_SHARE_MIN of them, not its last) does not compute them. Their keys
 * and values are the same (same tokens, same rotary positions 0.., nothing
 * before them to attend to) and are copied from the donor's slots, its canon
 * state takes the donor's inputs before its first computed position, and its
 * computation starts there. Evaluation prompts share long prefixes (the
 * prompt template, a QA paragraph asked about several times).
 */
typedef struct {
  const int64_t *donor;    /* [B]: the donor row, or -1 */
  const int64_t *shared;   /* [B]: real tokens taken from the donor (0 without one) */
  const int64_t *lead;     /* [B]: left padding positions before the row's first real token */
  const int64_t *need_off; /* [B + 1]: the canon inputs that source row b gives are need[need_off[b] .. need_off[b + 1]) */
  const decode_need *need;
} decode_share;

#define DECODE_SHARE_MIN 8

/* The first position of row b that a pass computes: after a shared prefix, else 0. */
static int64_t share_first(const decode_share *sh, int64_t b) {
  return sh && sh->donor[b] >= 0 ? sh->lead[b] + sh->shared[b] : 0;
}

/*
 * One pass of a decodeStep: the R computed positions `rows` (grouped by row in
 * the S segments `segs`) through every layer, their keys and values into the
 * cache (zeros in the slots of the segments' positions that are not computed),
 * and the last new position of each row that ends here into `last`. A
 * position is computed when it holds a real token or is its row's last;
 * padding before a row's tokens is skipped (it would only give outputs that
 * are discarded and keys that are masked).
 */
static void decode_pass(decoder *s, const uint8_t *heap, const double *a, const double *tok, int64_t t, const decode_row *rows, int64_t R,
                        const decode_seg *segs, int64_t S, const decode_share *sh, float *last) {
  const int64_t L = s->layers, d = s->d, nh = s->nh, nkv = s->nkv, hd = s->hd, f = s->f;
  const int64_t D = nh * hd, KV = nkv * hd, group = nh / nkv, cw = s->cw, cw1 = cw > 0 ? cw - 1 : 0, cap = s->cap, len = s->len;
  float *x = (float *)dscratch_buf[DS_X], *xn = (float *)dscratch_buf[DS_XN], *q = (float *)dscratch_buf[DS_Q];
  float *k = (float *)dscratch_buf[DS_K], *v = (float *)dscratch_buf[DS_V], *ctx = (float *)dscratch_buf[DS_CTX];
  float *tmp = (float *)dscratch_buf[DS_TMP], *gate = (float *)dscratch_buf[DS_GATE], *up = (float *)dscratch_buf[DS_UP];
  float *pad = (float *)dscratch_buf[DS_PAD], *scores = (float *)dscratch_buf[DS_SCORES];
#define W(l, i) ((const float *)(heap + (int64_t)a[3 + (l) * DECODE_LAYER_ARGS + (i)]))
#define TOK(b, i, field) (tok[3 * ((b) * t + (i)) + (field)])
  const float *embed = (const float *)(heap + (int64_t)a[1]);
  for (int64_t r = 0; r < R; r++) memcpy(x + r * d, embed + (int64_t)TOK(rows[r].b, rows[r].i, 0) * d, (size_t)d * sizeof(float));
  for (int64_t l = 0; l < L; l++) {
    /* attention input: normalized rows, then the canon convolution over them */
    normalize_rows(x, xn, R, d, s->eps);
    if (cw > 0) {
      const float *cwt = W(l, 7);
      for (int64_t e = 0; e < S; e++) {
        const decode_seg *g = segs + e;
        if (sh) {
          /* inputs of this row that recipients of a shared prefix start from */
          for (int64_t j = sh->need_off[g->b]; j < sh->need_off[g->b + 1]; j++) {
            const decode_need *nd = sh->need + j;
            if (nd->src_i < g->i0 || nd->src_i >= g->i1) continue;
            int64_t lo = g->r0, hi = g->r1 - 1;
            while (lo < hi) {
              const int64_t mid = (lo + hi) / 2;
              if (rows[mid].i < nd->src_i) lo = mid + 1;
              else hi = mid;
            }
            memcpy(s->canon + ((l * s->batch0 + nd->dst_b) * cw1 + nd->dst_k) * d, xn + lo * d, (size_t)d * sizeof(float));
          }
        }
        float *state = s->canon + (l * s->batch0 + g->b) * cw1 * d;
        const int64_t n = g->i1 - g->i0;
        memcpy(pad, state, (size_t)(cw1 * d) * sizeof(float));
        memset(pad + cw1 * d, 0, (size_t)(n * d) * sizeof(float));
        for (int64_t r = g->r0; r < g->r1; r++)
          if (TOK(g->b, rows[r].i, 2) != 0) memcpy(pad + (cw1 + rows[r].i - g->i0) * d, xn + r * d, (size_t)d * sizeof(float));
        for (int64_t r = g->r0; r < g->r1; r++) canon_row(tmp + (r - g->r0) * d, xn + r * d, pad + (cw1 + rows[r].i - g->i0) * d, cwt, cw, d);
        memcpy(xn + g->r0 * d, tmp, (size_t)((g->r1 - g->r0) * d) * sizeof(float));
        memcpy(state, pad + n * d, (size_t)(cw1 * d) * sizeof(float));
      }
    }
    project_rows(xn, R, d, W(l, 0), D, q);
    project_rows(xn, R, d, W(l, 1), KV, k);
    project_rows(xn, R, d, W(l, 2), KV, v);
    float *keys = s->keys + l * s->batch0 * nkv * cap * hd, *values = s->values + l * s->batch0 * nkv * cap * hd;
    for (int64_t e = 0; e < S; e++) {
      const decode_seg *g = segs + e;
      /* positions skipped here: finite zeros in their (masked) slots */
      for (int64_t i = g->i0, r = g->r0; i < g->i1; i++) {
        if (r < g->r1 && rows[r].i == i) {
          r++;
          continue;
        }
        for (int64_t h = 0; h < nkv; h++) {
          float *kt = keys + (g->b * nkv + h) * hd * cap + len + i;
          for (int64_t c = 0; c < hd; c++) kt[c * cap] = 0.0f;
          memset(values + ((g->b * nkv + h) * cap + len + i) * hd, 0, (size_t)hd * sizeof(float));
        }
      }
      for (int64_t r = g->r0; r < g->r1; r++) {
        const int64_t p = (int64_t)TOK(g->b, rows[r].i, 1), slot = len + rows[r].i;
        rotate_row(q + r * D, s->qcos + p * hd, s->qsin + p * hd, nh, hd);
        rotate_row(k + r * KV, s->kcos + p * hd, s->ksin + p * hd, nkv, hd);
        for (int64_t h = 0; h < nkv; h++) {
          float *kt = keys + (g->b * nkv + h) * hd * cap + slot;
          const float *kr = k + r * KV + h * hd;
          for (int64_t c = 0; c < hd; c++) kt[c * cap] = kr[c];
          memcpy(values + ((g->b * nkv + h) * cap + slot) * hd, v + r * KV + h * hd, (size_t)hd * sizeof(float));
        }
      }
    }
    /* a recipient's first pass: zeros in its padding slots, its shared prefix's keys and values from the donor's slots */
    for (int64_t e = 0; sh && e < S; e++) {
      const decode_seg *g = segs + e;
      const int64_t b = g->b, from = sh->donor[b];
      if (from < 0 || g->i0 != share_first(sh, b)) continue;
      const int64_t p = sh->shared[b];
      for (int64_t h = 0; h < nkv; h++) {
        float *kt = keys + (b * nkv + h) * hd * cap, *vb = values + (b * nkv + h) * cap * hd;
        const float *kf = keys + (from * nkv + h) * hd * cap + len + sh->lead[from], *vf = values + ((from * nkv + h) * cap + len + sh->lead[from]) * hd;
        for (int64_t c = 0; c < hd; c++) {
          memset(kt + c * cap + len, 0, (size_t)sh->lead[b] * sizeof(float));
          memcpy(kt + c * cap + len + sh->lead[b], kf + c * cap, (size_t)p * sizeof(float));
        }
        memset(vb + len * hd, 0, (size_t)(sh->lead[b] * hd) * sizeof(float));
        memcpy(vb + (len + sh->lead[b]) * hd, vf, (size_t)(p * hd) * sizeof(float));
      }
    }
    /* grouped-query attention: the `group` query heads of kv head h against its cached keys up to each query's own slot */
    for (int64_t e = 0; e < S; e++) {
      const decode_seg *g = segs + e;
      const uint8_t *real = s->real + g->b * cap;
      for (int64_t h = 0; h < nkv; h++) {
        const float *Kt = keys + (g->b * nkv + h) * hd * cap, *Vv = values + (g->b * nkv + h) * cap * hd;
        if (g->r1 - g->r0 == 1) {
          /* one query per row (decoding) */
          const int64_t r = g->r0, n = len + rows[r].i + 1;
          for (int64_t j = 0; j < group; j++)
            attend_one(q + r * D + (h * group + j) * hd, Kt, Vv, real, n, cap, hd, scores, ctx + r * D + (h * group + j) * hd);
          continue;
        }
        /* several queries of one row (prefill): blocks of them per query head as GEMMs over the slots up to the block's last,
           each query's later slots then given weight 0 */
        for (int64_t rb = g->r0; rb < g->r1; rb += DECODE_ATT_BLOCK) {
          const int64_t re = rb + DECODE_ATT_BLOCK < g->r1 ? rb + DECODE_ATT_BLOCK : g->r1, m = re - rb, nmax = len + rows[re - 1].i + 1;
          for (int64_t j = 0; j < group; j++) {
            const int64_t head = h * group + j;
            gemm(0, 0, m, nmax, hd, q + rb * D + head * hd, D, Kt, cap, 0.0f, scores, nmax);
            for (int64_t r = rb; r < re; r++) {
              float *sc = scores + (r - rb) * nmax;
              const int64_t n = len + rows[r].i + 1;
              masked_softmax(sc, real, n);
              if (n < nmax) memset(sc + n, 0, (size_t)(nmax - n) * sizeof(float));
            }
            gemm(0, 0, m, hd, nmax, scores, nmax, Vv, hd, 0.0f, ctx + rb * D + head * hd, D);
          }
        }
      }
    }
    project_rows(ctx, R, D, W(l, 3), d, tmp);
    add_into(x, tmp, R * d);
    /* SwiGLU feed-forward */
    normalize_rows(x, xn, R, d, s->eps);
    project_rows(xn, R, d, W(l, 4), f, gate);
    project_rows(xn, R, d, W(l, 5), f, up);
    swiglu_rows(gate, up, R * f);
    project_rows(gate, R, f, W(l, 6), d, tmp);
    add_into(x, tmp, R * d);
  }
#undef TOK
#undef W
  for (int64_t e = 0; e < S; e++)
    if (segs[e].i1 == t) memcpy(last + segs[e].b * d, x + (segs[e].r1 - 1) * d, (size_t)d * sizeof(float));
}

/*
 * The prefix sharing of a prefill's rows (see decode_share), in scratch, or
 * NULL when no row shares DECODE_SHARE_MIN tokens with an earlier one (or out
 * of memory: then every row computes everything). Only rows of left padding
 * then real tokens at rotary positions 0, 1, ... take part.
 */
static const decode_share *share_prefixes(decoder *s, const double *tok, int64_t t) {
  static decode_share sh;
  const int64_t B = s->batch, cw1 = s->cw > 0 ? s->cw - 1 : 0;
  const size_t ints = (size_t)(4 * B + 1 + 2 * B), needs = (size_t)(B * (cw1 > 0 ? cw1 : 1));
  int64_t *mem = (int64_t *)dscratch(DS_SHARE, ints * sizeof(int64_t) + needs * sizeof(decode_need) * 2);
  if (!mem) return NULL;
  int64_t *donor = mem, *shared = mem + B, *lead = mem + 2 * B, *off = mem + 3 * B, *eligible = mem + 4 * B + 1, *fill = mem + 5 * B + 1;
  decode_need *need = (decode_need *)(mem + ints), *tmp = need + needs;
#define TK(b, i, field) (tok[3 * ((b) * t + (i)) + (field)])
  for (int64_t b = 0; b < B; b++) {
    int64_t i = 0;
    while (i < t && TK(b, i, 2) == 0) i++;
    lead[b] = i;
    eligible[b] = i < t;
    for (int64_t k = 0; i + k < t && eligible[b]; k++) eligible[b] = TK(b, i + k, 2) != 0 && TK(b, i + k, 1) == (double)k;
  }
  int64_t any = 0;
  for (int64_t b = 0; b < B; b++) {
    donor[b] = -1;
    shared[b] = 0;
    if (!eligible[b]) continue;
    const int64_t nb = t - lead[b];
    for (int64_t c = 0; c < b; c++) {
      if (!eligible[c]) continue;
      const int64_t nc = t - lead[c];
      int64_t k = 0;
      while (k < nb - 1 && k < nc && TK(b, lead[b] + k, 0) == TK(c, lead[c] + k, 0)) k++;
      if (k > shared[b]) {
        shared[b] = k;
        donor[b] = c;
      }
    }
    if (shared[b] < DECODE_SHARE_MIN) {
      donor[b] = -1;
      shared[b] = 0;
    }
    any |= donor[b] >= 0;
  }
  if (!any) return NULL;
  /* each recipient's canon state: the inputs at real indices p - cw1 .. p - 1, from the row that computed each */
  int64_t n = 0;
  for (int64_t b = 0; b < B; b++) {
    const int64_t p = shared[b];
    for (int64_t k = p - cw1 > 0 ? p - cw1 : 0; donor[b] >= 0 && k < p; k++) {
      int64_t from = donor[b];
      while (shared[from] > k) from = donor[from];
      tmp[n++] = (decode_need){from * t + lead[from] + k, b, k - (p - cw1)};
    }
  }
  /* by source row (src_i above holds row * t + position until here) */
  for (int64_t b = 0; b <= B; b++) off[b] = 0;
  for (int64_t j = 0; j < n; j++) off[tmp[j].src_i / t + 1]++;
  for (int64_t b = 0; b < B; b++) off[b + 1] += off[b];
  for (int64_t b = 0; b < B; b++) fill[b] = off[b];
  for (int64_t j = 0; j < n; j++) {
    const int64_t from = tmp[j].src_i / t;
    need[fill[from]++] = (decode_need){tmp[j].src_i % t, tmp[j].dst_b, tmp[j].dst_k};
  }
#undef TK
  sh = (decode_share){donor, shared, lead, off, need};
  return &sh;
}

static napi_value DecodeStep(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "decodeStep expects (session, heap, args, logits)");
    return NULL;
  }
  decoder *s = get_decoder(env, argv[0]);
  if (!s) return NULL;
  size_t bytes, na, nl;
  uint8_t *heap = (uint8_t *)typed_arg(env, argv[1], napi_uint8_array, &bytes, "decodeStep: the heap must be a Uint8Array");
  if (!heap) return NULL;
  const double *a = (const double *)typed_arg(env, argv[2], napi_float64_array, &na, "decodeStep: args must be a Float64Array");
  if (!a) return NULL;
  float *logits = (float *)typed_arg(env, argv[3], napi_float32_array, &nl, "decodeStep: logits must be a Float32Array");
  if (!logits) return NULL;
  const int64_t L = s->layers, d = s->d, nh = s->nh, nkv = s->nkv, hd = s->hd, f = s->f, V = s->vocab, B = s->batch;
  const int64_t D = nh * hd, KV = nkv * hd, group = nh / nkv, cw = s->cw, cw1 = cw > 0 ? cw - 1 : 0, cap = s->cap;
  const double tt = na > 0 ? a[0] : 0;
  if (!(tt >= 1 && tt <= (double)(cap - s->len)) || tt != (double)(int64_t)tt) {
    napi_throw_range_error(env, "XA_NATIVE_ARGS", "decodeStep: the new positions do not fit the session's capacity");
    return NULL;
  }
  const int64_t t = (int64_t)tt, rows = B * t, fixed = 3 + L * DECODE_LAYER_ARGS;
  if (na != (size_t)(fixed + 3 * rows) || nl != (size_t)(B * V)) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "decodeStep: args or logits of the wrong length for the session's batch");
    return NULL;
  }
  /* Operand bounds: embed, head, then each layer's weights. */
  const double dd = (double)d, DD = (double)D, KK = (double)KV, ff = (double)f;
  const double lsizes[DECODE_LAYER_ARGS] = {dd * DD, dd * KK, dd * KK, DD * dd, dd * ff, dd * ff, ff * dd, (double)cw * dd};
  BOUNDS(in_heap_d(a[1], (double)V * dd, bytes) && in_heap_d(a[2], dd * (double)V, bytes), "decodeStep");
  for (int64_t l = 0; l < L; l++) {
    const double *w = a + 3 + l * DECODE_LAYER_ARGS;
    BOUNDS(operands_in_heap(w, lsizes, cw > 0 ? DECODE_LAYER_ARGS : DECODE_LAYER_ARGS - 1, -1, bytes), "decodeStep");
  }
  const double *tok = a + fixed;
  for (int64_t r = 0; r < rows; r++) {
    const double id = tok[3 * r], pos = tok[3 * r + 1];
    if (!(id >= 0 && id < (double)V && id == (double)(int64_t)id && pos >= 0 && pos < (double)cap && pos == (double)(int64_t)pos)) {
      char msg[200];
      snprintf(msg, sizeof msg, "decodeStep: token %g at position %g (entry %lld) is outside the vocabulary [0, %lld) or the rotary "
               "tables [0, %lld)", id, pos, (long long)r, (long long)V, (long long)cap);
      napi_throw_range_error(env, "XA_NATIVE_TOKEN_ID", msg);
      return NULL;
    }
  }
  /* scratch for a pass of up to `chunk` computed positions (a decoding step of more rows than that runs in several) */
  const int64_t P = s->chunk;
  const int64_t att = group > DECODE_ATT_BLOCK ? group : DECODE_ATT_BLOCK;
  const size_t widths[DS_SCORES] = {(size_t)d, (size_t)d, (size_t)D, (size_t)KV, (size_t)KV, (size_t)D, (size_t)d, (size_t)f, (size_t)f, 0};
  int ok = 1;
  for (int i = 0; i < DS_PAD; i++) ok = ok && dscratch(i, (size_t)P * widths[i] * sizeof(float));
  ok = ok && dscratch(DS_PAD, (size_t)((cw1 + t) * d) * sizeof(float)) && dscratch(DS_SCORES, (size_t)(att * cap) * sizeof(float));
  ok = ok && dscratch(DS_LAST, (size_t)(B * d) * sizeof(float));
  ok = ok && dscratch(DS_ROWS, (size_t)P * (sizeof(decode_row) + sizeof(decode_seg)));
  if (!ok) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "decodeStep: out of memory for scratch buffers");
    return NULL;
  }
  (void)rows;
  const int64_t len = s->len;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < t; i++) s->real[b * cap + len + i] = tok[3 * (b * t + i) + 2] != 0;
  const decode_share *sh = len == 0 && t > DECODE_SHARE_MIN ? share_prefixes(s, tok, t) : NULL;
  /* passes: whole rows while they fit in `chunk` computed positions, a longer row in pieces */
  decode_row *prow = (decode_row *)dscratch_buf[DS_ROWS];
  decode_seg *pseg = (decode_seg *)(prow + P);
  float *last = (float *)dscratch_buf[DS_LAST];
  int64_t R = 0, S = 0;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t i = share_first(sh, b); i < t;) {
      if (R == P) {
        decode_pass(s, heap, a, tok, t, prow, R, pseg, S, sh, last);
        R = S = 0;
      }
      decode_seg *g = pseg + S++;
      g->b = b;
      g->i0 = i;
      g->r0 = R;
      for (; i < t && R < P; i++)
        if (i == t - 1 || tok[3 * (b * t + i) + 2] != 0) prow[R++] = (decode_row){b, i};
      g->i1 = i;
      g->r1 = R;
    }
  }
  if (R > 0) decode_pass(s, heap, a, tok, t, prow, R, pseg, S, sh, last);
  /* the head on each row's last new position */
  float *xn = (float *)dscratch_buf[DS_XN];
  if ((int64_t)(dscratch_len[DS_XN] / sizeof(float)) < B * d) xn = (float *)dscratch(DS_XN, (size_t)(B * d) * sizeof(float));
  if (!xn) {
    napi_throw_error(env, "XA_NATIVE_MEMORY", "decodeStep: out of memory for scratch buffers");
    return NULL;
  }
  normalize_rows(last, xn, B, d, s->eps);
  project_rows(xn, B, d, (const float *)(heap + (int64_t)a[2]), V, logits);
  s->len = len + t;
  return NULL;
}

static napi_value DecodeSelectRows(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "decodeSelectRows expects (session, rows)");
    return NULL;
  }
  decoder *s = get_decoder(env, argv[0]);
  if (!s) return NULL;
  size_t n;
  const double *rows = (const double *)typed_arg(env, argv[1], napi_float64_array, &n, "decodeSelectRows: rows must be a Float64Array");
  if (!rows) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (!(rows[i] >= 0 && rows[i] < (double)s->batch && rows[i] == (double)(int64_t)rows[i] && (i == 0 || rows[i] > rows[i - 1]))) {
      napi_throw_range_error(env, "XA_NATIVE_ARGS", "decodeSelectRows: rows must be ascending indices below the batch");
      return NULL;
    }
  }
  if (n == 0) {
    napi_throw_range_error(env, "XA_NATIVE_ARGS", "decodeSelectRows: keep at least one row");
    return NULL;
  }
  const int64_t block = s->nkv * s->cap * s->hd, cw1 = s->cw > 0 ? s->cw - 1 : 0;
  /* ascending sources at or after their destinations: copying in order never overwrites a row still to move */
  for (size_t i = 0; i < n; i++) {
    const int64_t from = (int64_t)rows[i], to = (int64_t)i;
    if (from == to) continue;
    for (int64_t l = 0; l < s->layers; l++) {
      memcpy(s->keys + (l * s->batch0 + to) * block, s->keys + (l * s->batch0 + from) * block, (size_t)block * sizeof(float));
      memcpy(s->values + (l * s->batch0 + to) * block, s->values + (l * s->batch0 + from) * block, (size_t)block * sizeof(float));
      if (cw1 > 0)
        memcpy(s->canon + (l * s->batch0 + to) * cw1 * s->d, s->canon + (l * s->batch0 + from) * cw1 * s->d,
               (size_t)(cw1 * s->d) * sizeof(float));
    }
    memcpy(s->real + to * s->cap, s->real + from * s->cap, (size_t)s->cap);
  }
  s->batch = (int64_t)n;
  return NULL;
}

static napi_value DecodeLength(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  decoder *s = argc == 1 ? get_decoder(env, argv[0]) : NULL;
  if (!s) return NULL;
  napi_value out;
  CHECK(napi_create_double(env, (double)s->len, &out));
  return out;
}

static napi_value DecodeFree(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) return NULL;
  napi_valuetype type;
  void *data = NULL;
  /* A second free is a no-op: the buffers go, the (zeroed) struct stays until the GC's finalizer frees it. */
  if (napi_typeof(env, argv[0], &type) == napi_ok && type == napi_external && napi_get_value_external(env, argv[0], &data) == napi_ok &&
      data && ((decoder *)data)->magic == DECODER_MAGIC)
    decoder_free_buffers((decoder *)data);
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
      {"rmsNorm", NULL, RmsNorm, NULL, NULL, NULL, napi_default, NULL},
      {"rmsNormGrad", NULL, RmsNormGrad, NULL, NULL, NULL, napi_default, NULL},
      {"swiglu", NULL, Swiglu, NULL, NULL, NULL, napi_default, NULL},
      {"swigluGrad", NULL, SwigluGrad, NULL, NULL, NULL, napi_default, NULL},
      {"rotary", NULL, Rotary, NULL, NULL, NULL, napi_default, NULL},
      {"decoderLayer", NULL, DecoderLayer, NULL, NULL, NULL, napi_default, NULL},
      {"decoderLayerGrad", NULL, DecoderLayerGrad, NULL, NULL, NULL, napi_default, NULL},
      {"embedding", NULL, Embedding, NULL, NULL, NULL, napi_default, NULL},
      {"embeddingGrad", NULL, EmbeddingGrad, NULL, NULL, NULL, napi_default, NULL},
      {"adamwAll", NULL, AdamWAll, NULL, NULL, NULL, napi_default, NULL},
      {"sumSquares", NULL, SumSquares, NULL, NULL, NULL, napi_default, NULL},
      {"lmHeadLoss", NULL, LmHeadLoss, NULL, NULL, NULL, napi_default, NULL},
      {"lmHeadLossGrad", NULL, LmHeadLossGrad, NULL, NULL, NULL, napi_default, NULL},
      {"setElementwiseThreads", NULL, SetElementwiseThreads, NULL, NULL, NULL, napi_default, NULL},
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"getThreads", NULL, GetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"blas", NULL, Blas, NULL, NULL, NULL, napi_default, NULL},
      {"decodeCreate", NULL, DecodeCreate, NULL, NULL, NULL, napi_default, NULL},
      {"decodeStep", NULL, DecodeStep, NULL, NULL, NULL, napi_default, NULL},
      {"decodeSelectRows", NULL, DecodeSelectRows, NULL, NULL, NULL, napi_default, NULL},
      {"decodeLength", NULL, DecodeLength, NULL, NULL, NULL, napi_default, NULL},
      {"decodeFree", NULL, DecodeFree, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
