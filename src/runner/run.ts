/**
 * The headless runner behind `xalign run`: starts the kernel, runs each
 * code cell over ZeroMQ, records outputs and execution counts, and writes a
 * valid nbformat 4.5 notebook atomically. Three parts with one job each
 * (papermill's split): the client (client.ts), parameters (nbformat.ts),
 * and this loop.
 */
import { dirname, resolve } from "node:path";
import { kernelArgv } from "../../kernel/spec.js";
import type { JupyterMessage } from "../../kernel/wire.js";
import { KernelClient } from "./client.js";
import { CellExecutionError, type CellFailure, type RunResult } from "./failure.js";
import { type Cell, checkParameters, injectParameters, type Output, readNotebook, sourceText, writeNotebook } from "./nbformat.js";

export interface RunOptions {
  /** Values injected after the cell tagged "parameters". */
  parameters?: Record<string, unknown>;
  /** Inject parameters the parameters cell does not declare (papermill's behaviour); default: a ConfigError listing the declared ones. */
  allowUnknownParameters?: boolean;
  /** Where to write the executed notebook; default: over the input. */
  out?: string;
  /** Seconds one cell may run; then it is interrupted and the run fails. Default: no limit. */
  timeoutSeconds?: number;
  /** Keep going after a cell raises (every later cell still runs); the run still reports the errors. */
  allowErrors?: boolean;
  /** The kernel's working directory; default: the notebook's folder (as Jupyter does). */
  cwd?: string;
  /** The kernel command; default: the xalign kernel. */
  kernelArgv?: string[];
  /** Aborting it interrupts the running cell and stops the run. */
  signal?: AbortSignal;
  /** Progress events: a cell starts or ends, output arrives. */
  onEvent?: (event: RunEvent) => void;
  /** Seconds to wait for the kernel to start. Default 60. */
  startupTimeoutSeconds?: number;
  env?: NodeJS.ProcessEnv;
}

export type RunEvent =
  | { kind: "kernel-ready"; ms: number }
  /** codeIndex counts the code cells from 1 (the last is codeCells); index is the cell's place among all cells. */
  | { kind: "cell-start"; index: number; codeIndex: number; codeCells: number; cell: Cell }
  | { kind: "output"; index: number; message: JupyterMessage }
  | { kind: "cell-end"; index: number; status: "ok" | "error" | "aborted"; ms: number; cell: Cell };

/**
 * Executes a notebook headless.
 *
 * @example
 * const { outPath, errors } = await runNotebook("notebooks/01-data.ipynb", { parameters: { steps: 10 }, out: "runs/01.ipynb" });
 */
export async function runNotebook(path: string, options: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const input = resolve(path);
  const outPath = resolve(options.out ?? input);
  let notebook = await readNotebook(input);
  if (options.parameters) {
    checkParameters(notebook, options.parameters, path, options.allowUnknownParameters === true);
    notebook = injectParameters(notebook, options.parameters).notebook;
  }
  const client = await KernelClient.launch({
    argv: options.kernelArgv ?? kernelArgv(),
    cwd: options.cwd ?? dirname(input),
    env: options.env ?? process.env,
  });
  const errors: CellFailure[] = [];
  let executed = 0;
  const result = (): RunResult => ({ notebook, outPath, executed, errors, ms: performance.now() - started });
  const onAbort = (): void => void client.interrupt();
  options.signal?.addEventListener("abort", onAbort);
  try {
    const info = await client.waitReady((options.startupTimeoutSeconds ?? 60) * 1000);
    options.onEvent?.({ kind: "kernel-ready", ms: performance.now() - started });
    notebook.metadata = {
      ...notebook.metadata,
      kernelspec: { name: "xalign", display_name: "TypeScript (xalign)", language: "typescript" },
      language_info: (info.content as { language_info?: unknown }).language_info ?? {},
    };
    const displays = new Map<string, Output[]>();
    const codeCells = notebook.cells.filter((c) => c.cell_type === "code").length;
    let codeIndex = 0;
    for (const [index, cell] of notebook.cells.entries()) {
      if (cell.cell_type !== "code") continue;
      codeIndex++;
      cell.outputs = [];
      cell.execution_count = null;
      if (sourceText(cell).trim() === "") continue;
      options.onEvent?.({ kind: "cell-start", index, codeIndex, codeCells, cell });
      const cellStarted = performance.now();
      const outcome = await executeCell(client, cell, displays, options, (message) =>
        options.onEvent?.({ kind: "output", index, message }),
      );
      executed++;
      const status = outcome.status;
      options.onEvent?.({
        kind: "cell-end",
        index,
        status: status === "timeout" ? "error" : status,
        ms: performance.now() - cellStarted,
        cell,
      });
      if (status === "ok") continue;
      const failure: CellFailure = { index, cellId: cell.id, ename: outcome.ename, evalue: outcome.evalue };
      errors.push(failure);
      if (status === "timeout") {
        await writeNotebook(outPath, notebook);
        throw new CellExecutionError(failure, result(), "XA_NOTEBOOK_CELL_TIMEOUT");
      }
      if (options.signal?.aborted || !options.allowErrors) {
        await writeNotebook(outPath, notebook);
        throw new CellExecutionError(failure, result(), options.signal?.aborted ? "XA_NOTEBOOK_INTERRUPTED" : "XA_NOTEBOOK_CELL_ERROR");
      }
    }
    await writeNotebook(outPath, notebook);
    return result();
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    await client.shutdown();
  }
}

type CellOutcome = { status: "ok" } | { status: "error" | "timeout"; ename: string; evalue: string };

async function executeCell(
  client: KernelClient,
  cell: Cell,
  displays: Map<string, Output[]>,
  options: RunOptions,
  onOutput: (message: JupyterMessage) => void,
): Promise<CellOutcome> {
  const outputs: Output[] = [];
  cell.outputs = outputs;
  const running = client.execute(sourceText(cell), {
    stopOnError: !options.allowErrors,
    onIopub: (message) => {
      recordOutput(outputs, displays, message);
      onOutput(message);
    },
  });
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  let killer: NodeJS.Timeout | undefined;
  let repeat: NodeJS.Timeout | undefined;
  const died = client.waitExit().then(() => undefined);
  if (options.timeoutSeconds !== undefined) {
    timer = setTimeout(() => {
      timedOut = true;
      // A SIGINT that lands while the kernel is still compiling the cell is lost
      // (Node only breaks running scripts), so repeat it until the cell ends.
      void client.interrupt();
      repeat = setInterval(() => void client.interrupt(), 1000);
      // A kernel that ignores interrupts is stopped.
      killer = setTimeout(() => client.kill(), 10_000);
    }, options.timeoutSeconds * 1000);
  }
  const outcome = await Promise.race([running, died]);
  clearTimeout(timer);
  clearTimeout(killer);
  clearInterval(repeat);
  if (!outcome)
    return { status: "error", ename: "KernelDied", evalue: `the kernel exited (${client.exited?.code ?? client.exited?.signal})` };
  const reply = outcome.reply.content as { status: string; execution_count?: number | null; ename?: string; evalue?: string };
  cell.execution_count = reply.execution_count ?? null;
  if (timedOut)
    return { status: "timeout", ename: "CellTimeoutError", evalue: `the cell did not finish within ${options.timeoutSeconds} s` };
  if (reply.status === "ok") return { status: "ok" };
  return { status: "error", ename: reply.ename ?? "Error", evalue: reply.evalue ?? reply.status };
}

/** Turns one IOPub message into notebook outputs (coalescing streams, applying display updates). */
export function recordOutput(outputs: Output[], displays: Map<string, Output[]>, message: JupyterMessage): void {
  const content = message.content as Record<string, unknown>;
  switch (message.header.msg_type) {
    case "stream": {
      const last = outputs.at(-1);
      if (last?.output_type === "stream" && last.name === content.name) last.text = `${String(last.text)}${String(content.text)}`;
      else outputs.push({ output_type: "stream", name: content.name, text: content.text });
      return;
    }
    case "display_data": {
      const output: Output = { output_type: "display_data", data: content.data ?? {}, metadata: content.metadata ?? {} };
      outputs.push(output);
      const id = (content.transient as { display_id?: string } | undefined)?.display_id;
      if (id) displays.set(id, [...(displays.get(id) ?? []), output]);
      return;
    }
    case "update_display_data": {
      const id = (content.transient as { display_id?: string } | undefined)?.display_id;
      for (const output of (id && displays.get(id)) || []) {
        output.data = content.data ?? {};
        output.metadata = content.metadata ?? {};
      }
      return;
    }
    case "execute_result":
      outputs.push({
        output_type: "execute_result",
        execution_count: content.execution_count ?? null,
        data: content.data ?? {},
        metadata: content.metadata ?? {},
      });
      return;
    case "error":
      outputs.push({ output_type: "error", ename: content.ename, evalue: content.evalue, traceback: content.traceback ?? [] });
      return;
    case "clear_output":
      outputs.splice(0);
      return;
  }
}
