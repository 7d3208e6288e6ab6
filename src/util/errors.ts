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
/** A file-system failure (disk full, a file where a folder should be, a missing path...). */
export class FileSystemError extends XalignError {}

const SYSTEM_ERRORS: Record<string, { what: string; hint: string }> = {
  ENOSPC: {
    what: "no space left on the device",
    hint: "free disk space or point output: elsewhere, then rerun with --resume: checkpoints already written are intact",
  },
  EDQUOT: {
    what: "disk quota exceeded",
    hint: "free space under your quota or point output: elsewhere, then rerun with --resume: checkpoints already written are intact",
  },
  ENOTDIR: {
    what: "a part of this path is a file, not a folder",
    hint: "choose another output path, or move the file that is in the way",
  },
  EEXIST: { what: "a file is in the way", hint: "choose another path, or move the file that is in the way" },
  EISDIR: { what: "this is a folder, not a file", hint: "give the path of a file" },
  ENOENT: { what: "no such file or folder", hint: "check the path; relative paths start at the config file's folder" },
  EACCES: { what: "permission denied", hint: "choose a path you may write to, or fix its permissions" },
  EPERM: { what: "operation not permitted", hint: "choose a path you may write to, or fix its permissions" },
  EROFS: { what: "read-only file system", hint: "choose an output path on a writable disk" },
};

/**
 * A Node system error with a path (ENOSPC, ENOTDIR, ENOENT, EACCES...) as a
 * FileSystemError naming the path and what to do; undefined for anything else.
 */
export function systemError(err: unknown): XalignError | undefined {
  if (err instanceof XalignError || !(err instanceof Error)) return undefined;
  const e = err as NodeJS.ErrnoException & { dest?: string };
  const known = e.code !== undefined ? SYSTEM_ERRORS[e.code] : undefined;
  if (!known || typeof e.path !== "string") return undefined;
  const op = e.syscall ? ` (${e.syscall}${e.dest ? ` to ${e.dest}` : ""})` : "";
  return new FileSystemError(`XA_FS_${e.code}`, `${known.what}${op}`, { file: e.path, hint: known.hint, cause: err });
}
