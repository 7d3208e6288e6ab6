/** `xalign verify NOTEBOOK`: rerun with the recorded parameters and compare the metrics. */
import { verifyNotebook } from "../study/verify.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign verify NOTEBOOK.ipynb [--tolerance X]

Reruns a study notebook with the parameters of its newest run under runs/<notebook>/
and compares every recorded metric: identical on the cpu and wasm backends,
within --tolerance (default 0.001, absolute) on GPU backends. Exits 1 on a mismatch.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("verify", argv, { tolerance: { type: "string" }, help: { type: "boolean", short: "h" } });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const result = await verifyNotebook(positionals[0] as string, {
    ...(values.tolerance ? { tolerance: Number(values.tolerance) } : {}),
    log: (l) => console.error(l),
  });
  console.log(`${result.notebook}: ${result.compared} metrics compared (${result.backend}, tolerance ${result.tolerance})`);
  console.log(`  recorded ${result.recordedRun}\n  rerun    ${result.rerun}`);
  for (const m of result.mismatches) console.log(`  MISMATCH ${m.metric}: ${m.recorded} vs ${m.rerun}`);
  console.log(result.ok ? "verified: identical" : `NOT verified: ${result.mismatches.length} metric(s) differ`);
  return result.ok ? 0 : 1;
}
