/* Row and elementwise kernels: rmsNorm(Grad), swiglu(Grad), rotary, embedding(Grad). */
#include "xa_common.h"

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

napi_value RmsNorm(napi_env env, napi_callback_info info) {
  double a[6];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 6, a, &bytes);
  if (!heap) return NULL;
  const double rows = a[3], d = a[4];
  BOUNDS(d > 0, "rmsNorm");
  const double sizes[3] = {rows * d, rows * d, rows};
  static const char *const names[3] = {"x", "y", "r"};
  OPERANDS_IN_HEAP("rmsNorm", a, sizes, names, 3, -1, bytes);
  rms_ctx c = {(const float *)(heap + (int64_t)a[0]), NULL, (float *)(heap + (int64_t)a[1]), (float *)(heap + (int64_t)a[2]),
               NULL, NULL, (int64_t)d, (float)a[5]};
  parallel_for((int64_t)rows, (int64_t)(rows * d), rms_range, &c);
  return NULL;
}

napi_value RmsNormGrad(napi_env env, napi_callback_info info) {
  double a[6];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 6, a, &bytes);
  if (!heap) return NULL;
  const double rows = a[4], d = a[5];
  BOUNDS(d > 0, "rmsNormGrad");
  const double sizes[4] = {rows * d, rows, rows * d, rows * d};
  static const char *const names[4] = {"x", "r", "dy", "dx"};
  OPERANDS_IN_HEAP("rmsNormGrad", a, sizes, names, 4, -1, bytes);
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

napi_value Swiglu(napi_env env, napi_callback_info info) {
  double a[4];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 4, a, &bytes);
  if (!heap) return NULL;
  const double n = a[3];
  const double sizes[3] = {n, n, n};
  static const char *const names[3] = {"gate", "up", "y"};
  OPERANDS_IN_HEAP("swiglu", a, sizes, names, 3, -1, bytes);
  swiglu_ctx c = {(const float *)(heap + (int64_t)a[0]), (const float *)(heap + (int64_t)a[1]), NULL, (float *)(heap + (int64_t)a[2]),
                  NULL, NULL};
  parallel_for((int64_t)n, (int64_t)n, swiglu_range, &c);
  return NULL;
}

napi_value SwigluGrad(napi_env env, napi_callback_info info) {
  double a[6];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 6, a, &bytes);
  if (!heap) return NULL;
  const double n = a[5];
  const double sizes[5] = {n, n, n, n, n};
  static const char *const names[5] = {"gate", "up", "dy", "dgate", "dup"};
  OPERANDS_IN_HEAP("swigluGrad", a, sizes, names, 5, -1, bytes);
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

napi_value Rotary(napi_env env, napi_callback_info info) {
  double a[8];
  size_t bytes;
  uint8_t *heap = heap_nums(env, info, 8, a, &bytes);
  if (!heap) return NULL;
  const double rows = a[4], t = a[5], d = a[6];
  BOUNDS(t > 0 && d > 0 && (int64_t)d % 2 == 0, "rotary");
  const double sizes[4] = {rows * d, t * d, t * d, rows * d};
  static const char *const names[4] = {"x", "cos", "sin", "y"};
  OPERANDS_IN_HEAP("rotary", a, sizes, names, 4, -1, bytes);
  rotary_ctx c = {(const float *)(heap + (int64_t)a[0]), (const float *)(heap + (int64_t)a[1]), (const float *)(heap + (int64_t)a[2]),
                  (float *)(heap + (int64_t)a[3]), (int64_t)t, (int64_t)d, (float)a[7]};
  parallel_for((int64_t)rows, (int64_t)(rows * d), rotary_range, &c);
  return NULL;
}

/* ---- embedding ------------------------------------------------------------ */

enum {
  EM_TABLE, EM_IDS, EM_OUT,
  EM_OPERANDS, /* the heap offsets above; then the numbers */
  EM_ROWS = EM_OPERANDS, EM_VOCAB, EM_D,
  EM_ARGS
};
enum {
  EG_IDS, EG_DY, EG_DTABLE,
  EG_OPERANDS, /* the heap offsets above; then the numbers */
  EG_ROWS = EG_OPERANDS, EG_VOCAB, EG_D,
  EG_ARGS
};
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

napi_value Embedding(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, EM_ARGS, &a, &bytes);
  if (!heap) return NULL;
  const int64_t rows = (int64_t)a[EM_ROWS], vocab = (int64_t)a[EM_VOCAB], d = (int64_t)a[EM_D];
  BOUNDS(d > 0, "embedding");
  const double sizes[EM_OPERANDS] = {(double)vocab * d, (double)rows, (double)rows * d};
  static const char *const names[EM_OPERANDS] = {"table", "ids", "out"};
  OPERANDS_IN_HEAP("embedding", a, sizes, names, EM_OPERANDS, -1, bytes);
  const float *table = (const float *)(heap + (int64_t)a[EM_TABLE]);
  const int32_t *ids = (const int32_t *)(heap + (int64_t)a[EM_IDS]);
  float *out = (float *)(heap + (int64_t)a[EM_OUT]);
  if (!check_ids(env, ids, rows, vocab)) return NULL;
  for (int64_t r = 0; r < rows; r++) memcpy(out + r * d, table + (int64_t)ids[r] * d, (size_t)d * sizeof(float));
  return NULL;
}

napi_value EmbeddingGrad(napi_env env, napi_callback_info info) {
  const double *a;
  size_t bytes;
  uint8_t *heap = heap_table(env, info, EG_ARGS, &a, &bytes);
  if (!heap) return NULL;
  const int64_t rows = (int64_t)a[EG_ROWS], vocab = (int64_t)a[EG_VOCAB], d = (int64_t)a[EG_D];
  BOUNDS(d > 0, "embeddingGrad");
  const double sizes[EG_OPERANDS] = {(double)rows, (double)rows * d, (double)vocab * d};
  static const char *const names[EG_OPERANDS] = {"ids", "dy", "dtable"};
  OPERANDS_IN_HEAP("embeddingGrad", a, sizes, names, EG_OPERANDS, -1, bytes);
  const int32_t *ids = (const int32_t *)(heap + (int64_t)a[EG_IDS]);
  const float *dy = (const float *)(heap + (int64_t)a[EG_DY]);
  float *dt = (float *)(heap + (int64_t)a[EG_DTABLE]);
  if (!check_ids(env, ids, rows, vocab)) return NULL;
  memset(dt, 0, (size_t)(vocab * d) * sizeof(float));
  for (int64_t r = 0; r < rows; r++) {
    float *row = dt + (int64_t)ids[r] * d;
    const float *g = dy + r * d;
    for (int64_t i = 0; i < d; i++) row[i] += g[i];
  }
  return NULL;
}
