/**
 * The key/value cache of incremental decoding: per layer, the rotated keys
 * (stored transposed, [batch, kv_heads, head_dim, length], so attention is a
 * plain matMul) and the values ([batch, kv_heads, length, head_dim]) of every
 * position seen so far. The model appends to it in place of recomputing the
 * prefix.
 *
 * @example
 * const cache = new KvCache(model.config.num_hidden_layers);
 * model.forward(promptIds, { cache });      // prefill
 * model.forward(nextIds, { cache });        // one new position per row
 * cache.dispose();
 */
import * as tf from "@tensorflow/tfjs";

export class KvCache {
  /** Number of positions already in the cache. */
  length = 0;
  readonly keysT: (tf.Tensor4D | undefined)[];
  readonly values: (tf.Tensor4D | undefined)[];
  /** Per layer, the last width-1 inputs of the canon convolution [batch, width - 1, hidden] (models with canon_width). */
  readonly canon: (tf.Tensor3D | undefined)[];

  constructor(numLayers: number) {
    this.keysT = new Array(numLayers).fill(undefined);
    this.values = new Array(numLayers).fill(undefined);
    this.canon = new Array(numLayers).fill(undefined);
  }

  /** The canon convolution's carried inputs of a layer, if any. */
  canonState(layer: number): tf.Tensor3D | undefined {
    return this.canon[layer];
  }

  /** Replaces a layer's carried canon inputs (called inside the model's tidy: kept, the previous disposed). */
  setCanonState(layer: number, state: tf.Tensor3D): void {
    const old = this.canon[layer];
    tf.keep(state);
    if (old && old !== state) old.dispose();
    this.canon[layer] = state;
  }

  /**
   * Appends a layer's new keys/values and returns the full ones. Called inside
   * the model's tidy: the returned tensors are kept, the previous ones disposed.
   */
  append(layer: number, keyT: tf.Tensor4D, value: tf.Tensor4D): { keysT: tf.Tensor4D; values: tf.Tensor4D } {
    const oldK = this.keysT[layer];
    const oldV = this.values[layer];
    const k = oldK ? tf.concat([oldK, keyT], 3) : keyT;
    const v = oldV ? tf.concat([oldV, value], 2) : value;
    tf.keep(k);
    tf.keep(v);
    if (oldK && oldK !== k) oldK.dispose();
    if (oldV && oldV !== v) oldV.dispose();
    this.keysT[layer] = k;
    this.values[layer] = v;
    return { keysT: k, values: v };
  }

  /** Keeps only the given batch rows (e.g. after some sequences finished). */
  selectRows(rows: number[]): void {
    const idx = tf.tensor1d(rows, "int32");
    for (let l = 0; l < this.keysT.length; l++) {
      const k = this.keysT[l];
      const v = this.values[l];
      const c = this.canon[l];
      if (c) {
        this.canon[l] = tf.gather(c, idx, 0);
        c.dispose();
      }
      if (k) {
        this.keysT[l] = tf.gather(k, idx, 0);
        k.dispose();
      }
      if (v) {
        this.values[l] = tf.gather(v, idx, 0);
        v.dispose();
      }
    }
    idx.dispose();
  }

  dispose(): void {
    for (let l = 0; l < this.keysT.length; l++) {
      this.keysT[l]?.dispose();
      this.values[l]?.dispose();
      this.canon[l]?.dispose();
      this.canon[l] = undefined;
      this.keysT[l] = undefined;
      this.values[l] = undefined;
    }
    this.length = 0;
  }
}
