/*
 * xalign's native kernels for the TF.js wasm backend: sgemm through the
 * platform BLAS (OpenBLAS on Linux, Accelerate on macOS), reading and writing
 * the wasm heap in place, so a matMul costs no copies.
 *
 * Exports:
 *   sgemm(heap: Uint8Array, aOff, bOff, cOff, batchA, batchB, m, n, k, transA, transB)
 *     C[i] = op(A[i]) x op(B[i]) for i < max(batchA, batchB), row-major,
 *     offsets in bytes into `heap`; a batch of 1 is broadcast.
 *   setThreads(n), getThreads(), blas(): string
 */
#include <node_api.h>
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
      {"setThreads", NULL, SetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"getThreads", NULL, GetThreads, NULL, NULL, NULL, napi_default, NULL},
      {"blas", NULL, Blas, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
