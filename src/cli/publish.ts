/** `xalign publish NOTEBOOK`: ship a notebook's newest run as notebooks/results/<notebook>.json. */

import { publishRun } from "../study/published.js";
import { latestRun, runsRoot } from "../study/record.js";
import { notebookName } from "../study/verify.js";
import { NotebookError } from "../util/errors.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign publish NOTEBOOK.ipynb [--run RUN_FOLDER]

Copies a finished run of a study notebook (default: its newest, under runs/<notebook>/)
into notebooks/results/<notebook>.json: parameters, backend, versions, git commit,
metrics, findings and recorded tables. That file is what the notebook's "published run"
section shows and what \`xalign verify\` compares a rerun with, so publish on purpose,
after a run whose numbers the notebook should quote, and commit the file.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("publish", argv, { run: { type: "string" }, help: { type: "boolean", short: "h" } });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const path = positionals[0] as string;
  const name = notebookName(path);
  const runDir = (values.run as string | undefined) ?? (await latestRun(name, runsRoot()));
  if (!runDir) {
    throw new NotebookError("XA_PUBLISH_NO_RUN", `no finished run of ${name} to publish`, {
      file: path,
      hint: `run it first: xalign run ${path}`,
    });
  }
  const { file, published, moved } = await publishRun(runDir);
  if (published.notebook !== name) {
    console.error(`note: the run is of ${published.notebook}, published as ${file}`);
  }
  console.log(
    `published ${runDir}\n  -> ${file} (${Object.keys(published.metrics).length} metrics, ${published.findings.length} findings)`,
  );
  if (published.dirty) console.log("  warning: the run was made from a tree with uncommitted changes; commit, rerun and publish again");
  for (const m of moved) console.log(`  moved ${m.metric}: ${m.recorded} -> ${m.rerun}`);
  return 0;
}
