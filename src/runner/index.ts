/**
 * The headless notebook runner behind `xalign run` and `xalign verify`:
 * nbformat reading and writing with papermill-style parameters, the ZeroMQ
 * client, and the loop that runs each cell in the xalign kernel.
 */
export { CellExecutionError, type CellFailure, type RunResult } from "./failure.js";
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
export type { RunEvent, RunOptions } from "./run.js";

/**
 * Executes a notebook headless with the xalign kernel (see run.ts). Loaded on
 * first use so that importing this module (and the library, which exports it)
 * never loads ZeroMQ.
 *
 * @example
 * const { outPath } = await runNotebook("notebooks/01-data.ipynb", { out: "runs/01.ipynb", timeoutSeconds: 600 });
 */
export async function runNotebook(path: string, options?: import("./run.js").RunOptions): Promise<import("./failure.js").RunResult> {
  const { runNotebook: run } = await import("./run.js");
  return run(path, options);
}
