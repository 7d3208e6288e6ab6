/* Helpers every kernel file shares (declared in xa_common.h): argument reading, bounds checks,
 * scratch buffers and the thread pool of the elementwise loops. */
#include "xa_common.h"

/* Grow-only scratch buffers (one call at a time: N-API calls run on the JS thread). */
static float *scratch_buf[SCRATCH_SLOTS];
static size_t scratch_len[SCRATCH_SLOTS];

float *scratch(int slot, size_t n) {
  if (scratch_len[slot] < n) {
    free(scratch_buf[slot]);
    scratch_buf[slot] = (float *)malloc(n * sizeof(float));
    scratch_len[slot] = scratch_buf[slot] ? n : 0;
  }
  return scratch_buf[slot];
}

int64_t arg_int(napi_env env, napi_value v) {
  int64_t out = 0;
  napi_get_value_int64(env, v, &out);
  return out;
}




/* ---- parallel loops ---------------------------------------------------- */

int ew_threads = 1;

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
void parallel_for(int64_t n, int64_t work, range_fn fn, void *ctx) {
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

/* The heap (argv[0], a Uint8Array) and argv[1..count] as doubles (exact for offsets below 2^53). */
uint8_t *heap_nums(napi_env env, napi_callback_info info, size_t count, double *out, size_t *bytes) {
  size_t argc = MAX_ARGS;
  napi_value argv[MAX_ARGS];
  if (count + 1 > MAX_ARGS || napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != count + 1) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: wrong number of arguments");
    return NULL;
  }
  uint8_t *data = (uint8_t *)typed_arg(env, argv[0], napi_uint8_array, bytes, "xalign_native: the heap must be a Uint8Array");
  if (!data) return NULL;
  for (size_t i = 0; i < count; i++) {
    if (napi_get_value_double(env, argv[i + 1], &out[i]) != napi_ok) {
      napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: arguments after the heap must be numbers");
      return NULL;
    }
  }
  return data;
}

int in_heap_d(double off, double n, size_t bytes) {
  /* the range test first: it rules out infinities and huge values before the integer cast */
  return off >= 0 && n >= 0 && off + n * 4 <= (double)bytes && (int64_t)off % 4 == 0;
}

/* See xa_common.h. */
int operand_outside_heap(const double *off, const double *sizes, int n, int optional, size_t bytes) {
  for (int i = 0; i < n; i++) {
    if (i == optional && off[i] < 0) continue;
    if (!in_heap_d(off[i], sizes[i], bytes)) return i;
  }
  return -1;
}


/* The heap (argv[0]) and a Float64Array (argv[1]) of any length, written to *length. */
uint8_t *heap_table_any(napi_env env, napi_callback_info info, const double **nums, size_t *length, size_t *bytes) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: expected (heap, Float64Array)");
    return NULL;
  }
  uint8_t *data = (uint8_t *)typed_arg(env, argv[0], napi_uint8_array, bytes, "xalign_native: the heap must be a Uint8Array");
  if (!data) return NULL;
  *nums = (const double *)typed_arg(env, argv[1], napi_float64_array, length, "xalign_native: the arguments must be a Float64Array");
  return *nums ? data : NULL;
}

/* The heap (argv[0]) and a Float64Array of exactly `count` numbers (argv[1]). */
uint8_t *heap_table(napi_env env, napi_callback_info info, size_t count, const double **nums, size_t *bytes) {
  size_t length;
  uint8_t *heap = heap_table_any(env, info, nums, &length, bytes);
  if (heap && length != count) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "xalign_native: the arguments must be a Float64Array of the right length");
    return NULL;
  }
  return heap;
}

/* A typed array argument of the given type: its data and element count, or NULL (with an exception pending). */
void *typed_arg(napi_env env, napi_value v, napi_typedarray_type want, size_t *length, const char *what) {
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
