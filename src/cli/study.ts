/** `xalign study`: run the study notebooks headless and print the findings (`npm start`). */
import { join } from "node:path";
import { runStudy } from "../study/verify.js";
import { installationRoot } from "../util/fs.js";
import { parseCommand } from "./args.js";

const DEFAULT = ["00-quickstart", "01-data", "02-x-llama", "03-target-vs-source", "04-scaling-law", "05-language-similarity"];

const HELP = `Usage: xalign study [--mode quick|full|smoke] [NOTEBOOK ...]

Executes the study notebooks (default: ${DEFAULT.join(", ")}) headless in
the given mode (default quick), saves each executed notebook with its tables,
figures and manifest under runs/<notebook>/<timestamp>/, and prints the findings.
The shared world, tokenizer and base model are built once and cached.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("study", argv, { mode: { type: "string" }, help: { type: "boolean", short: "h" } });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const mode = String(values.mode ?? "quick");
  const names = positionals.length > 0 ? positionals : DEFAULT;
  const paths = names.map((n) => (n.endsWith(".ipynb") ? n : join(installationRoot(), "notebooks", `${n}.ipynb`)));
  const runs = await runStudy(paths, { parameters: { mode }, log: (l) => console.error(l) });
  console.log(`\nFindings (${mode} mode)\n`);
  for (const r of runs) {
    if (r.error) console.log(`${r.notebook}: FAILED — ${r.error}`);
    for (const f of r.findings) console.log(`${r.notebook}: ${f.finding}`);
    console.log(`  (${r.seconds.toFixed(0)} s; ${r.runDir ?? "no run recorded"})`);
  }
  return runs.some((r) => r.error) ? 1 : 0;
}
