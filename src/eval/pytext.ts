/**
 * Python string semantics the reference tools (sacreBLEU, the SQuAD/MLQA
 * scripts) rely on, so our scores agree with theirs to the last digit:
 * `str.split()` whitespace, `str.strip()`, code-point indexing and
 * `format(x, ".2f")` rounding.
 */

/** Python's `str.isspace()` set (JS `\s` differs: it has U+FEFF, lacks U+001C–U+001F and U+0085). */
const PY_WS_CLASS = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WS_RUN = new RegExp(`[${PY_WS_CLASS}]+`, "g");
// Python whitespace other than the plain space: when absent, split(" ") is exact and much faster.
const PY_WS_NOT_SPACE = new RegExp(`[${PY_WS_CLASS.replace("\\x1c-\\x20", "\\x1c-\\x1f")}]`);
const PY_WS_LEFT = new RegExp(`^[${PY_WS_CLASS}]+`);

/**
 * Python's `str.split()` with no arguments: splits on runs of Python
 * whitespace and drops empty pieces.
 *
 * @example
 * pySplit("  a\u0085b  "); // ["a", "b"]
 */
export function pySplit(text: string): string[] {
  if (!PY_WS_NOT_SPACE.test(text)) {
    const pieces = text.split(" ");
    const out: string[] = [];
    for (const p of pieces) if (p !== "") out.push(p);
    return out;
  }
  const parts = text.split(PY_WS_RUN);
  if (parts.length > 0 && parts[0] === "") parts.shift();
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  return parts;
}

/** Python's `str.strip()` (no arguments). */
export function pyStrip(text: string): string {
  return pyRstrip(text.replace(PY_WS_LEFT, ""));
}

/** Python's `str.rstrip()` (no arguments). */
export function pyRstrip(text: string): string {
  // A loop from the end: an end-anchored regex is tried at every position.
  let end = text.length;
  while (end > 0 && isPySpaceCode(text.charCodeAt(end - 1))) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** Whether a UTF-16 code unit is Python whitespace (all of them are in the BMP). */
export function isPySpaceCode(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  if (c < 0x85) return false;
  return (
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

/** Whether `ch` (one code point) is whitespace for Python. */
export function pyIsSpace(ch: string): boolean {
  return ch.length === 1 && isPySpaceCode(ch.charCodeAt(0));
}

/** The code points of a string, as Python indexes it (astral characters count once). */
export function codePoints(text: string): string[] {
  return Array.from(text);
}

/**
 * Python's `f"{x:.{digits}f}"`: rounds the exact binary value half to even
 * (JS `toFixed` rounds exact ties up: `(0.125).toFixed(2)` is "0.13", Python
 * prints "0.12").
 *
 * @example
 * formatFixed(0.125, 2); // "0.12"
 */
export function formatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  if (Math.abs(x) >= 1e21) return x.toFixed(digits);
  // toFixed(100) is the exact decimal expansion of the double (to 100 places),
  // enough to see whether the value sits exactly on a tie.
  const exact = Math.abs(x).toFixed(100);
  const dot = exact.indexOf(".");
  const tail = exact.slice(dot + 1 + digits);
  const isTie = tail[0] === "5" && /^50*$/.test(tail);
  let out = x.toFixed(digits);
  if (isTie) {
    // toFixed picked the larger magnitude; Python keeps the even neighbour.
    const kept = exact.slice(0, dot + 1 + digits).replace(/\.$/, "");
    const lastDigit = Number(kept[kept.length - 1]);
    if (lastDigit % 2 === 0) out = (x < 0 ? "-" : "") + kept;
  }
  return out;
}
