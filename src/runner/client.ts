/**
 * A Jupyter client over ZeroMQ: launches a kernel (or connects to one),
 * sends requests on shell/control and collects IOPub output per request.
 * The headless runner is built on it; tests drive the kernel with it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as zmq from "zeromq";
import {
  type ConnectionInfo,
  channelAddress,
  decodeMessage,
  encodeMessage,
  type JupyterMessage,
  newConnectionInfo,
  newMessage,
} from "../../kernel/wire.js";
import { NotebookError } from "../util/errors.js";

export interface LaunchOptions {
  /** The kernel command; `{connection_file}` is replaced. */
  argv: string[];
  /** The kernel's working directory (Jupyter uses the notebook's folder). */
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Called with the kernel's own stderr lines (not cell output). */
  onKernelStderr?: (text: string) => void;
}

export interface ExecuteOptions {
  stopOnError?: boolean;
  silent?: boolean;
  storeHistory?: boolean;
  /** Each IOPub message of this request (stream, display_data, execute_result, error, ...). */
  onIopub?: (message: JupyterMessage) => void;
}

export interface ExecuteOutcome {
  reply: JupyterMessage;
  /** IOPub messages of the request, in order (without status and execute_input). */
  outputs: JupyterMessage[];
}

interface Pending {
  replied: JupyterMessage | undefined;
  idle: boolean;
  outputs: JupyterMessage[];
  onIopub: ((m: JupyterMessage) => void) | undefined;
  resolve: (outcome: ExecuteOutcome) => void;
}

/**
 * @example
 * const client = await KernelClient.launch({ argv: kernelArgv(), cwd: process.cwd() });
 * const { reply } = await client.execute("1 + 1");
 * await client.shutdown();
 */
export class KernelClient {
  readonly session = randomUUID();
  private readonly shell = new zmq.Dealer({ linger: 0 });
  private readonly control = new zmq.Dealer({ linger: 0 });
  private readonly iopub = new zmq.Subscriber({ linger: 0 });
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  /** Set when the kernel process exits. */
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitListeners: (() => void)[] = [];

  private constructor(
    readonly connection: ConnectionInfo,
    readonly process: ChildProcess | undefined,
    private readonly connectionFile: string | undefined,
  ) {}

  /** Starts a kernel process with a fresh connection file and connects to it. */
  static async launch(options: LaunchOptions): Promise<KernelClient> {
    const connection = await newConnectionInfo();
    // The file holds the HMAC key: a private 0700 folder and a 0600 file, as jupyter_client writes them.
    const privateDir = await mkdtemp(join(tmpdir(), "xalign-kernel-"));
    await chmod(privateDir, 0o700);
    const file = join(privateDir, `kernel-${randomUUID()}.json`);
    await writeFile(file, `${JSON.stringify(connection, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    const argv = options.argv.map((a) => a.replaceAll("{connection_file}", file));
    const [command, ...args] = argv;
    if (!command) throw new NotebookError("XA_KERNEL_ARGV", "empty kernel command", { hint: "check the kernelspec's argv" });
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (d: Buffer) => options.onKernelStderr?.(d.toString()));
    child.stderr?.on("data", (d: Buffer) => options.onKernelStderr?.(d.toString()));
    const client = new KernelClient(connection, child, file);
    child.on("exit", (code, signal) => {
      client.exited = { code, signal };
      for (const listener of client.exitListeners.splice(0)) listener();
    });
    client.connect();
    return client;
  }

  /** Connects to a running kernel. */
  static connectTo(connection: ConnectionInfo): KernelClient {
    const client = new KernelClient(connection, undefined, undefined);
    client.connect();
    return client;
  }

  private connect(): void {
    const c = this.connection;
    this.shell.connect(channelAddress(c, c.shell_port));
    this.control.connect(channelAddress(c, c.control_port));
    this.iopub.connect(channelAddress(c, c.iopub_port));
    this.iopub.subscribe();
    void this.receive(this.shell, (m) => this.onReply(m));
    void this.receive(this.control, (m) => this.onReply(m));
    void this.receive(this.iopub, (m) => this.onIopub(m));
  }

  /**
   * Waits until the kernel answers kernel_info_request and its IOPub
   * messages reach us (a subscriber misses what was published before it
   * joined, so we ask until a status for our own request arrives).
   */
  async waitReady(timeoutMs = 30_000): Promise<JupyterMessage> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      this.assertAlive("while starting");
      const asked = this.request(this.shell, "kernel_info_request", {});
      // Ask often at first (our subscription may miss the first answers' status), then back off.
      const wait = Math.min(100 * 2 ** attempt, 1000, Math.max(0, deadline - Date.now()));
      const outcome = await Promise.race([asked, sleep(wait).then(() => undefined)]);
      if (outcome?.reply && outcome.reply.content.status !== "error") return outcome.reply;
    }
    throw new NotebookError("XA_KERNEL_START_TIMEOUT", `the kernel did not answer within ${timeoutMs / 1000} s`, {
      hint: this.exited ? `it exited with ${this.exited.code ?? this.exited.signal}` : "see the kernel's stderr",
    });
  }

  /** Runs code; resolves when the reply and the idle status of the request have both arrived. */
  execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteOutcome> {
    return this.request(
      this.shell,
      "execute_request",
      {
        code,
        silent: options.silent ?? false,
        store_history: options.storeHistory ?? true,
        user_expressions: {},
        allow_stdin: false,
        stop_on_error: options.stopOnError ?? true,
      },
      options.onIopub,
    );
  }

  /** Sends a request on shell (default) or control and waits for its reply and idle status. */
  request(
    socket: zmq.Dealer | "shell" | "control",
    type: string,
    content: Record<string, unknown>,
    onIopub?: (message: JupyterMessage) => void,
  ): Promise<ExecuteOutcome> {
    const target = socket === "shell" ? this.shell : socket === "control" ? this.control : socket;
    const message = newMessage(type, content, { session: this.session });
    return new Promise((resolve) => {
      this.pending.set(message.header.msg_id, { replied: undefined, idle: false, outputs: [], onIopub, resolve });
      void target.send(encodeMessage(this.connection.key, message));
    });
  }

  /** Interrupts the running cell: SIGINT to a kernel we launched (interrupt_mode "signal"), else interrupt_request. */
  async interrupt(mode: "signal" | "message" = this.process ? "signal" : "message"): Promise<void> {
    if (mode === "signal" && this.process?.pid !== undefined && !this.exited) {
      this.process.kill("SIGINT");
      return;
    }
    await this.request(this.control, "interrupt_request", {});
  }

  /** Resolves when the kernel process exits (immediately if it has). */
  waitExit(): Promise<void> {
    if (this.exited || !this.process) return Promise.resolve();
    return new Promise((resolve) => this.exitListeners.push(resolve));
  }

  /** Asks the kernel to shut down, kills it if it does not within `graceMs`, and closes the sockets. */
  async shutdown(graceMs = 2000): Promise<void> {
    if (this.closed) return;
    if (!this.exited) {
      await Promise.race([this.request(this.control, "shutdown_request", { restart: false }), sleep(graceMs)]);
      await Promise.race([this.waitExit(), sleep(graceMs)]);
    }
    this.kill();
    this.close();
  }

  /** Kills the kernel process (SIGKILL). */
  kill(): void {
    if (this.process && !this.exited) this.process.kill("SIGKILL");
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const socket of [this.shell, this.control, this.iopub]) socket.close();
    if (this.connectionFile) void rm(dirname(this.connectionFile), { recursive: true, force: true });
  }

  private assertAlive(when: string): void {
    if (this.exited) {
      throw new NotebookError("XA_KERNEL_DIED", `the kernel exited ${when} (code ${this.exited.code ?? this.exited.signal})`, {
        hint: "see the kernel's stderr above",
      });
    }
  }

  private async receive(socket: zmq.Dealer | zmq.Subscriber, handle: (m: JupyterMessage) => void): Promise<void> {
    try {
      for await (const frames of socket) {
        try {
          handle(decodeMessage(this.connection.key, frames));
        } catch {
          // a message not for us (bad signature or shape): ignore, as Jupyter clients do
        }
      }
    } catch {
      // socket closed
    }
  }

  private onReply(message: JupyterMessage): void {
    const id = message.parent_header.msg_id;
    const pending = id ? this.pending.get(id) : undefined;
    if (!pending || !id) return;
    pending.replied = message;
    this.settle(id, pending);
  }

  private onIopub(message: JupyterMessage): void {
    const id = message.parent_header.msg_id;
    const pending = id ? this.pending.get(id) : undefined;
    if (!pending || !id) return;
    const type = message.header.msg_type;
    if (type === "status") {
      if ((message.content as { execution_state?: string }).execution_state === "idle") {
        pending.idle = true;
        this.settle(id, pending);
      }
      return;
    }
    if (type === "execute_input") return;
    pending.outputs.push(message);
    pending.onIopub?.(message);
  }

  private settle(id: string, pending: Pending): void {
    if (!pending.replied || !pending.idle) return;
    this.pending.delete(id);
    pending.resolve({ reply: pending.replied, outputs: pending.outputs });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
