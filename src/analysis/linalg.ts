/**
 * The few dense linear-algebra steps the fits need (systems of 2–4
 * unknowns): solving and inverting a symmetric positive (semi)definite
 * matrix by Gaussian elimination with partial pivoting.
 */

/** Solves A x = b (A square, row-major arrays); returns undefined when A is singular. */
export function solve(a: readonly number[][], b: readonly number[]): number[] | undefined {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    const scale = Math.max(...m.map((row) => Math.abs(row[col]!)), 1e-300);
    if (Math.abs(m[pivot]![col]!) <= 1e-14 * scale || !Number.isFinite(m[pivot]![col]!)) return undefined;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / m[col]![col]!;
      if (f === 0) continue;
      for (let c = col; c <= n; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}

/** The inverse of a square matrix, or undefined when it is singular. */
export function invert(a: readonly number[][]): number[][] | undefined {
  const n = a.length;
  const cols: number[][] = [];
  for (let j = 0; j < n; j++) {
    const e = Array.from({ length: n }, (_, i) => (i === j ? 1 : 0));
    const x = solve(a, e);
    if (!x) return undefined;
    cols.push(x);
  }
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => cols[j]![i]!));
}

/** Jᵀ J for a Jacobian with one row per observation. */
export function gram(jacobian: readonly number[][]): number[][] {
  const p = jacobian[0]?.length ?? 0;
  const out = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  for (const row of jacobian) for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) out[i]![j]! += row[i]! * row[j]!;
  return out;
}
