/**
 * The kernelspec (`xalign kernel install/list/remove`, no Python) and
 * Debian's Jupyter (nbconvert/nbclient) executing notebooks with it.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { kernelArgv } from "../../kernel/spec.js";
import { main } from "../../src/cli/index.js";
import type { Notebook } from "../../src/runner/nbformat.js";
import { tempDir } from "../helpers.js";
import { NEEDS_BUILD, NOTEBOOKS } from "./kernel-helpers.js";

const run = promisify(execFile);
/** nbformat may store text as a list of lines; join them back. */
const joined = (data: unknown): unknown =>
  Object.fromEntries(Object.entries(data as Record<string, unknown>).map(([k, v]) => [k, Array.isArray(v) ? v.join("") : v]));
const JUPYTER = "/usr/bin/jupyter";
const NO_JUPYTER =
  existsSync(JUPYTER) && existsSync("/usr/bin/jupyter-nbconvert")
    ? false
    : "Debian's jupyter-nbconvert is not installed (apt-get install jupyter-nbconvert python3-nbclient)";

/** Runs the CLI in-process with the given environment, capturing stdout. */
async function cli(argv: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  const saved = { ...process.env };
  const log = console.log;
  const error = console.error;
  let out = "";
  Object.assign(process.env, env);
  console.log = console.error = (...args: unknown[]) => {
    out += `${args.join(" ")}\n`;
  };
  try {
    return { code: await main(argv), out };
  } finally {
    console.log = log;
    console.error = error;
    for (const key of Object.keys(env)) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  }
}

describe("xalign kernel install / list / remove", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  after(async () => cleanup());

  it("installs kernel.json and logos under --prefix, lists it through JUPYTER_PATH, removes it", async () => {
    const env = { JUPYTER_PATH: join(dir, "share", "jupyter"), JUPYTER_DATA_DIR: join(dir, "data") };
    const installed = await cli(["kernel", "install", "--prefix", dir], env);
    assert.equal(installed.code, 0);
    const specDir = join(dir, "share", "jupyter", "kernels", "xalign");
    assert.deepEqual((await readdir(specDir)).sort(), ["kernel.json", "logo-32x32.png", "logo-64x64.png", "logo-svg.svg"]);
    const spec = JSON.parse(await readFile(join(specDir, "kernel.json"), "utf8")) as {
      argv: string[];
      language: string;
      interrupt_mode: string;
    };
    assert.deepEqual(spec.argv, kernelArgv());
    assert.equal(spec.argv[0], process.execPath);
    assert.equal(spec.language, "typescript");
    assert.equal(spec.interrupt_mode, "signal");
    const listed = await cli(["kernel", "list"], env);
    assert.match(listed.out, new RegExp(`xalign\\s+${specDir.replace(/[/\\]/g, ".")}`));
    const removed = await cli(["kernel", "remove", "--prefix", dir], env);
    assert.equal(removed.code, 0);
    assert.equal(existsSync(specDir), false);
    assert.equal((await cli(["kernel", "remove", "--prefix", dir], env)).code, 1);
  });

  it("installs --user into JUPYTER_DATA_DIR and rejects two locations", async () => {
    const env = { JUPYTER_DATA_DIR: join(dir, "user-data") };
    assert.equal((await cli(["kernel", "install", "--user"], env)).code, 0);
    assert.ok(existsSync(join(dir, "user-data", "kernels", "xalign", "kernel.json")));
    const both = await cli(["kernel", "install", "--user", "--prefix", dir], env).catch((e: unknown) => e);
    assert.equal(typeof both === "object" && both !== null && "code" in both ? both.code : undefined, 1);
  });
});

describe("Debian's jupyter nbconvert --execute with the xalign kernel", { skip: NO_JUPYTER }, () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    ({ dir, cleanup } = await tempDir());
    env = {
      ...process.env,
      JUPYTER_PATH: join(dir, "share", "jupyter"),
      JUPYTER_DATA_DIR: join(dir, "data"),
      JUPYTER_RUNTIME_DIR: join(dir, "runtime"),
      JUPYTER_CONFIG_DIR: join(dir, "config"),
    };
    assert.equal((await cli(["kernel", "install", "--prefix", dir], {})).code, 0);
  });
  after(async () => cleanup());

  const nbconvert = (notebook: string, extra: string[] = []) =>
    run(
      JUPYTER,
      [
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=120",
        "--output-dir",
        dir,
        "--output",
        notebook.replace(".ipynb", ".out"),
        ...extra,
        join(NOTEBOOKS, notebook),
      ],
      { env, cwd: NOTEBOOKS, timeout: 150_000 },
    );

  it("executes a notebook with displays: outputs, bundles and execution counts", { skip: NEEDS_BUILD }, async () => {
    await nbconvert("displays.ipynb");
    const nb = JSON.parse(await readFile(join(dir, "displays.out.ipynb"), "utf8")) as Notebook;
    const code = nb.cells.filter((c) => c.cell_type === "code");
    assert.deepEqual(
      code.map((c) => c.execution_count),
      [1, 2, 3, 4],
    );
    const outputs = code[1]?.outputs ?? [];
    assert.deepEqual(joined(outputs[0]?.data), {
      "text/html": "<b>ar</b>",
      "application/json": { lang: "ar", steps: 4 },
      "text/plain": "Figure(ar)",
    });
    assert.match(String((joined(outputs[2]?.data) as Record<string, string>)["text/plain"]), /train {2}4\/4/);
    assert.deepEqual(joined(code[2]?.outputs?.[0]?.data), { "text/plain": "8" });
  });

  it("reports a failing cell with its ename and evalue", async () => {
    const failed = await nbconvert("errors.ipynb").then(
      () => assert.fail("nbconvert should fail"),
      (e: { stderr?: string }) => e,
    );
    assert.match(String(failed.stderr), /RangeError/);
    assert.match(String(failed.stderr), /too big: 5/);
    assert.match(String(failed.stderr), /Cell In\[2\], line 3/);
  });

  it("with --allow-errors executes every later cell", async () => {
    await nbconvert("errors.ipynb", ["--allow-errors"]);
    const nb = JSON.parse(await readFile(join(dir, "errors.out.ipynb"), "utf8")) as Notebook;
    assert.deepEqual(
      nb.cells.map((c) => c.execution_count),
      [1, 2, 3, 4, 5],
    );
    const errors = nb.cells.flatMap((c) => c.outputs ?? []).filter((o) => o.output_type === "error");
    assert.deepEqual(
      errors.map((o) => [o.ename, o.evalue]),
      [
        ["RangeError", "too big: 5"],
        ["TSError", "Type 'string' is not assignable to type 'number'. (Cell In[4], line 1)"],
      ],
    );
  });
});
