/**
 * MIME bundles and Deno's display convention: an object whose
 * `[Symbol.for("Jupyter.display")]()` returns a bundle shows itself in any
 * kernel that knows the convention (ours, Deno's).
 */
import { inspect } from "node:util";
import { frameBundle, isDanfoFrame } from "./dataframe.js";

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
 * it already is a bundle, a danfojs DataFrame or Series as an HTML table and
 * aligned text (as pandas in IPython), otherwise `text/plain` from
 * `util.inspect`.
 *
 * @example
 * toMimeBundle(42); // { "text/plain": "42" }
 */
export function toMimeBundle(value: unknown): MimeBundle {
  let bundle: MimeBundle;
  if (isDisplayable(value)) bundle = { ...value[JUPYTER_DISPLAY]() };
  else if (isMimeBundle(value)) bundle = { ...value };
  else if (isDanfoFrame(value)) return frameBundle(value);
  else return { "text/plain": plainText(value) };
  if (typeof bundle["text/plain"] !== "string") bundle["text/plain"] = isDisplayable(value) ? describe(value) : plainText(value);
  // An SVG also goes as HTML (an <img> with a data: URI): the classic notebook
  // ignores image/svg+xml in a notebook it does not trust, but keeps an
  // untrusted text/html's <img>; trusted, it and JupyterLab prefer the HTML and
  // draw the same picture.
  const svg = bundle["image/svg+xml"];
  if (typeof svg === "string" && bundle["text/html"] === undefined) bundle["text/html"] = svgImageHtml(svg, String(bundle["text/plain"]));
  return bundle;
}

/**
 * An SVG document as an HTML `<img>` with a base64 data: URI. Unlike inline
 * `<svg>`, it survives the HTML sanitising of an untrusted notebook, and its
 * text does not leak as loose words when a sanitiser strips the SVG.
 *
 * @example
 * svgImageHtml('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "a dot");
 * // '<img src="data:image/svg+xml;base64,…" alt="a dot">'
 */
export function svgImageHtml(svg: string, alt = ""): string {
  return `<img src="data:image/svg+xml;base64,${Buffer.from(svg, "utf8").toString("base64")}" alt="${escapeAttribute(alt)}">`;
}

function escapeAttribute(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
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
