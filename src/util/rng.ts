/**
 * The project's one seeded PRNG: xoshiro128** seeded through splitmix32.
 * Pure 32-bit integer arithmetic, so the same seed gives the same stream on
 * every machine and JS engine. Library code never calls Math.random.
 *
 * @example
 * const rng = new Rng(42);
 * rng.float(); // in [0, 1)
 * const child = rng.fork("shuffle"); // independent stream, stable per label
 */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | undefined;

  constructor(seed: number | string = 0) {
    let x = typeof seed === "string" ? hashString(seed) : seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** An integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Rng.int: n must be a positive integer, got ${n}`);
    if (n <= 0x100000000) {
      const limit = 0x100000000 - (0x100000000 % n);
      for (;;) {
        const v = this.nextU32();
        if (v < limit) return v % n;
      }
    }
    return Math.floor(this.float() * n);
  }

  /** A standard normal sample (Box–Muller, with the spare value cached). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** One element of a non-empty array. */
  choice<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Rng.choice: empty array");
    return items[this.int(items.length)] as T;
  }

  /** An index drawn with probability proportional to weights. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    if (!(total > 0)) throw new RangeError("Rng.weighted: weights must sum to a positive number");
    let r = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i] as number;
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** An independent generator whose stream depends only on this one's state and the label. */
  fork(label: string): Rng {
    const child = new Rng(0);
    const h = hashString(label);
    child.s0 = (this.s0 ^ h) >>> 0;
    child.s1 = (this.s1 ^ Math.imul(h, 0x9e3779b9)) >>> 0;
    child.s2 = (this.s2 ^ rotl(h, 13)) >>> 0;
    child.s3 = (this.s3 ^ rotl(h, 27)) >>> 0;
    if ((child.s0 | child.s1 | child.s2 | child.s3) === 0) child.s0 = 1;
    for (let i = 0; i < 8; i++) child.nextU32();
    return child;
  }

  /** The full state, for checkpoints; restore with {@link Rng.fromState}. */
  getState(): RngState {
    return { s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0], spare: this.spareNormal ?? null };
  }

  static fromState(state: RngState): Rng {
    const rng = new Rng(0);
    const [a, b, c, d] = state.s;
    rng.s0 = a;
    rng.s1 = b;
    rng.s2 = c;
    rng.s3 = d;
    rng.spareNormal = state.spare ?? undefined;
    return rng;
  }
}

export interface RngState {
  s: [number, number, number, number];
  spare: number | null;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** FNV-1a 32-bit hash of a string's UTF-16 code units: stable seeds from names. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
