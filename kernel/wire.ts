/**
 * The Jupyter messaging protocol 5.3 on the wire: HMAC-SHA256 signed
 * multipart messages and connection files. Shared by the kernel and the
 * headless runner's client.
 */
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { NotebookError } from "../src/util/errors.js";

export const PROTOCOL_VERSION = "5.3";
const DELIMITER = Buffer.from("<IDS|MSG>");

export interface MessageHeader {
  msg_id: string;
  session: string;
  username: string;
  date: string;
  msg_type: string;
  version: string;
}

export interface JupyterMessage<C = Record<string, unknown>> {
  /** ZeroMQ routing identities (ROUTER sockets). */
  identities: Buffer[];
  header: MessageHeader;
  parent_header: Partial<MessageHeader>;
  metadata: Record<string, unknown>;
  content: C;
  buffers: Buffer[];
}

/** A kernel connection file (`kernel-*.json`). */
export interface ConnectionInfo {
  transport: "tcp" | "ipc";
  ip: string;
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
  key: string;
  signature_scheme: string;
  kernel_name?: string;
}

/** Reads and checks a connection file. */
export async function readConnectionFile(path: string): Promise<ConnectionInfo> {
  let info: Partial<ConnectionInfo>;
  try {
    info = JSON.parse(await readFile(path, "utf8")) as Partial<ConnectionInfo>;
  } catch (err) {
    throw new NotebookError("XA_KERNEL_CONNECTION_FILE", `cannot read the connection file: ${(err as Error).message}`, {
      file: path,
      hint: "the kernel is started by Jupyter with {connection_file}; check the kernelspec's argv",
      cause: err,
    });
  }
  for (const field of ["ip", "shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"] as const) {
    if (info[field] === undefined) {
      throw new NotebookError("XA_KERNEL_CONNECTION_FILE", `missing "${field}"`, {
        file: path,
        field,
        hint: "write a complete connection file",
      });
    }
  }
  if (info.signature_scheme && info.signature_scheme !== "hmac-sha256") {
    throw new NotebookError("XA_KERNEL_SIGNATURE_SCHEME", `unsupported signature scheme ${info.signature_scheme}`, {
      file: path,
      field: "signature_scheme",
      hint: "use hmac-sha256",
    });
  }
  return { transport: "tcp", key: "", signature_scheme: "hmac-sha256", ...info } as ConnectionInfo;
}

/** The address of one channel, e.g. tcp://127.0.0.1:5555. */
export function channelAddress(info: ConnectionInfo, port: number): string {
  return info.transport === "ipc" ? `ipc://${info.ip}-${port}` : `tcp://${info.ip}:${port}`;
}

/** A new connection description on loopback with free ports and a random key. */
export async function newConnectionInfo(kernelName = "xalign"): Promise<ConnectionInfo> {
  const ports = await freePorts(5);
  const [shell, iopub, stdin, control, hb] = ports as [number, number, number, number, number];
  return {
    transport: "tcp",
    ip: "127.0.0.1",
    shell_port: shell,
    iopub_port: iopub,
    stdin_port: stdin,
    control_port: control,
    hb_port: hb,
    key: randomUUID(),
    signature_scheme: "hmac-sha256",
    kernel_name: kernelName,
  };
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import("node:net").Server>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    return typeof address === "object" && address ? address.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** The hex HMAC-SHA256 of the four JSON frames; empty when the key is empty (signing off). */
export function sign(key: string, frames: (string | Buffer)[]): string {
  if (!key) return "";
  const hmac = createHmac("sha256", key);
  for (const frame of frames) hmac.update(frame);
  return hmac.digest("hex");
}

/** A new message; `parent` links a reply or an output to its request. */
export function newMessage<C>(
  msgType: string,
  content: C,
  options: { session: string; parent?: JupyterMessage<unknown> | undefined; username?: string; metadata?: Record<string, unknown> },
): JupyterMessage<C> {
  return {
    identities: options.parent?.identities ?? [],
    header: {
      msg_id: randomUUID(),
      session: options.session,
      username: options.username ?? options.parent?.header.username ?? "xalign",
      date: new Date().toISOString(),
      msg_type: msgType,
      version: PROTOCOL_VERSION,
    },
    parent_header: options.parent?.header ?? {},
    metadata: options.metadata ?? {},
    content,
    buffers: [],
  };
}

/** The frames of a signed message, identities first. */
export function encodeMessage(key: string, message: JupyterMessage<unknown>): Buffer[] {
  const frames = [
    JSON.stringify(message.header),
    JSON.stringify(message.parent_header),
    JSON.stringify(message.metadata),
    JSON.stringify(message.content),
  ];
  return [...message.identities, DELIMITER, Buffer.from(sign(key, frames)), ...frames.map((f) => Buffer.from(f)), ...message.buffers];
}

/** Parses and verifies a multipart message; throws NotebookError on a bad signature or shape. */
export function decodeMessage(key: string, frames: Buffer[]): JupyterMessage {
  const at = frames.findIndex((f) => f.equals(DELIMITER));
  if (at < 0 || frames.length < at + 6) {
    throw new NotebookError("XA_KERNEL_MESSAGE", `malformed message: ${frames.length} frames, delimiter at ${at}`, {
      hint: "the peer does not speak the Jupyter wire protocol",
    });
  }
  const signature = frames[at + 1]!.toString();
  const body = frames.slice(at + 2, at + 6);
  const expected = sign(key, body);
  const ok = expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
  if (!ok) {
    throw new NotebookError("XA_KERNEL_SIGNATURE", "message signature does not match", {
      hint: "client and kernel must use the key of the same connection file",
    });
  }
  const [header, parent, metadata, content] = body.map((b) => JSON.parse(b.toString("utf8")) as Record<string, unknown>);
  return {
    identities: frames.slice(0, at),
    header: header as unknown as MessageHeader,
    parent_header: parent as Partial<MessageHeader>,
    metadata: metadata ?? {},
    content: content ?? {},
    buffers: frames.slice(at + 6),
  };
}
