/**
 * The `notebook` namespace of xalign (`import { notebook } from "xalign"`):
 * the display helpers (src/notebook) and the headless runner (src/runner),
 * which live in two layers so that the kernel can sit between them.
 */
export * from "./notebook/index.js";
export * from "./runner/index.js";
