/**
 * Native decoding: every layer and the head of one decoding step in one call
 * into the C addon (src/engine/native/decode.c, "native decoding"),
 * with the KV cache in native memory, in place of the ~250 TF.js ops per token
 * of the per-op path ({@link LlamaModel.forward} with a {@link KvCache}).
 *
 * It computes what the per-op path computes with an inference plan: the same
 * norm-folded weights (read in place on the wasm heap), rotary tables, canon
 * convolution, grouped-query attention over the cached positions that hold
 * real tokens (left padding is masked, so a padded row gives what it gives
 * alone) and head. Results agree with the per-op path to float rounding, not
 * bit for bit (the matrix products run as BLAS matrix-vector products here).
 *
 * Prefill runs the prompt through the same native call with t = prompt width
 * positions per row, which fills the cache in one call. Inside it the C code
 * works in passes of at most `chunk` (default 512) computed positions: whole
 * rows while they fit, a longer row in pieces, each pass through every layer
 * with GEMMs over its positions and causal attention as GEMMs per row and
 * head; left padding is skipped (its outputs would be discarded and its keys
 * are masked), and so is a prompt's prefix that an earlier row of the batch
 * starts with too (8 tokens or more): its keys, values and canon inputs are
 * the same (same tokens at the same rotary positions, nothing before them),
 * so they are copied from that row (evaluation prompts share the template,
 * and QA prompts a paragraph). The scratch is sized by a pass and kept between calls and
 * sessions, and freed KV caches are kept for the next sessions, so an
 * evaluation that opens one session per batch touches memory that is already
 * mapped. Decoding then runs t = 1: one pass over the batch's rows (GEMMs
 * with the rows as M; matrix-vector products through OpenBLAS sgemv for a
 * single row, which splits the larger ones over the BLAS threads that
 * initEngine's `threads` sets), attention in plain loops over the cache.
 *
 * @example
 * const decoder = NativeDecoder.open(model, model.inferenceWeights(), 1, 64);
 * if (decoder) {
 *   let logits = decoder.step([[1, 5, 9]], [[0, 1, 2]], [[1, 1, 1]]); // prefill: [1 * vocab]
 *   logits = decoder.step([[42]], [[3]], [[1]]);                       // one new token
 *   decoder.dispose();
 * }
 */
import type * as tf from "@tensorflow/tfjs";
import { nativeFusedOn, wasmHeapOffsets } from "../engine/fused.js";
import { type NativeAddon, type NativeDecodeSession, nativeStatus } from "../engine/native.js";
import { canonWidth, headDim } from "./config.js";
import type { InferenceWeights, LlamaModel } from "./llama.js";
import { RotaryTables } from "./rope.js";

export class NativeDecoder {
  private readonly addon: NativeAddon;
  private session: NativeDecodeSession | undefined;
  /** Embedding, head, then per layer q, k, v, o, gate, up, down (and canon): the step's operands in kernel order. */
  private readonly operands: tf.Tensor[];
  private readonly canon: boolean;
  private readonly vocab: number;
  private batch: number;

  private constructor(
    addon: NativeAddon,
    session: NativeDecodeSession,
    operands: tf.Tensor[],
    canon: boolean,
    vocab: number,
    batch: number,
  ) {
    this.addon = addon;
    this.session = session;
    this.operands = operands;
    this.canon = canon;
    this.vocab = vocab;
    this.batch = batch;
  }

  /**
   * Why `model` cannot decode natively right now, or undefined when it can: the
   * addon must be on (wasm backend) and the model must have no adapters.
   */
  static unsupported(model: LlamaModel): string | undefined {
    if (!nativeFusedOn()) return "the native kernels are off (not the wasm backend, or the addon is not built)";
    if (!nativeStatus().addon) return "the native addon is not loaded";
    if (model.hasAdapters()) return "the model has adapters, which native decoding does not run";
    return undefined;
  }

  /**
   * A session for `batch` rows and up to `capacity` positions (prompt width
   * plus new tokens) on the weights of `plan` (from model.inferenceWeights(),
   * which must outlive the session), or undefined when {@link unsupported}.
   * `chunk`: the most positions one native pass computes (default 512; the
   * results do not depend on it beyond float rounding; tests set it small to
   * exercise the split).
   */
  static open(
    model: LlamaModel,
    plan: InferenceWeights,
    batch: number,
    capacity: number,
    options: { chunk?: number } = {},
  ): NativeDecoder | undefined {
    if (NativeDecoder.unsupported(model) !== undefined) return undefined;
    const addon = nativeStatus().addon as NativeAddon;
    const cfg = model.config;
    const hd = headDim(cfg);
    const width = canonWidth(cfg);
    const rope = new RotaryTables(hd, cfg.rope_theta);
    const cos = new Float32Array(capacity * hd);
    const sin = new Float32Array(capacity * hd);
    for (let p = 0; p < capacity; p++) {
      const row = rope.at(p);
      cos.set(row.cos, p * hd);
      sin.set(row.sin, p * hd);
    }
    const dims = new Float64Array([
      cfg.num_hidden_layers,
      cfg.hidden_size,
      cfg.num_attention_heads,
      cfg.num_key_value_heads,
      hd,
      cfg.intermediate_size,
      cfg.vocab_size,
      width,
      batch,
      capacity,
      cfg.rms_norm_eps,
      options.chunk ?? 0,
    ]);
    const folded = (name: string): tf.Tensor => {
      const t = plan.folded.get(name);
      if (!t) throw new Error(`NativeDecoder: the inference plan has no folded weight for ${name}`);
      return t;
    };
    const operands: tf.Tensor[] = [model.weight("model.embed_tokens.weight"), plan.head];
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      operands.push(
        folded(`${p}.self_attn.q_proj`),
        folded(`${p}.self_attn.k_proj`),
        folded(`${p}.self_attn.v_proj`),
        model.weight(`${p}.self_attn.o_proj.weight`),
        folded(`${p}.mlp.gate_proj`),
        folded(`${p}.mlp.up_proj`),
        model.weight(`${p}.mlp.down_proj.weight`),
      );
      if (width > 0) operands.push(model.weight(`${p}.self_attn.canon.weight`));
    }
    const session = addon.decodeCreate(dims, cos, sin);
    return new NativeDecoder(addon, session, operands, width > 0, cfg.vocab_size, batch);
  }

  /** Positions in the cache. */
  get length(): number {
    return this.session ? this.addon.decodeLength(this.session) : 0;
  }

  /**
   * Runs t new positions per row (`ids`, `positions` and `real` are [batch][t]:
   * token ids, rotary positions, 1 for a real token and 0 for padding) and
   * returns the logits of each row's last new position, [batch * vocab], in
   * `out` when given (a caller that reads the logits before the next step can
   * reuse one array: a fresh 128 KB array per token costs page faults).
   */
  step(ids: number[][], positions: number[][], real: number[][], out?: Float32Array): Float32Array {
    if (!this.session) throw new Error("NativeDecoder: used after dispose()");
    const t = ids[0]?.length ?? 0;
    if (ids.length !== this.batch || positions.length !== this.batch || real.length !== this.batch)
      throw new Error(`NativeDecoder.step: expected ${this.batch} rows of ids, positions and flags`);
    const layerArgs = 8;
    const layers = (this.operands.length - 2) / (this.canon ? 8 : 7);
    const fixed = 3 + layers * layerArgs;
    const args = new Float64Array(fixed + 3 * this.batch * t);
    const heap = wasmHeapOffsets(this.operands);
    if (!heap) throw new Error("NativeDecoder.step: the native kernels are off or a weight was disposed");
    args[0] = t;
    args[1] = heap.offsets[0] as number;
    args[2] = heap.offsets[1] as number;
    let at = 2;
    for (let l = 0; l < layers; l++) {
      for (let i = 0; i < 7; i++) args[3 + l * layerArgs + i] = heap.offsets[at++] as number;
      args[3 + l * layerArgs + 7] = this.canon ? (heap.offsets[at++] as number) : -1;
    }
    for (let b = 0; b < this.batch; b++) {
      const rowIds = ids[b] as number[];
      const rowPos = positions[b] as number[];
      const rowReal = real[b] as number[];
      if (rowIds.length !== t || rowPos.length !== t || rowReal.length !== t)
        throw new Error(`NativeDecoder.step: row ${b} does not have ${t} ids, positions and flags`);
      for (let i = 0; i < t; i++) {
        const k = fixed + 3 * (b * t + i);
        args[k] = rowIds[i] as number;
        args[k + 1] = rowPos[i] as number;
        args[k + 2] = rowReal[i] ? 1 : 0;
      }
    }
    const size = this.batch * this.vocab;
    if (out && out.length < size) throw new Error(`NativeDecoder.step: the output holds ${out.length} logits, not ${size}`);
    const logits = out ? out.subarray(0, size) : new Float32Array(size);
    this.addon.decodeStep(this.session, heap.heap, args, logits);
    return logits;
  }

  /** Keeps only the given rows (ascending indices into the current batch). */
  selectRows(rows: number[]): void {
    if (!this.session) throw new Error("NativeDecoder: used after dispose()");
    this.addon.decodeSelectRows(this.session, Float64Array.from(rows));
    this.batch = rows.length;
  }

  /** Frees the native cache now. */
  dispose(): void {
    if (this.session) this.addon.decodeFree(this.session);
    this.session = undefined;
  }
}

/**
 * Rotary positions of the last `t` entries of a row's attention mask (1 real,
 * 0 padding): the count of real tokens before each (padding at 0), as the
 * per-op forward derives them.
 */
export function maskPositions(mask: number[], t: number): number[] {
  const out: number[] = [];
  let seen = 0;
  for (let j = 0; j < mask.length; j++) {
    const real = (mask[j] as number) > 0 ? 1 : 0;
    if (j >= mask.length - t) out.push(Math.max(seen + real - 1, 0));
    seen += real;
  }
  return out;
}
