/**
 * Errors users see. Each kind has its own class and a stable `code`; the
 * message says what went wrong, where (file, line, field) and what to do.
 *
 * @example
 * throw new DataError("XA_DATA_LINE_COUNT", "train.en has 10 lines but train.zh has 9", {
 *   file: "train.zh", hint: "check that both sides were exported together",
 * });
 */
export interface ErrorLocation {
  /** The file the problem is in. */
  file?: string;
  /** 1-based line number in that file. */
  line?: number;
  /** 1-based column on that line. */
  column?: number;
  /** A config field or tensor name, dotted (e.g. "train.batch_size"). */
  field?: string;
  /** What the user should do about it. */
  hint?: string;
  cause?: unknown;
}

export class XalignError extends Error {
  readonly code: string;
  readonly file: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly field: string | undefined;
  readonly hint: string | undefined;

  constructor(code: string, message: string, where: ErrorLocation = {}) {
    const place = [
      where.file,
      where.line !== undefined ? `line ${where.line}` : undefined,
      where.line !== undefined && where.column !== undefined ? `column ${where.column}` : undefined,
      where.field,
    ]
      .filter((p) => p !== undefined)
      .join(", ");
    const full = `${place ? `${place}: ` : ""}${message}${where.hint ? ` (${where.hint})` : ""}`;
    super(full, where.cause !== undefined ? { cause: where.cause } : undefined);
    this.name = new.target.name;
    this.code = code;
    this.file = where.file;
    this.line = where.line;
    this.column = where.column;
    this.field = where.field;
    this.hint = where.hint;
  }
}

/** An experiment or model config that is invalid. */
export class ConfigError extends XalignError {}
/** Input data that cannot be read as the format says. */
export class DataError extends XalignError {}
/** A checkpoint file or folder that is missing, truncated or inconsistent. */
export class CheckpointError extends XalignError {}
/** A tokenizer file that cannot be loaded or used. */
export class TokenizerError extends XalignError {}
/** A compute backend that cannot start. */
export class BackendError extends XalignError {}
/** Training that cannot go on (NaN loss, interrupted save, ...). */
export class TrainingError extends XalignError {}
/** Bad arguments to a metric or an analysis routine. */
export class AnalysisError extends XalignError {}
/** Notebook execution or kernel protocol failures. */
export class NotebookError extends XalignError {}
