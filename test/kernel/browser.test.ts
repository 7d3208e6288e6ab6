/**
 * A browser test: the classic notebook server (Debian's jupyter-notebook, on
 * loopback with a token) and headless Chromium (Debian's, through
 * playwright-core) open a notebook with the xalign kernel, run a cell that
 * shows a progress display and a plotly figure, and find the figure's SVG.
 * The screenshot is kept in test-artifacts/.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { chromium } from "playwright-core";
import { main } from "../../src/cli/index.js";
import { CHROMIUM, CHROMIUM_ARGS, freePort, repoRoot, tempDir, waitForServer } from "../helpers.js";
import { NEEDS_BUILD, NOTEBOOKS } from "./kernel-helpers.js";

const MISSING = !existsSync(CHROMIUM)
  ? "Debian's chromium is not installed (apt-get install chromium)"
  : !existsSync("/usr/bin/jupyter-notebook")
    ? "Debian's classic notebook is not installed (apt-get install jupyter-notebook)"
    : NEEDS_BUILD;

describe("the classic notebook in headless Chromium", { skip: MISSING }, () => {
  it("runs a cell with a progress display and a plotly figure and shows the figure's SVG", { timeout: 240_000 }, async () => {
    const { dir, cleanup } = await tempDir();
    const port = await freePort();
    const token = randomBytes(16).toString("hex");
    const env = {
      ...process.env,
      JUPYTER_PATH: join(dir, "share", "jupyter"),
      JUPYTER_DATA_DIR: join(dir, "data"),
      JUPYTER_RUNTIME_DIR: join(dir, "runtime"),
      JUPYTER_CONFIG_DIR: join(dir, "config"),
    };
    let server: ChildProcess | undefined;
    let serverLog = "";
    const browserData = join(dir, "chromium");
    let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
    try {
      assert.equal(await main(["kernel", "install", "--prefix", dir]), 0);
      const source = (await readFile(join(NOTEBOOKS, "plotly.ipynb"), "utf8")).replaceAll("@REPO@", repoRoot());
      await mkdir(join(dir, "work"));
      await writeFile(join(dir, "work", "plotly.ipynb"), source);
      server = spawn(
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
        { env, stdio: ["ignore", "pipe", "pipe"] },
      );
      server.stdout?.on("data", (d: Buffer) => (serverLog += d.toString()));
      server.stderr?.on("data", (d: Buffer) => (serverLog += d.toString()));
      const base = `http://127.0.0.1:${port}`;
      await waitForServer(`${base}/api?token=${token}`, server, () => serverLog);

      context = await chromium.launchPersistentContext(browserData, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1100, height: 900 },
      });
      const page = context.pages()[0] ?? (await context.newPage());
      await page.goto(`${base}/notebooks/plotly.ipynb?token=${token}`);
      await page.waitForFunction(
        () => {
          const nb = (
            window as unknown as {
              Jupyter?: { notebook?: { kernel?: { is_connected(): boolean; info_reply?: { implementation?: string } } } };
            }
          ).Jupyter?.notebook;
          return nb?.kernel?.is_connected() === true && nb.kernel.info_reply?.implementation === "xalign";
        },
        undefined,
        { timeout: 90_000 },
      );
      await page.evaluate(() =>
        (window as unknown as { Jupyter: { notebook: { execute_all_cells(): void } } }).Jupyter.notebook.execute_all_cells(),
      );
      await page.waitForSelector(".output_area svg.main-svg", { timeout: 120_000 });
      const progressText = await page.locator(".output_area .xalign-progress").first().textContent();
      assert.match(progressText ?? "", /5\/5/);
      assert.ok((await page.locator(".output_area svg.main-svg").count()) >= 1);
      assert.match((await page.locator(".output_area .gtitle").first().textContent()) ?? "", /training loss/);
      await mkdir(join(repoRoot(), "test-artifacts"), { recursive: true });
      await page.screenshot({ path: join(repoRoot(), "test-artifacts", "kernel-classic-notebook.png"), fullPage: true });
    } finally {
      await context?.close();
      if (server && server.exitCode === null) {
        server.kill("SIGTERM");
        await new Promise((r) => setTimeout(r, 1500));
        if (server.exitCode === null) server.kill("SIGKILL");
      }
      await cleanup();
    }
  });
});
