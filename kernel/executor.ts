/**
 * Runs cells with tslab's executor and converter (used as a library) and
 * turns what tslab prints into structured results: the last expression's
 * value, type errors and thrown values as Jupyter error content.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
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

  /**
   * Quick info at the cursor; inside a call's arguments with nothing under the
   * cursor (shift-tab right after `studySettings(`), that of the function called.
   */
  inspect(code: string, cursor: number): ReturnType<Executor["inspect"]> | undefined {
    // tslab's type says QuickInfo, but it is undefined where nothing is under the cursor.
    const info: ReturnType<Executor["inspect"]> | undefined = this.tslab().inspect(code, cursor);
    if (info) return info;
    const callee = calleeEnd(code, cursor);
    return callee === undefined ? undefined : this.tslab().inspect(code, callee);
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
    installFallbackRequire(this.settings.installationFallback);
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

/**
 * Where the name of the call whose arguments hold `cursor` ends: the open
 * parenthesis not closed before the cursor, then the identifier (or member
 * access) before it. Quoted strings and template literals are skipped.
 *
 * @example
 * calleeEnd("studySettings(", 14); // 13
 */
export function calleeEnd(code: string, cursor: number): number | undefined {
  const opens: number[] = [];
  let quote: string | undefined;
  for (let i = 0; i < Math.min(cursor, code.length); i++) {
    const ch = code[i];
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === '"' || ch === "'" || ch === "`") quote = ch;
    else if (ch === "(") opens.push(i);
    else if (ch === ")") opens.pop();
  }
  const open = opens.at(-1);
  if (open === undefined) return undefined;
  let end = open;
  while (end > 0 && /\s/.test(code[end - 1] ?? "")) end--;
  // A generic call (`f<T>(`) is not handled: only a name right before the parenthesis.
  return end > 0 && /[\w$]/.test(code[end - 1] ?? "") ? end : undefined;
}

/**
 * Makes the cells' `require` (tslab's, on `globalThis.__tslab__`) fall back to
 * xalign's installation for a bare module name the notebook's folder cannot
 * resolve: `import "xalign"` (the package's self-reference) and its
 * dependencies work in a notebook copied anywhere.
 */
export function installFallbackRequire(installation: string): void {
  const holder = (globalThis as { __tslab__?: { require: NodeJS.Require } }).__tslab__;
  if (!holder) return;
  const own = holder.require;
  const fromInstallation = createRequire(join(installation, "package.json"));
  holder.require = new Proxy(own, {
    apply(target, thisArg, args: unknown[]) {
      try {
        return Reflect.apply(target, thisArg, args);
      } catch (err) {
        const id = args[0];
        const missing = (err as { code?: string }).code === "MODULE_NOT_FOUND" && typeof id === "string";
        if (!missing || id.startsWith(".") || id.startsWith("/") || !String((err as Error).message).includes(`'${id}'`)) throw err;
        let resolved: string;
        try {
          resolved = fromInstallation.resolve(id);
        } catch {
          throw err;
        }
        return fromInstallation(resolved);
      }
    },
  });
}
