/** `xalign verify NOTEBOOK`: rerun with the published (or recorded) parameters and compare the metrics. */

import { verifyNotebook } from "../study/verify.js";
import { ConfigError } from "../util/errors.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign verify NOTEBOOK.ipynb [--against published|local] [--tolerance X]

Reruns a study notebook and compares every recorded metric with
  published  its shipped run, notebooks/results/<notebook>.json (the default when
             that file exists): what the notebook's findings quote;
  local      its newest run under runs/<notebook>/ (the default otherwise).
The rerun uses that run's parameters (mode, seeds, languages, backend). Metrics must
be identical on the cpu and wasm backends, within --tolerance (default 0.001,
absolute) on GPU backends. Prints each metric that moved; exits 1 on a mismatch.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("verify", argv, {
    against: { type: "string" },
    tolerance: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const against = values.against as string | undefined;
  if (against !== undefined && against !== "published" && against !== "local") {
    throw new ConfigError("XA_CLI_ARGS", `--against ${against} is not published or local`, {
      field: "--against",
      hint: "run `xalign verify --help`",
    });
  }
  const result = await verifyNotebook(positionals[0] as string, {
    ...(values.tolerance ? { tolerance: Number(values.tolerance) } : {}),
    ...(against ? { against } : {}),
    log: (l) => console.error(l),
  });
  console.log(`${result.notebook}: ${result.compared} metrics compared (${result.backend}, tolerance ${result.tolerance})`);
  console.log(`  ${result.against === "published" ? "published" : "recorded "} ${result.recordedRun}\n  rerun     ${result.rerun}`);
  for (const m of result.mismatches) console.log(`  MOVED ${m.metric}: ${m.recorded} -> ${m.rerun}`);
  for (const input of result.dataDifferences) {
    console.log(`  note: ${input} differs from the reference run's (sha256): the rerun read other data`);
  }
  console.log(result.ok ? "verified: identical" : `NOT verified: ${result.mismatches.length} metric(s) moved`);
  return result.ok ? 0 : 1;
}
