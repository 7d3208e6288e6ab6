/**
 * MIME bundles and Deno's display convention: an object whose
 * `[Symbol.for("Jupyter.display")]()` returns a bundle shows itself in any
 * kernel that knows the convention (ours, Deno's).
 */
import { inspect } from "node:util";

/** A Jupyter MIME bundle: MIME type to data (text, base64 for binary, or JSON for `+json` types). */
export type MimeBundle = Record<string, unknown>;

/** The well-known symbol of Deno's convention. */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display");

/** An object that knows how to show itself. */
export interface Displayable {
  [JUPYTER_DISPLAY](): MimeBundle;
}

/**
 * Whether `value` implements the display convention.
 *
 * @example
 * isDisplayable({ [Symbol.for("Jupyter.display")]: () => ({ "text/plain": "hi" }) }); // true
 */
export function isDisplayable(value: unknown): value is Displayable {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as Record<symbol, unknown>)[JUPYTER_DISPLAY] === "function"
  );
}

/** Whether `value` already looks like a bundle: a plain object whose keys are all MIME types. */
export function isMimeBundle(value: unknown): value is MimeBundle {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => /^[a-z]+\/[\w.+-]+$/i.test(k));
}

/**
 * The bundle shown for `value`: its own bundle when it is displayable (with
 * `text/plain` added when missing, as Jupyter requires), the value itself when
 * it already is a bundle, otherwise `text/plain` from `util.inspect`.
 *
 * @example
 * toMimeBundle(42); // { "text/plain": "42" }
 */
export function toMimeBundle(value: unknown): MimeBundle {
  let bundle: MimeBundle;
  if (isDisplayable(value)) bundle = { ...value[JUPYTER_DISPLAY]() };
  else if (isMimeBundle(value)) bundle = { ...value };
  else return { "text/plain": plainText(value) };
  if (typeof bundle["text/plain"] !== "string") bundle["text/plain"] = isDisplayable(value) ? describe(value) : plainText(value);
  return bundle;
}

/** A short text stand-in for a displayable object without its own text/plain. */
function describe(value: object): string {
  const name = (value as { constructor?: { name?: string } }).constructor?.name;
  return `<${name && name !== "Object" ? name : "display"}>`;
}

/** How the kernel prints a value as text: strings as themselves, everything else via util.inspect. */
export function plainText(value: unknown): string {
  if (typeof value === "string") return value;
  return inspect(value, { depth: 4, colors: false, maxArrayLength: 100, breakLength: 100 });
}
