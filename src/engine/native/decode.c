/* Native decoding with a KV cache: decodeCreate, decodeStep, decodeSelectRows, decodeLength, decodeFree. */
#include "xa_common.h"

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

/* decodeCreate's dims (see the comment above decoder): DC_CHUNK is optional. */
enum {
  DC_LAYERS, DC_D, DC_NH, DC_NKV, DC_HD, DC_F, DC_VOCAB, DC_CANON, DC_BATCH, DC_CAP, DC_EPS, DC_CHUNK,
  DC_FIELDS
};

napi_value DecodeCreate(napi_env env, napi_callback_info info) {
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
  if (nd != DC_CHUNK && nd != DC_FIELDS) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "decodeCreate: dims must hold 11 or 12 numbers");
    return NULL;
  }
  for (int i = 0; i < (int)nd; i++) {
    if (i == DC_EPS) continue;
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
  s->layers = (int64_t)a[DC_LAYERS];
  s->d = (int64_t)a[DC_D];
  s->nh = (int64_t)a[DC_NH];
  s->nkv = (int64_t)a[DC_NKV];
  s->hd = (int64_t)a[DC_HD];
  s->f = (int64_t)a[DC_F];
  s->vocab = (int64_t)a[DC_VOCAB];
  s->cw = (int64_t)a[DC_CANON];
  s->batch = s->batch0 = (int64_t)a[DC_BATCH];
  s->cap = (int64_t)a[DC_CAP];
  s->eps = (float)a[DC_EPS];
  s->chunk = nd == DC_FIELDS && a[DC_CHUNK] >= 1 ? (int64_t)a[DC_CHUNK] : DECODE_CHUNK;
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

/* y [rows, out] = x [rows, in] @ w [in, out] (overwritten): a matrix-vector product for one row, else a GEMM. */
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

/* decodeStep's args: t, the embedding and head offsets, then DECODE_LAYER_ARGS offsets per layer (LW_*), then
 * per row and new position (row-major) DECODE_TOKEN_FIELDS numbers (TK_*). */
enum { ST_T, ST_EMBED, ST_HEAD, ST_LAYERS };
enum { LW_Q, LW_K, LW_V, LW_O, LW_GATE, LW_UP, LW_DOWN, LW_CANON, DECODE_LAYER_ARGS };
enum { TK_ID, TK_POS, TK_REAL, DECODE_TOKEN_FIELDS };

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
#define W(l, i) ((const float *)(heap + (int64_t)a[ST_LAYERS + (l) * DECODE_LAYER_ARGS + (i)]))
#define TOK(b, i, field) (tok[DECODE_TOKEN_FIELDS * ((b) * t + (i)) + (field)])
  const float *embed = (const float *)(heap + (int64_t)a[ST_EMBED]);
  for (int64_t r = 0; r < R; r++) memcpy(x + r * d, embed + (int64_t)TOK(rows[r].b, rows[r].i, TK_ID) * d, (size_t)d * sizeof(float));
  for (int64_t l = 0; l < L; l++) {
    /* attention input: normalized rows, then the canon convolution over them */
    normalize_rows(x, xn, R, d, s->eps);
    if (cw > 0) {
      const float *cwt = W(l, LW_CANON);
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
          if (TOK(g->b, rows[r].i, TK_REAL) != 0) memcpy(pad + (cw1 + rows[r].i - g->i0) * d, xn + r * d, (size_t)d * sizeof(float));
        for (int64_t r = g->r0; r < g->r1; r++) canon_row(tmp + (r - g->r0) * d, xn + r * d, pad + (cw1 + rows[r].i - g->i0) * d, cwt, cw, d);
        memcpy(xn + g->r0 * d, tmp, (size_t)((g->r1 - g->r0) * d) * sizeof(float));
        memcpy(state, pad + n * d, (size_t)(cw1 * d) * sizeof(float));
      }
    }
    project_rows(xn, R, d, W(l, LW_Q), D, q);
    project_rows(xn, R, d, W(l, LW_K), KV, k);
    project_rows(xn, R, d, W(l, LW_V), KV, v);
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
        const int64_t p = (int64_t)TOK(g->b, rows[r].i, TK_POS), slot = len + rows[r].i;
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
    project_rows(ctx, R, D, W(l, LW_O), d, tmp);
    add_into(x, tmp, R * d);
    /* SwiGLU feed-forward */
    normalize_rows(x, xn, R, d, s->eps);
    project_rows(xn, R, d, W(l, LW_GATE), f, gate);
    project_rows(xn, R, d, W(l, LW_UP), f, up);
    swiglu_rows(gate, up, R * f);
    project_rows(gate, R, f, W(l, LW_DOWN), d, tmp);
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
#define TK(b, i, field) (tok[DECODE_TOKEN_FIELDS * ((b) * t + (i)) + (field)])
  for (int64_t b = 0; b < B; b++) {
    int64_t i = 0;
    while (i < t && TK(b, i, TK_REAL) == 0) i++;
    lead[b] = i;
    eligible[b] = i < t;
    for (int64_t k = 0; i + k < t && eligible[b]; k++) eligible[b] = TK(b, i + k, TK_REAL) != 0 && TK(b, i + k, TK_POS) == (double)k;
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
      while (k < nb - 1 && k < nc && TK(b, lead[b] + k, TK_ID) == TK(c, lead[c] + k, TK_ID)) k++;
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

napi_value DecodeStep(napi_env env, napi_callback_info info) {
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
  const double tt = na > 0 ? a[ST_T] : 0;
  if (!(tt >= 1 && tt <= (double)(cap - s->len)) || tt != (double)(int64_t)tt) {
    napi_throw_range_error(env, "XA_NATIVE_ARGS", "decodeStep: the new positions do not fit the session's capacity");
    return NULL;
  }
  const int64_t t = (int64_t)tt, rows = B * t, fixed = ST_LAYERS + L * DECODE_LAYER_ARGS;
  if (na != (size_t)(fixed + DECODE_TOKEN_FIELDS * rows) || nl != (size_t)(B * V)) {
    napi_throw_error(env, "XA_NATIVE_ARGS", "decodeStep: args or logits of the wrong length for the session's batch");
    return NULL;
  }
  /* Operand bounds: embed, head, then each layer's weights. */
  const double dd = (double)d, DD = (double)D, KK = (double)KV, ff = (double)f;
  const double lsizes[DECODE_LAYER_ARGS] = {dd * DD, dd * KK, dd * KK, DD * dd, dd * ff, dd * ff, ff * dd, (double)cw * dd};
  const double hsizes[2] = {(double)V * dd, dd * (double)V};
  static const char *const hnames[2] = {"embed", "head"};
  static const char *const lnames[DECODE_LAYER_ARGS] = {"q", "k", "v", "o", "gate", "up", "down", "canon"};
  OPERANDS_IN_HEAP("decodeStep", a + ST_EMBED, hsizes, hnames, 2, -1, bytes);
  for (int64_t l = 0; l < L; l++) {
    const double *w = a + ST_LAYERS + l * DECODE_LAYER_ARGS;
    OPERANDS_IN_HEAP("decodeStep", w, lsizes, lnames, cw > 0 ? DECODE_LAYER_ARGS : DECODE_LAYER_ARGS - 1, -1, bytes);
  }
  const double *tok = a + fixed;
  for (int64_t r = 0; r < rows; r++) {
    const double id = tok[DECODE_TOKEN_FIELDS * r + TK_ID], pos = tok[DECODE_TOKEN_FIELDS * r + TK_POS];
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
    for (int64_t i = 0; i < t; i++) s->real[b * cap + len + i] = tok[DECODE_TOKEN_FIELDS * (b * t + i) + TK_REAL] != 0;
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
        if (i == t - 1 || tok[DECODE_TOKEN_FIELDS * (b * t + i) + TK_REAL] != 0) prow[R++] = (decode_row){b, i};
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
  project_rows(xn, B, d, (const float *)(heap + (int64_t)a[ST_HEAD]), V, logits);
  s->len = len + t;
  return NULL;
}

napi_value DecodeSelectRows(napi_env env, napi_callback_info info) {
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

napi_value DecodeLength(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  decoder *s = argc == 1 ? get_decoder(env, argv[0]) : NULL;
  if (!s) return NULL;
  napi_value out;
  CHECK(napi_create_double(env, (double)s->len, &out));
  return out;
}

napi_value DecodeFree(napi_env env, napi_callback_info info) {
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
