/** `xalign run`: execute a notebook headless with the xalign kernel (no Python). */
import { basename, relative } from "node:path";
import { CellExecutionError } from "../runner/failure.js";
import { checkParameters, parseParameterArgs, readNotebook, sourceText } from "../runner/nbformat.js";
import { runNotebook } from "../runner/run.js";
import { ConfigError } from "../util/errors.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign run NOTEBOOK (--out FILE | --inplace) [-p key=value ...] [--allow-unknown-params] [--timeout S] [--allow-errors] [--log-output]

Starts the xalign kernel, runs every code cell in order and writes the
executed notebook (nbformat 4.5, outputs and execution counts) atomically
to --out, or over NOTEBOOK with --inplace (nbconvert's flag): one of the two
is required, so a rerun never replaces a source notebook by accident.
Parameters go into a new cell after the cell
tagged "parameters" (papermill's convention); values are YAML scalars or
lists, e.g. -p steps=10 -p lang=vi -p langs=[ar,zh]. A parameter the
parameters cell does not declare (const/let/var) is an error listing the
ones it does, so a typo cannot silently run with the default.

  -p, --parameter key=value  set a parameter (repeatable)
  --allow-unknown-params     inject undeclared parameters anyway, with a warning (papermill's behaviour)
  -o, --out FILE             where to write the executed notebook
  --inplace                  write it over NOTEBOOK instead
  --timeout S                seconds one cell may run before it is interrupted
  --allow-errors             keep running after a cell raises; exit 0
  --cwd DIR                  the kernel's working directory (default: the notebook's folder)
  --log-output               echo cells' stdout/stderr to stderr

Exits 1 naming the cell, the error name and message when a cell raises (the
notebook is still written, with the traceback), 130 when interrupted.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("run", argv, {
    parameter: { type: "string", short: "p", multiple: true },
    "allow-unknown-params": { type: "boolean" },
    out: { type: "string", short: "o" },
    inplace: { type: "boolean" },
    timeout: { type: "string" },
    "allow-errors": { type: "boolean" },
    cwd: { type: "string" },
    "log-output": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const [notebook, ...extra] = positionals;
  if (!notebook || extra.length > 0) {
    throw new ConfigError("XA_CLI_ARGS", `expected one notebook, got ${positionals.length}`, { hint: "run `xalign run --help`" });
  }
  const inplace = values.inplace === true;
  if (inplace === (typeof values.out === "string")) {
    throw new ConfigError(
      "XA_CLI_ARGS",
      inplace ? "--out and --inplace both given: choose one" : `no --out: where should the executed copy of ${notebook} go?`,
      {
        field: inplace ? "inplace" : "out",
        hint: `add --out FILE (e.g. --out runs/${basename(notebook)}) to keep ${notebook} as it is, or --inplace to overwrite it with its outputs`,
      },
    );
  }
  let timeoutSeconds: number | undefined;
  if (typeof values.timeout === "string") {
    timeoutSeconds = Number(values.timeout);
    if (!(timeoutSeconds > 0))
      throw new ConfigError("XA_CLI_ARGS", `--timeout must be a positive number of seconds, got "${values.timeout}"`, { field: "timeout" });
  }
  const parameters = parseParameterArgs((values.parameter as string[] | undefined) ?? []);
  const allowUnknown = values["allow-unknown-params"] === true;
  const unknown = checkParameters(await readNotebook(notebook), parameters, notebook, allowUnknown);
  if (unknown.length > 0)
    process.stderr.write(`warning: the notebook's parameters cell does not declare ${unknown.join(", ")}; injecting anyway\n`);
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write("\ninterrupting the running cell (Ctrl-C again to quit now)\n");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  const log = (line: string): boolean => process.stderr.write(`${line}\n`);
  try {
    const result = await runNotebook(notebook, {
      parameters,
      allowUnknownParameters: allowUnknown,
      out: inplace ? notebook : (values.out as string),
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
      ...(typeof values.cwd === "string" ? { cwd: values.cwd } : {}),
      allowErrors: values["allow-errors"] === true,
      signal: controller.signal,
      onEvent: (event) => {
        if (event.kind === "kernel-ready") log(`kernel ready in ${(event.ms / 1000).toFixed(1)} s`);
        if (event.kind === "cell-start") {
          const firstLine =
            sourceText(event.cell)
              .split("\n")
              .find((l) => l.trim() !== "") ?? "";
          log(`[${event.codeIndex}/${event.codeCells}] cell ${event.index + 1}: ${firstLine.slice(0, 70)}`);
        }
        if (event.kind === "cell-end" && event.status !== "ok") log(`    ${event.status} after ${(event.ms / 1000).toFixed(1)} s`);
        if (event.kind === "output" && values["log-output"] && event.message.header.msg_type === "stream") {
          process.stderr.write(String((event.message.content as { text?: string }).text ?? ""));
        }
      },
    });
    const rel = relative(process.cwd(), result.outPath);
    const where = rel && !rel.startsWith("..") ? rel : result.outPath;
    for (const e of result.errors) log(`cell ${e.index + 1}${e.cellId ? ` (id ${e.cellId})` : ""} raised ${e.ename}: ${e.evalue}`);
    log(
      `ran ${result.executed} cells in ${(result.ms / 1000).toFixed(1)} s${result.errors.length ? `, ${result.errors.length} with errors` : ""}; wrote ${where}`,
    );
    return 0;
  } catch (err) {
    if (err instanceof CellExecutionError) {
      log(`xalign run: ${err.message}`);
      return err.code === "XA_NOTEBOOK_INTERRUPTED" ? 130 : 1;
    }
    throw err;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
