/**
 * Exact, reproducible sampling arithmetic: temperature weights, integer
 * allocation of a total, and seeded orders whose prefixes are the nested subsets.
 */
import { AnalysisError } from "../util/errors.js";
import type { Rng } from "../util/rng.js";

/**
 * Temperature sampling weights: p_i ∝ n_i^(1/T). T = 1 keeps the natural
 * proportions; larger T flattens them toward uniform (upsampling small languages).
 *
 * @example
 * temperatureWeights({ zh: 900, el: 100 }, 5); // { zh: 0.61, el: 0.39 } (rounded)
 */
export function temperatureWeights(sizes: Readonly<Record<string, number>>, temperature: number): Record<string, number> {
  if (!(temperature > 0))
    throw new AnalysisError("XA_DATA_TEMPERATURE", `temperature must be positive, got ${temperature}`, { field: "temperature.t" });
  const keys = Object.keys(sizes);
  const raw = keys.map((k) => Math.max(0, sizes[k] as number) ** (1 / temperature));
  const sum = raw.reduce((a, b) => a + b, 0);
  const out: Record<string, number> = {};
  keys.forEach((k, i) => {
    out[k] = sum > 0 ? (raw[i] as number) / sum : 0;
  });
  return out;
}

/**
 * Splits an integer total in proportion to weights (largest remainder; ties by
 * key order), never giving a key more than its cap; what a capped key cannot
 * take goes to the others. The result sums to min(total, sum of caps).
 *
 * @example
 * allocate(10, { a: 0.5, b: 0.5 }, { a: 2, b: 100 }); // { a: 2, b: 8 }
 */
export function allocate(
  total: number,
  weights: Readonly<Record<string, number>>,
  caps?: Readonly<Record<string, number>>,
): Record<string, number> {
  const keys = Object.keys(weights).sort();
  const out: Record<string, number> = Object.fromEntries(keys.map((k) => [k, 0]));
  let open = keys.filter((k) => (weights[k] as number) > 0 && (caps?.[k] ?? Number.POSITIVE_INFINITY) > 0);
  let left = total;
  while (left > 0 && open.length > 0) {
    const wsum = open.reduce((a, k) => a + (weights[k] as number), 0);
    const exact = open.map((k) => (left * (weights[k] as number)) / wsum);
    const share = exact.map(Math.floor);
    let rest = left - share.reduce((a, b) => a + b, 0);
    const order = open
      .map((_, i) => i)
      .sort((i, j) => (exact[j] as number) - (share[j] as number) - ((exact[i] as number) - (share[i] as number)) || i - j);
    for (const i of order) {
      if (rest === 0) break;
      share[i] = (share[i] as number) + 1;
      rest--;
    }
    let capped = false;
    open.forEach((k, i) => {
      const cap = caps?.[k] ?? Number.POSITIVE_INFINITY;
      const give = Math.min(share[i] as number, cap - (out[k] as number));
      if (give < (share[i] as number)) capped = true;
      out[k] = (out[k] as number) + give;
      left -= give;
    });
    open = open.filter((k) => (out[k] as number) < (caps?.[k] ?? Number.POSITIVE_INFINITY));
    if (!capped) break;
  }
  return out;
}

/**
 * A seeded permutation of 0..n-1. Taking its first k entries samples k items
 * uniformly without replacement, and the first k lie inside the first k' > k:
 * that is how nested scale subsets stay nested.
 *
 * @example
 * seededOrder(5, new Rng(1)); // e.g. [3, 0, 4, 1, 2]
 */
export function seededOrder(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return rng.shuffle(order);
}
