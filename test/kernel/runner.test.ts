/** `xalign run` / runNotebook on real notebooks: displays, parameters, errors, an interrupt and a timeout. */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CellExecutionError } from "../../src/runner/failure.js";
import { type Notebook, type Output, readNotebook } from "../../src/runner/nbformat.js";
import { runNotebook } from "../../src/runner/run.js";
import { tempDir } from "../helpers.js";
import { NEEDS_BUILD, NOTEBOOKS } from "./kernel-helpers.js";

const outputsOf = (nb: Notebook, id: string): Output[] => nb.cells.find((c) => c.id === id)?.outputs ?? [];

describe("runNotebook", () => {
  it("runs a notebook with displays and injected parameters, writing nbformat 4.5 with outputs and counts", {
    skip: NEEDS_BUILD,
  }, async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const out = join(dir, "displays.out.ipynb");
      const result = await runNotebook(join(NOTEBOOKS, "displays.ipynb"), { out, parameters: { lang: "vi", steps: 3 } });
      assert.equal(result.errors.length, 0);
      const written = JSON.parse(await readFile(out, "utf8")) as Notebook;
      assert.equal(written.nbformat, 4);
      assert.equal(written.nbformat_minor, 5);
      assert.ok(written.cells.every((c) => typeof c.id === "string"));
      const injectedAt = written.cells.findIndex((c) => c.metadata.tags?.includes("injected-parameters"));
      assert.equal(written.cells[injectedAt - 1]?.metadata.tags?.[0], "parameters");
      assert.deepEqual(
        written.cells.filter((c) => c.cell_type === "code").map((c) => c.execution_count),
        [1, 2, 3, 4, 5],
      );
      const shown = outputsOf(written, "c2");
      assert.deepEqual(shown[0]?.data, {
        "text/html": "<b>vi</b>",
        "application/json": { lang: "vi", steps: 3 },
        "text/plain": "Figure(vi)",
      });
      assert.equal(shown[1]?.text, "lang=vi steps=3\n");
      // The progress display holds its last state (update_display_data applied in place).
      assert.match(String((shown[2]?.data as Record<string, unknown> | undefined)?.["text/plain"]), /^train {2}3\/3 .*loss 0\.3333$/);
      assert.deepEqual(outputsOf(written, "c3")[0], {
        output_type: "execute_result",
        execution_count: 4,
        data: { "text/plain": "6" },
        metadata: {},
      });
      // The input is untouched.
      assert.equal((await readNotebook(join(NOTEBOOKS, "displays.ipynb"))).cells[2]?.outputs?.length, 0);
    } finally {
      await cleanup();
    }
  });

  it("stops at the first error naming the cell, ename and message, and still writes the notebook", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const out = join(dir, "errors.out.ipynb");
      const err = await runNotebook(join(NOTEBOOKS, "errors.ipynb"), { out }).then(
        () => assert.fail("expected a CellExecutionError"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CellExecutionError);
      assert.equal(err.code, "XA_NOTEBOOK_CELL_ERROR");
      assert.match(err.message, /cell 2 \(id c1\) raised RangeError: too big: 5/);
      const written = await readNotebook(out);
      const error = outputsOf(written, "c1")[0];
      assert.equal(error?.output_type, "error");
      assert.match(((error?.traceback as string[] | undefined) ?? []).join("\n"), /at check \(Cell In\[2\], line 3\)/);
      assert.equal(written.cells[2]?.execution_count, null);
    } finally {
      await cleanup();
    }
  });

  it("with allowErrors runs every later cell and reports each error (no Python on the PATH)", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const out = join(dir, "errors.out.ipynb");
      // PATH names an empty folder: nothing but Node (by absolute path) is needed.
      const env = { ...process.env, PATH: dir };
      const result = await runNotebook(join(NOTEBOOKS, "errors.ipynb"), { out, allowErrors: true, env });
      assert.deepEqual(
        result.errors.map((e) => [e.index, e.ename]),
        [
          [1, "RangeError"],
          [3, "TSError"],
        ],
      );
      const written = await readNotebook(out);
      assert.deepEqual(
        written.cells.map((c) => c.execution_count),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(outputsOf(written, "c4")[0]?.data, { "text/plain": "last cell" });
    } finally {
      await cleanup();
    }
  });

  it("an abort signal interrupts the running cell: the loop sees interruptRequested() and the run stops", {
    skip: NEEDS_BUILD,
  }, async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const out = join(dir, "slow.out.ipynb");
      const controller = new AbortController();
      let progressUpdates = 0;
      const err = await runNotebook(join(NOTEBOOKS, "slow.ipynb"), {
        out,
        signal: controller.signal,
        onEvent: (e) => {
          if (e.kind === "output" && e.message.header.msg_type === "update_display_data" && ++progressUpdates === 5) controller.abort();
        },
      }).then(
        () => assert.fail("expected an interrupt"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CellExecutionError);
      assert.equal(err.code, "XA_NOTEBOOK_INTERRUPTED");
      assert.equal(err.failure.ename, "KeyboardInterrupt");
      const outputs = outputsOf(await readNotebook(out), "c1");
      assert.match(String(outputs.find((o) => o.output_type === "stream")?.text), /stopped at step \d+/);
      assert.equal(outputs.at(-1)?.output_type, "error");
    } finally {
      await cleanup();
    }
  });

  it("a cell over the timeout is interrupted (even a busy synchronous loop) and the run fails", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const out = join(dir, "busy.out.ipynb");
      const err = await runNotebook(join(NOTEBOOKS, "busy.ipynb"), { out, timeoutSeconds: 2 }).then(
        () => assert.fail("expected a timeout"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof CellExecutionError);
      assert.equal(err.code, "XA_NOTEBOOK_CELL_TIMEOUT");
      assert.match(err.message, /cell 1 \(id c0\) raised CellTimeoutError: the cell did not finish within 2 s/);
      assert.equal(outputsOf(await readNotebook(out), "c0")[0]?.ename, "KeyboardInterrupt");
    } finally {
      await cleanup();
    }
  });
});
