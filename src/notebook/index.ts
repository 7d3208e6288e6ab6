/**
 * Display helpers for library code: rich output, in-place progress and
 * interrupts, the same whether the code runs in the xalign kernel, under
 * `xalign run`, or in a terminal. The headless runner (`runNotebook`,
 * nbformat) lives in src/runner; the public `notebook` namespace of xalign
 * has both (src/notebook-namespace.ts).
 */
export { currentDisplayChannel, type DisplayChannel, type DisplayMessage, inKernel, setDisplayChannel } from "./channel.js";
export { type FrameLike, frameBundle, isDanfoFrame } from "./dataframe.js";
export { type DisplayHandle, type DisplayOptions, display, newDisplayId, updateDisplay } from "./display.js";
export {
  InterruptedError,
  interruptRequested,
  interruptSignal,
  requestInterrupt,
  resetInterrupt,
  throwIfInterrupted,
  watchSigint,
} from "./interrupt.js";
export {
  type Displayable,
  isDisplayable,
  isMimeBundle,
  JUPYTER_DISPLAY,
  type MimeBundle,
  plainText,
  svgImageHtml,
  toMimeBundle,
} from "./mime.js";
export { Progress, type ProgressMetrics, type ProgressOptions } from "./progress.js";
