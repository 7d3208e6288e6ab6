/** How a notebook run fails: which cell, which error, and what was written. */
import { NotebookError } from "../util/errors.js";
import type { Notebook } from "./nbformat.js";

export interface RunResult {
  notebook: Notebook;
  outPath: string;
  executed: number;
  errors: CellFailure[];
  ms: number;
}

export interface CellFailure {
  /** 0-based index in the written notebook. */
  index: number;
  cellId: string | undefined;
  ename: string;
  evalue: string;
}

/** A cell raised (and errors were not allowed), timed out, or the run was interrupted; the notebook up to it is written. */
export class CellExecutionError extends NotebookError {
  constructor(
    readonly failure: CellFailure,
    readonly result: RunResult,
    code = "XA_NOTEBOOK_CELL_ERROR",
  ) {
    super(code, `cell ${failure.index + 1}${failure.cellId ? ` (id ${failure.cellId})` : ""} raised ${failure.ename}: ${failure.evalue}`, {
      file: result.outPath,
      hint:
        code === "XA_NOTEBOOK_CELL_TIMEOUT"
          ? "raise --timeout or make the cell faster"
          : "the written notebook shows the traceback; fix the cell or pass --allow-errors",
    });
  }
}
