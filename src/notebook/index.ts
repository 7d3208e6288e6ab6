/**
 * Display helpers for library code: rich output, in-place progress and
 * interrupts, the same whether the code runs in the xalign kernel, under
 * `xalign run`, or in a terminal.
 */
export { currentDisplayChannel, type DisplayChannel, type DisplayMessage, inKernel, setDisplayChannel } from "./channel.js";
export { type FrameLike, frameBundle, isDanfoFrame } from "./dataframe.js";
export { type DisplayHandle, type DisplayOptions, display, newDisplayId, updateDisplay } from "./display.js";
export { CellExecutionError, type CellFailure, type RunResult } from "./failure.js";
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
export {
  type Cell,
  INJECTED_TAG,
  injectParameters,
  type Notebook,
  type Output,
  PARAMETERS_TAG,
  parametersSource,
  parseParameterArgs,
  readNotebook,
  sourceText,
  writeNotebook,
} from "./nbformat.js";
export { Progress, type ProgressMetrics, type ProgressOptions } from "./progress.js";
export type { RunEvent, RunOptions } from "./run.js";

/**
 * Executes a notebook headless with the xalign kernel (see run.ts). Loaded on
 * first use so that importing the display helpers never loads ZeroMQ.
 *
 * @example
 * const { outPath } = await runNotebook("notebooks/01-data.ipynb", { out: "runs/01.ipynb", timeoutSeconds: 600 });
 */
export async function runNotebook(path: string, options?: import("./run.js").RunOptions): Promise<import("./failure.js").RunResult> {
  const { runNotebook: run } = await import("./run.js");
  return run(path, options);
}
