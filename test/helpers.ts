import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root, whether tests run from test/ (tsx) or dist/test/ (compiled). */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "src"))) return dir;
    dir = resolve(dir, "..");
  }
  throw new Error("repository root not found");
}

/** A path under test/fixtures. */
export function fixture(...parts: string[]): string {
  return join(repoRoot(), "test", "fixtures", ...parts);
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix = "xalign-test-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Debian's Chromium, which the browser tests drive through playwright-core. */
export const CHROMIUM = "/usr/bin/chromium";

/** Chromium flags for a root, offline, headless run (no sandbox, GPU, background traffic or first-run UI). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];

/** A free TCP port on loopback (for the notebook servers the browser tests start). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Polls `url` until it answers 200, failing with the server's log if it exits or takes over a minute. */
async function waitForServer(url: string, server: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`jupyter notebook exited: ${log()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`jupyter notebook did not start: ${log()}`);
}

/** Debian's classic notebook server, on loopback with a random token. */
export interface NotebookServer {
  base: string;
  token: string;
  /** SIGTERM, then SIGKILL after 1.5 s if it is still running. */
  stop(): Promise<void>;
}

/**
 * Starts Debian's classic notebook serving `dir/work`, with every Jupyter path under `dir` (where
 * `xalign kernel install --prefix dir` put the kernel spec); resolves once its API answers.
 */
export async function startClassicNotebook(dir: string): Promise<NotebookServer> {
  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  let log = "";
  const server = spawn(
    "/usr/bin/jupyter-notebook",
    [
      "--no-browser",
      "--ip=127.0.0.1",
      `--port=${port}`,
      "--port-retries=0",
      `--NotebookApp.token=${token}`,
      `--notebook-dir=${join(dir, "work")}`,
      ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
    ],
    {
      env: {
        ...process.env,
        JUPYTER_PATH: join(dir, "share", "jupyter"),
        JUPYTER_DATA_DIR: join(dir, "data"),
        JUPYTER_RUNTIME_DIR: join(dir, "runtime"),
        JUPYTER_CONFIG_DIR: join(dir, "config"),
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  server.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  server.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  const stop = async (): Promise<void> => {
    if (server.exitCode !== null) return;
    server.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1500));
    if (server.exitCode === null) server.kill("SIGKILL");
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForServer(`${base}/api?token=${token}`, server, () => log);
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, token, stop };
}
