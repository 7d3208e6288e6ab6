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
 *
 * This file registers the exports; the kernels live in one file per group (README.md lists each
 * export, its operands, its file and the TypeScript wrapper that calls it), sharing xa_common.h.
 */
#include "xa_common.h"

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
