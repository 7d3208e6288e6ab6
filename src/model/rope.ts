/**
 * Rotary position embeddings, Hugging Face's rotate-half convention:
 * x * cos + rotate_half(x) * sin with rotate_half(x) = [-x2, x1].
 *
 * The tables are built in JavaScript for exactly the rows a forward needs
 * ([rows * heads, head_dim], one row per (token, head)), so applying RoPE is
 * same-shape elementwise ops: broadcasting ops are many times slower than
 * same-shape ones on the wasm backend. They are applied by rotaryEmbedding
 * (src/engine/fused.ts): a native kernel, or rotate_half as a matMul with a
 * fixed signed permutation matrix (one fast op, and its gradient is a matMul too).
 *
 * @example
 * const rope = new RotaryTables(64, 10000);
 * const { cos, sin } = rope.rows([0, 1, 2], [0.125, 0.125, 1]); // 3 tokens x (2 query heads, 1 key head)
 */
import * as tf from "@tensorflow/tfjs";

export class RotaryTables {
  readonly dim: number;
  private readonly invFreq: Float64Array;
  private readonly cosCache: Float32Array[] = [];
  private readonly sinCache: Float32Array[] = [];
  /** Tables of rows() for standard positions, by count, period and head scales (a few at a time). */
  private readonly rowsCache = new Map<string, { cos: Float32Array; sin: Float32Array }>();

  constructor(dim: number, theta: number) {
    this.dim = dim;
    const half = dim / 2;
    this.invFreq = new Float64Array(half);
    // HF computes inv_freq and the angles in float32; round the same way.
    for (let i = 0; i < half; i++) this.invFreq[i] = Math.fround(1 / Math.fround(theta ** Math.fround((2 * i) / dim)));
  }

  /** cos and sin of position `p` over the head dimension (halves repeated, as HF's cat(freqs, freqs)). */
  at(p: number): { cos: Float32Array; sin: Float32Array } {
    let cos = this.cosCache[p];
    let sin = this.sinCache[p];
    if (!cos || !sin) {
      const half = this.dim / 2;
      cos = new Float32Array(this.dim);
      sin = new Float32Array(this.dim);
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(p * (this.invFreq[i] as number));
        cos[i] = cos[half + i] = Math.cos(angle);
        sin[i] = sin[half + i] = Math.sin(angle);
      }
      this.cosCache[p] = cos;
      this.sinCache[p] = sin;
    }
    return { cos, sin };
  }

  /**
   * Tables for tokens at `positions`, repeated for each head; head h's rows
   * are multiplied by headScale[h] (the attention scale 1/sqrt(head_dim) is
   * folded into the query heads this way).
   */
  rows(positions: ArrayLike<number>, headScale: number[]): { cos: tf.Tensor2D; sin: tf.Tensor2D } {
    const heads = headScale.length;
    const n = positions.length;
    const d = this.dim;
    // Rows at positions 0..period-1 repeated (every packed training batch) reuse their tables.
    const period = standardPeriod(positions);
    const key = period ? `${n}:${period}:${headScale.join(",")}` : undefined;
    const hit = key ? this.rowsCache.get(key) : undefined;
    // Copies: the cpu backend keeps the array it is given as the tensor's storage.
    if (hit) return { cos: tf.tensor2d(hit.cos.slice(), [n * heads, d]), sin: tf.tensor2d(hit.sin.slice(), [n * heads, d]) };
    const cos = new Float32Array(n * heads * d);
    const sin = new Float32Array(n * heads * d);
    for (let r = 0; r < n; r++) {
      const t = this.at(positions[r] as number);
      for (let h = 0; h < heads; h++) {
        const s = headScale[h] as number;
        const off = (r * heads + h) * d;
        for (let i = 0; i < d; i++) {
          cos[off + i] = (t.cos[i] as number) * s;
          sin[off + i] = (t.sin[i] as number) * s;
        }
      }
    }
    if (key) {
      if (this.rowsCache.size >= 8) this.rowsCache.delete(this.rowsCache.keys().next().value as string);
      this.rowsCache.set(key, { cos: cos.slice(), sin: sin.slice() });
    }
    return { cos: tf.tensor2d(cos, [n * heads, d]), sin: tf.tensor2d(sin, [n * heads, d]) };
  }
}

/** p when positions are 0..p-1 repeated (p dividing their count), else undefined. */
function standardPeriod(positions: ArrayLike<number>): number | undefined {
  let period = 0;
  while (period < positions.length && positions[period] === period) period++;
  if (period === 0 || positions.length % period !== 0) return undefined;
  for (let i = period; i < positions.length; i++) if (positions[i] !== i % period) return undefined;
  return period;
}
