/**
 * plotly.js for offline HTML: the library text from plotly.js-dist (read
 * once, lazily), a script tag that defines `window.Plotly`, and the
 * once-per-notebook injection state.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
let source: string | undefined;
let injected = false;

/** The plotly.js-dist version bundled into figures. */
export function plotlyVersion(): string {
  return (require("plotly.js-dist/package.json") as { version: string }).version;
}

/** The plotly.js library text, made safe to inline in a <script> element. */
export function plotlySource(): string {
  if (source === undefined) {
    const text = readFileSync(require.resolve("plotly.js-dist"), "utf8");
    // Inside <script>, "</script" ends the element and "<!--" changes parsing; neither may appear raw.
    source = text.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
  }
  return source;
}

/**
 * A script tag defining `window.Plotly`. `module` is shadowed so the bundle's
 * UMD header takes its browser branch even where a CommonJS shim exists.
 */
export function plotlyScriptTag(): string {
  return `<script type="text/javascript">(function(module){\n${plotlySource()}\n})(undefined);</script>`;
}

/**
 * Whether the next figure shown must carry the library (true once per
 * kernel session). Marks it as carried.
 */
export function takePlotlyInjection(): boolean {
  if (injected) return false;
  injected = true;
  return true;
}

/**
 * Makes the next figure carry plotly.js again: call it when a notebook's
 * outputs were cleared or a new notebook starts in the same kernel.
 */
export function resetPlotlyInjection(): void {
  injected = false;
}

/** JSON that can sit inside a <script> element. */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
