import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { run as runCli } from "../../src/cli/run.js";
import {
  checkParameters,
  injectParameters,
  type Notebook,
  notebookParameters,
  parseParameterArgs,
  readNotebook,
  sourceText,
  upgradeTo45,
  writeNotebook,
} from "../../src/runner/nbformat.js";
import { ConfigError, NotebookError } from "../../src/util/errors.js";
import { tempDir } from "../helpers.js";

const notebook = (cells: Notebook["cells"]): Notebook => ({ nbformat: 4, nbformat_minor: 4, metadata: {}, cells });
const code = (source: string, tags?: string[]): Notebook["cells"][number] => ({
  cell_type: "code",
  source,
  metadata: tags ? { tags } : {},
  outputs: [],
  execution_count: null,
});

describe("parameters (papermill's convention)", () => {
  it("parses -p key=value with YAML values", () => {
    assert.deepEqual(parseParameterArgs(["steps=10", "lang=vi", "langs=[ar, zh]", "lr=2e-5", "dry=true", "name=a=b"]), {
      steps: 10,
      lang: "vi",
      langs: ["ar", "zh"],
      lr: 2e-5,
      dry: true,
      name: "a=b",
    });
  });
  it("rejects a key that is not an identifier, naming it", () => {
    assert.throws(
      () => parseParameterArgs(["bad-key=1"]),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_NOTEBOOK_PARAMETER" && e.field === "bad-key",
    );
    assert.throws(() => parseParameterArgs(["novalue"]), ConfigError);
  });
  it("rejects a parameter the notebook does not declare, listing the ones it does", async () => {
    const nb = upgradeTo45(notebook([code('let steps = 100;\nconst lang = "vi" as string;', ["parameters"]), code("steps")]));
    assert.deepEqual(notebookParameters(nb), ["steps", "lang"]);
    assert.throws(
      () => checkParameters(nb, { stepz: 5 }, "nb.ipynb"),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.code === "XA_NOTEBOOK_UNKNOWN_PARAMETER" &&
        /"stepz"/.test(e.message) &&
        /parameters are steps, lang/.test(e.message) &&
        /did you mean steps/.test(e.message),
    );
    assert.deepEqual(checkParameters(nb, { steps: 5 }, "nb.ipynb"), []);
    assert.deepEqual(checkParameters(nb, { stepz: 5 }, "nb.ipynb", true), ["stepz"]);
    assert.throws(() => checkParameters(upgradeTo45(notebook([code("1")])), { steps: 1 }, "nb.ipynb"), /no cell tagged "parameters"/);
    // `xalign run nb.ipynb -p stepz=5` stops before starting a kernel.
    const { dir, cleanup } = await tempDir();
    try {
      const file = join(dir, "nb.ipynb");
      await writeNotebook(file, nb);
      await assert.rejects(
        runCli([file, "-p", "stepz=5", "--out", join(dir, "out.ipynb")]),
        (e: unknown) => e instanceof ConfigError && /parameters are steps, lang/.test(e.message),
      );
      // Where the executed copy goes must be said: --out FILE or --inplace, not both, and the notebook is untouched.
      const before = await readFile(file, "utf8");
      await assert.rejects(
        runCli([file, "-p", "steps=5"]),
        (e: unknown) => e instanceof ConfigError && e.field === "out" && /--out FILE/.test(e.hint ?? "") && /--inplace/.test(e.hint ?? ""),
      );
      await assert.rejects(
        runCli([file, "--inplace", "--out", join(dir, "out.ipynb")]),
        (e: unknown) => e instanceof ConfigError && /both given/.test(e.message),
      );
      assert.equal(await readFile(file, "utf8"), before);
    } finally {
      await cleanup();
    }
  });
  it("injects a tagged cell after the parameters cell, replacing an earlier injected one", () => {
    const nb = upgradeTo45(notebook([code("let a = 1;"), code("let steps = 100;", ["parameters"]), code("steps")]));
    const once = injectParameters(nb, { steps: 5 }).notebook;
    assert.equal(sourceText(once.cells[2]!), "// Parameters injected by xalign run\nconst steps = 5;\n");
    assert.deepEqual(once.cells[2]?.metadata.tags, ["injected-parameters"]);
    const twice = injectParameters(once, { steps: 7, lang: "zh" });
    assert.equal(twice.notebook.cells.length, 4);
    assert.match(sourceText(twice.notebook.cells[2]!), /const steps = 7;\nconst lang = "zh";/);
    assert.equal(twice.foundParametersCell, true);
  });
  it("injects first when there is no parameters cell", () => {
    const { notebook: nb, foundParametersCell } = injectParameters(notebook([code("1")]), { x: 1 });
    assert.equal(foundParametersCell, false);
    assert.deepEqual(nb.cells[0]?.metadata.tags, ["injected-parameters"]);
  });
});

describe("reading and writing notebooks", () => {
  it("upgrades to 4.5 with stable, unique cell ids", () => {
    const a = upgradeTo45(notebook([code("x"), code("x")]));
    const b = upgradeTo45(notebook([code("x"), code("x")]));
    assert.equal(a.nbformat_minor, 5);
    assert.deepEqual(
      a.cells.map((c) => c.id),
      b.cells.map((c) => c.id),
    );
    assert.notEqual(a.cells[0]?.id, a.cells[1]?.id);
  });
  it("names the file and cell of a bad notebook", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFile(join(dir, "v3.ipynb"), JSON.stringify({ nbformat: 3, worksheets: [] }));
      await writeFile(join(dir, "cell.ipynb"), JSON.stringify(notebook([code("1"), { cell_type: "code" } as never])));
      await writeFile(join(dir, "json.ipynb"), "{ not json");
      await assert.rejects(
        readNotebook(join(dir, "v3.ipynb")),
        (e: unknown) => e instanceof NotebookError && e.code === "XA_NOTEBOOK_FORMAT",
      );
      await assert.rejects(readNotebook(join(dir, "cell.ipynb")), (e: unknown) => e instanceof NotebookError && e.field === "cells[1]");
      await assert.rejects(
        readNotebook(join(dir, "json.ipynb")),
        (e: unknown) => e instanceof NotebookError && e.code === "XA_NOTEBOOK_READ",
      );
      await assert.rejects(readNotebook(join(dir, "missing.ipynb")), NotebookError);
    } finally {
      await cleanup();
    }
  });
  it("writes atomically (no temp file left) with Jupyter's 1-space indent", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const path = join(dir, "out.ipynb");
      await writeNotebook(path, upgradeTo45(notebook([code("1")])));
      assert.deepEqual(await readdir(dir), ["out.ipynb"]);
      assert.match(await readFile(path, "utf8"), /^\{\n "cells": \[/);
    } finally {
      await cleanup();
    }
  });
});
