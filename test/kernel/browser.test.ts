/**
 * A browser test: the classic notebook server (Debian's jupyter-notebook, on
 * loopback with a token) and headless Chromium (Debian's, through
 * playwright-core) open a notebook with the xalign kernel, run a cell that
 * shows a progress display and a plotly figure, and find the figure's SVG.
 * The screenshot is kept in test-artifacts/.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { chromium } from "playwright-core";
import { main } from "../../src/cli/index.js";
import { CHROMIUM, CHROMIUM_ARGS, type NotebookServer, repoRoot, startClassicNotebook, tempDir } from "../helpers.js";
import { NEEDS_BUILD, NOTEBOOKS } from "./kernel-helpers.js";

const MISSING = !existsSync(CHROMIUM)
  ? "Debian's chromium is not installed (apt-get install chromium)"
  : !existsSync("/usr/bin/jupyter-notebook")
    ? "Debian's classic notebook is not installed (apt-get install jupyter-notebook)"
    : NEEDS_BUILD;

describe("the classic notebook in headless Chromium", { skip: MISSING }, () => {
  it("runs a cell with a progress display and a plotly figure and shows the figure's SVG", { timeout: 240_000 }, async () => {
    const { dir, cleanup } = await tempDir();
    let server: NotebookServer | undefined;
    const browserData = join(dir, "chromium");
    let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
    try {
      assert.equal(await main(["kernel", "install", "--prefix", dir]), 0);
      const source = (await readFile(join(NOTEBOOKS, "plotly.ipynb"), "utf8")).replaceAll("@REPO@", repoRoot());
      await mkdir(join(dir, "work"));
      await writeFile(join(dir, "work", "plotly.ipynb"), source);
      server = await startClassicNotebook(dir);
      const { base, token } = server;

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
      await server?.stop();
      await cleanup();
    }
  });
});
