/**
 * The xalign kernel: Jupyter messaging protocol 5.3 over ZeroMQ (shell,
 * control, iopub, stdin, heartbeat), cells run by CellExecutor.
 *
 * What it does beyond tslab's own server: `error` messages with
 * ename/evalue/traceback; stop_on_error as the request asks (only the
 * requests already queued are aborted); execute_result with the execution
 * count and a full MIME bundle (Deno's `Symbol.for("Jupyter.display")`);
 * display_data/update_display_data with display ids from library code;
 * interrupts (interrupt_request or SIGINT) that abort the running cell after
 * giving library code a chance to stop at a step boundary.
 */
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import * as zmq from "zeromq";
import { setDisplayChannel } from "../src/notebook/channel.js";
import { requestInterrupt, resetInterrupt } from "../src/notebook/interrupt.js";
import { toMimeBundle } from "../src/notebook/mime.js";
import { VERSION } from "../src/version.js";
import { CellExecutor, type CellOutcome } from "./executor.js";
import type { ErrorContent } from "./traceback.js";
import { tslabTypeScriptVersion } from "./typescript.js";
import {
  type ConnectionInfo,
  channelAddress,
  decodeMessage,
  encodeMessage,
  type JupyterMessage,
  newMessage,
  PROTOCOL_VERSION,
} from "./wire.js";

const require = createRequire(import.meta.url);

export interface KernelOptions {
  connection: ConnectionInfo;
  /** Directory cells run in and whose tsconfig/package.json apply (Jupyter starts kernels in the notebook's folder). */
  rootDir: string;
  /** How long an interrupted cell may take to stop on its own before the kernel stops waiting for it. Default 3000 ms. */
  interruptGraceMs?: number;
  /** Where the kernel's own diagnostics go; default the real stderr. */
  log?: (line: string) => void;
}

interface ExecuteContent {
  code?: string;
  silent?: boolean;
  store_history?: boolean;
  stop_on_error?: boolean;
}

interface RunningCell {
  interrupted: boolean;
  timer: NodeJS.Timeout | undefined;
}

type Channel = zmq.Router | zmq.Reply;

/**
 * @example
 * const kernel = new XalignKernel({ connection: await readConnectionFile(path), rootDir: process.cwd() });
 * await kernel.start();
 */
export class XalignKernel {
  private readonly session = randomUUID();
  private readonly key: string;
  private cells: CellExecutor | undefined;
  private warmTimer: NodeJS.Timeout | undefined;
  private readonly iopub = new zmq.Publisher({ linger: 0 });
  private readonly shell = new zmq.Router({ linger: 0 });
  private readonly control = new zmq.Router({ linger: 0 });
  private readonly stdin = new zmq.Router({ linger: 0 });
  private readonly heartbeat = new zmq.Reply({ linger: 0 });
  private readonly queue: JupyterMessage[] = [];
  private draining = false;
  private executionCount = 0;
  private parent: JupyterMessage | undefined;
  private running: RunningCell | undefined;
  /** Objects display()ed during the running cell: not shown again as its result. */
  private shownThisCell = new WeakSet<object>();
  private readonly streams: Record<"stdout" | "stderr", string> = { stdout: "", stderr: "" };
  private flushScheduled = false;
  private closed = false;
  private readonly log: (line: string) => void;
  private readonly realStderrWrite = process.stderr.write.bind(process.stderr);

  constructor(private readonly options: KernelOptions) {
    this.key = options.connection.key;
    this.log = options.log ?? ((line) => this.realStderrWrite(`[xalign kernel] ${line}\n`));
  }

  /** Created on first use: loading TypeScript takes most of a start, and kernel_info needs none of it. */
  private get executor(): CellExecutor {
    this.cells ??= new CellExecutor(this.options.rootDir);
    return this.cells;
  }

  /** Binds the sockets and starts serving; resolves once bound. */
  async start(): Promise<void> {
    const c = this.options.connection;
    await Promise.all([
      this.iopub.bind(channelAddress(c, c.iopub_port)),
      this.shell.bind(channelAddress(c, c.shell_port)),
      this.control.bind(channelAddress(c, c.control_port)),
      this.stdin.bind(channelAddress(c, c.stdin_port)),
      this.heartbeat.bind(channelAddress(c, c.hb_port)),
    ]);
    this.captureOutput();
    setDisplayChannel({
      send: (m) => {
        this.flushStreams();
        if (m.source && !m.update) this.shownThisCell.add(m.source);
        const content = { data: m.data, metadata: m.metadata, transient: m.displayId ? { display_id: m.displayId } : {} };
        this.publish(m.update ? "update_display_data" : "display_data", content, this.parent);
      },
    });
    process.on("SIGINT", () => this.interrupt("SIGINT"));
    process.on("uncaughtException", (err) => this.reportStray("uncaught exception", err));
    process.on("unhandledRejection", (reason) => this.reportStray("unhandled promise rejection", reason));
    void this.serve(this.shell, (m) => this.onShell(m));
    void this.serve(this.control, (m) => this.onControl(m));
    void this.echoHeartbeats();
    this.publish("status", { execution_state: "starting" }, undefined);
    this.scheduleWarm(2000);
  }

  /**
   * Loading TypeScript and building the program blocks for a second or more;
   * do it once clients stop asking kernel_info (they poll it until ready), or
   * at the first cell, whichever comes first.
   */
  private scheduleWarm(delayMs: number): void {
    clearTimeout(this.warmTimer);
    this.warmTimer = setTimeout(() => this.warm(), delayMs);
  }

  /** Interrupts the running cell: library code sees interruptRequested(); after the grace period the cell is abandoned. */
  interrupt(reason: string): void {
    const running = this.running;
    if (!running) return;
    this.log(`interrupt (${reason})`);
    running.interrupted = true;
    requestInterrupt(reason);
    running.timer ??= setTimeout(() => this.cells?.interrupt(), this.options.interruptGraceMs ?? 3000);
  }

  /** Closes the sockets and the TypeScript watcher. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.warmTimer);
    setDisplayChannel(undefined);
    for (const socket of [this.iopub, this.shell, this.control, this.stdin, this.heartbeat]) socket.close();
    this.cells?.close();
  }

  private warm(): void {
    if (this.closed || this.cells?.ready) return;
    const started = performance.now();
    this.executor.warm();
    this.log(`TypeScript ready in ${Math.round(performance.now() - started)} ms (${this.executor.settings.tsconfig ?? "no tsconfig"})`);
  }

  private async serve(socket: zmq.Router, handle: (message: JupyterMessage) => Promise<void> | void): Promise<void> {
    try {
      for await (const frames of socket) {
        let message: JupyterMessage;
        try {
          message = decodeMessage(this.key, frames);
        } catch (err) {
          this.log(`dropped a message: ${(err as Error).message}`);
          continue;
        }
        try {
          await handle(message);
        } catch (err) {
          this.log(`error handling ${message.header.msg_type}: ${(err as Error).stack ?? String(err)}`);
        }
      }
    } catch (err) {
      if (!this.closed) this.log(`socket loop ended: ${(err as Error).message}`);
    }
  }

  private async echoHeartbeats(): Promise<void> {
    try {
      for await (const frames of this.heartbeat) await this.heartbeat.send(frames);
    } catch {
      // closed
    }
  }

  private onShell(message: JupyterMessage): void {
    if (message.header.msg_type === "execute_request") {
      this.queue.push(message);
      void this.drain();
      return;
    }
    this.respond(this.shell, message);
  }

  private onControl(message: JupyterMessage): void {
    if (message.header.msg_type === "interrupt_request") {
      this.busy(message, () => {
        this.interrupt("interrupt_request");
        this.reply(this.control, message, "interrupt_reply", { status: "ok" });
      });
      return;
    }
    this.respond(this.control, message);
  }

  /** Requests answered at once, even while a cell runs. */
  private respond(socket: Channel, message: JupyterMessage): void {
    const type = message.header.msg_type;
    const content = message.content as { code?: string; cursor_pos?: number; restart?: boolean };
    this.busy(message, () => {
      switch (type) {
        case "kernel_info_request":
          if (!this.cells?.ready) this.scheduleWarm(500);
          return this.reply(socket, message, "kernel_info_reply", this.kernelInfo());
        case "complete_request": {
          const code = content.code ?? "";
          const info = this.executor.complete(code, content.cursor_pos ?? code.length);
          return this.reply(socket, message, "complete_reply", {
            status: "ok",
            matches: info.candidates,
            cursor_start: info.start,
            cursor_end: info.end,
            metadata: {},
          });
        }
        case "inspect_request": {
          const code = content.code ?? "";
          const info = this.executor.inspect(code, content.cursor_pos ?? code.length);
          const { printQuickInfo } = require("tslab/dist/inspect.js") as typeof import("tslab/dist/inspect.js");
          return this.reply(socket, message, "inspect_reply", {
            status: "ok",
            found: Boolean(info),
            data: info ? { "text/plain": printQuickInfo(info) } : {},
            metadata: {},
          });
        }
        case "is_complete_request": {
          const { isCompleteCode } = require("tslab/dist/converter.js") as typeof import("tslab/dist/converter.js");
          const result = isCompleteCode(content.code ?? "");
          return this.reply(
            socket,
            message,
            "is_complete_reply",
            result.completed ? { status: "complete" } : { status: "incomplete", indent: result.indent ?? "" },
          );
        }
        case "comm_info_request":
          return this.reply(socket, message, "comm_info_reply", { status: "ok", comms: {} });
        case "history_request":
          return this.reply(socket, message, "history_reply", { status: "ok", history: [] });
        case "shutdown_request":
          this.reply(socket, message, "shutdown_reply", { status: "ok", restart: Boolean(content.restart) });
          setTimeout(() => {
            this.close();
            process.exit(0);
          }, 20);
          return;
        case "comm_open":
        case "comm_msg":
        case "comm_close":
          return;
        default:
          this.log(`unsupported request ${type}`);
      }
    });
  }

  private kernelInfo(): Record<string, unknown> {
    const ts = tslabTypeScriptVersion();
    const tslab = (require("tslab/package.json") as { version: string }).version;
    return {
      status: "ok",
      protocol_version: PROTOCOL_VERSION,
      implementation: "xalign",
      implementation_version: VERSION,
      language_info: {
        name: "typescript",
        version: ts,
        mimetype: "text/typescript",
        file_extension: ".ts",
        pygments_lexer: "typescript",
        // Makes the classic notebook and JupyterLab highlight TypeScript (as tslab found).
        codemirror_mode: { mode: "typescript", name: "javascript", typescript: true },
      },
      banner: `xalign ${VERSION}: TypeScript ${ts} on Node ${process.version} (tslab ${tslab}), strict as the project's tsconfig`,
      help_links: [],
    };
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) await this.execute(next);
    } finally {
      this.draining = false;
    }
  }

  private async execute(message: JupyterMessage): Promise<void> {
    const content = message.content as ExecuteContent;
    const code = content.code ?? "";
    const silent = content.silent === true;
    const count = silent || content.store_history === false ? this.executionCount : ++this.executionCount;
    this.publish("status", { execution_state: "busy" }, message);
    if (!silent) this.publish("execute_input", { code, execution_count: count }, message);
    this.parent = message;
    this.shownThisCell = new WeakSet();
    resetInterrupt();
    const running: RunningCell = { interrupted: false, timer: undefined };
    this.running = running;
    let outcome: CellOutcome;
    try {
      outcome = await this.executor.execute(code, count);
    } finally {
      clearTimeout(running.timer);
      this.running = undefined;
    }
    if (running.interrupted && outcome.status === "ok") {
      outcome = {
        status: "error",
        interrupted: true,
        error: {
          ename: "KeyboardInterrupt",
          evalue: "interrupted; the cell stopped at a safe point",
          traceback: [`KeyboardInterrupt: Cell In[${count}] was interrupted and stopped at a safe point`],
        },
      };
    }
    this.flushStreams();
    if (outcome.status === "ok") {
      if (outcome.hasValue && !silent && !this.alreadyShown(outcome.value)) {
        this.publish("execute_result", { execution_count: count, data: toMimeBundle(outcome.value), metadata: {} }, message);
      }
      this.reply(this.shell, message, "execute_reply", { status: "ok", execution_count: count, user_expressions: {}, payload: [] });
    } else {
      this.sendError(message, count, outcome.error);
      if (content.stop_on_error !== false) await this.abortQueued();
    }
    this.publish("status", { execution_state: "idle" }, message);
  }

  /** Whether the cell's result is an object the cell already display()ed (shown once, not twice). */
  private alreadyShown(value: unknown): boolean {
    return value !== null && (typeof value === "object" || typeof value === "function") && this.shownThisCell.has(value);
  }

  private sendError(message: JupyterMessage, count: number, error: ErrorContent): void {
    this.publish("error", error, message);
    this.reply(this.shell, message, "execute_reply", { status: "error", execution_count: count, ...error });
  }

  /** stop_on_error: the execute requests already queued are answered "aborted", later ones run. */
  private async abortQueued(): Promise<void> {
    // Let ZeroMQ hand over requests that arrived while the cell ran.
    await new Promise((resolve) => setImmediate(resolve));
    const aborted = this.queue.splice(0).filter((m) => m.header.msg_type === "execute_request");
    for (const m of aborted) {
      this.publish("status", { execution_state: "busy" }, m);
      this.reply(this.shell, m, "execute_reply", { status: "aborted", execution_count: null });
      this.publish("status", { execution_state: "idle" }, m);
    }
  }

  private busy(message: JupyterMessage, body: () => void): void {
    this.publish("status", { execution_state: "busy" }, message);
    try {
      body();
    } finally {
      this.publish("status", { execution_state: "idle" }, message);
    }
  }

  private reply(socket: Channel, request: JupyterMessage, type: string, content: Record<string, unknown>): void {
    if (this.closed) return;
    void socket.send(encodeMessage(this.key, newMessage(type, content, { session: this.session, parent: request })));
  }

  private publish(type: string, content: Record<string, unknown> | ErrorContent, parent: JupyterMessage | undefined): void {
    if (this.closed) return;
    const message = newMessage(type, content, { session: this.session, parent });
    message.identities = [Buffer.from(`kernel.${this.session}.${type}`)];
    void this.iopub.send(encodeMessage(this.key, message));
  }

  /** Routes process.stdout/stderr to IOPub stream messages of the current request, batched per tick. */
  private captureOutput(): void {
    const capture = (name: "stdout" | "stderr") =>
      ((chunk: string | Uint8Array, encoding?: BufferEncoding | ((err?: Error) => void), callback?: (err?: Error) => void): boolean => {
        this.streams[name] +=
          typeof chunk === "string" ? chunk : Buffer.from(chunk).toString(typeof encoding === "string" ? encoding : "utf8");
        if (!this.flushScheduled) {
          this.flushScheduled = true;
          setImmediate(() => this.flushStreams());
        }
        const done = typeof encoding === "function" ? encoding : callback;
        done?.();
        return true;
      }) as typeof process.stdout.write;
    process.stdout.write = capture("stdout");
    process.stderr.write = capture("stderr");
  }

  private flushStreams(): void {
    this.flushScheduled = false;
    for (const name of ["stdout", "stderr"] as const) {
      const text = this.streams[name];
      if (!text) continue;
      this.streams[name] = "";
      this.publish("stream", { name, text }, this.parent);
    }
  }

  private reportStray(kind: string, err: unknown): void {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    this.streams.stderr += `${kind}: ${text}\n`;
    this.flushStreams();
  }
}
