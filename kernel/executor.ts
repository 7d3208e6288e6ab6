/**
 * Runs cells with tslab's executor and converter (used as a library) and
 * turns what tslab prints into structured results: the last expression's
 * value, type errors and thrown values as Jupyter error content.
 */
import { createRequire } from "node:module";
import type { CompletionInfo, Converter } from "tslab/dist/converter.js";
import type { ConverterSet, Executor } from "tslab/dist/executor.js";
import {
  type CellDiagnostic,
  type CellRecord,
  cellScriptName,
  diagnosticsError,
  type ErrorContent,
  isInterruptError,
  thrownError,
} from "./traceback.js";
import { installProjectTypeScript, type ProjectSettings, takeSourceMaps } from "./typescript.js";

const require = createRequire(import.meta.url);

export type CellOutcome =
  | { status: "ok"; hasValue: boolean; value: unknown }
  | { status: "error"; error: ErrorContent; interrupted: boolean };

/** What tslab's executor passes to its console for a type error. */
const DIAGNOSTIC_FORMAT = "%s%d:%d - %s";

/**
 * @example
 * const cells = new CellExecutor(process.cwd());
 * await cells.execute("1 + 1", 1); // { status: "ok", hasValue: true, value: 2 }
 */
export class CellExecutor {
  readonly settings: ProjectSettings;
  private executor: Executor | undefined;
  private converters: ConverterSet | undefined;
  private readonly cells = new Map<number, CellRecord>();
  private current: { count: number; source: string } = { count: 0, source: "" };
  private value: { has: boolean; value: unknown } = { has: false, value: undefined };
  private diagnostics: CellDiagnostic[] = [];
  private thrown: unknown[] = [];

  constructor(readonly rootDir: string) {
    this.settings = installProjectTypeScript(rootDir);
  }

  /** Creates the TypeScript program now (takes about a second) instead of at the first cell. */
  warm(): void {
    this.tslab();
  }

  get ready(): boolean {
    return this.executor !== undefined;
  }

  /** Runs one cell; `count` names it in stack traces ("Cell In[count]"). */
  async execute(source: string, count: number): Promise<CellOutcome> {
    const executor = this.tslab();
    this.current = { count, source };
    this.value = { has: false, value: undefined };
    this.diagnostics = [];
    this.thrown = [];
    let ok: boolean;
    try {
      ok = await executor.execute(source);
    } catch (err) {
      ok = false;
      this.thrown.push(err);
    }
    if (ok) return { status: "ok", hasValue: this.value.has, value: this.value.value };
    if (this.diagnostics.length > 0) {
      return { status: "error", error: diagnosticsError(count, source, this.diagnostics), interrupted: false };
    }
    const err = this.thrown[0];
    if (isInterruptError(err)) {
      return {
        status: "error",
        interrupted: true,
        error: {
          ename: "KeyboardInterrupt",
          evalue: "the cell was interrupted",
          traceback: [`KeyboardInterrupt: Cell In[${count}] was interrupted`],
        },
      };
    }
    return { status: "error", error: thrownError(err, this.cells), interrupted: false };
  }

  /** Stops waiting for the running cell's promise (tslab rejects it with an interrupt error). */
  interrupt(): void {
    this.executor?.interrupt();
  }

  complete(code: string, cursor: number): CompletionInfo {
    return this.tslab().complete(code, cursor);
  }

  inspect(code: string, cursor: number): ReturnType<Executor["inspect"]> {
    return this.tslab().inspect(code, cursor);
  }

  close(): void {
    this.executor?.close();
  }

  private tslab(): Executor {
    if (this.executor) return this.executor;
    // Loaded only now, after installProjectTypeScript replaced tslab's TypeScript.
    const { createConverter } = require("tslab/dist/converter.js") as typeof import("tslab/dist/converter.js");
    const { createExecutor } = require("tslab/dist/executor.js") as typeof import("tslab/dist/executor.js");
    let node: Converter | undefined;
    let browser: Converter | undefined;
    const named = (conv: Converter): Converter => ({ ...conv, convert: (prev, src) => this.nameOutput(conv.convert(prev, src)) });
    this.converters = {
      get node() {
        node ??= named(createConverter({ isJS: false, isBrowser: false }));
        return node;
      },
      get browser() {
        browser ??= named(createConverter({ isJS: false, isBrowser: true }));
        return browser;
      },
      close: () => {
        node?.close();
        browser?.close();
      },
    };
    this.executor = createExecutor(this.rootDir, this.converters, {
      log: (value: unknown) => {
        this.value = { has: true, value };
      },
      error: (first: unknown, ...rest: unknown[]) => {
        if (first === DIAGNOSTIC_FORMAT) {
          const [file, line, column, message] = rest as [string, number, number, string];
          this.diagnostics.push({ file: file ? file.trim() : undefined, line, column, message: String(message) });
        } else {
          this.thrown.push(first);
        }
      },
    });
    return this.executor;
  }

  /** Names the cell's code for stack traces and keeps its source maps. */
  private nameOutput<R extends { output?: string; hasToplevelAwait?: boolean }>(result: R): R {
    if (!result.output) return result;
    const { count, source } = this.current;
    const maps = takeSourceMaps(result.output);
    const firstLineOffset = (result.hasToplevelAwait ? "(async function(exports, require) { " : "(function(exports, require) { ").length;
    this.cells.set(count, { count, source, maps, firstLineOffset });
    return { ...result, output: `${result.output}\n//# sourceURL=${cellScriptName(count)}` };
  }
}
