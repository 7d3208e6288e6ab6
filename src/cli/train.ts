/** `xalign train EXPERIMENT.yaml`: runs an experiment's training stages. */
import { loadExperiment } from "../config/load.js";
import { watchSigint } from "../notebook/index.js";
import { runExperiment } from "../train/experiment.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign train EXPERIMENT.yaml [--backend auto|tensorflow|webgpu|wasm|cpu] [--resume] [--force]

Trains the stages of an experiment (e.g. pretraining, then instruction tuning)
and writes <output>/<name>/: tokenizer/, <stage>/checkpoint-N/, <stage>/final/
(a Hugging Face LLaMA folder), <stage>/metrics.jsonl and manifest.json.
A stage whose final/ folder exists is reused.

  --resume   continue unfinished stages from their newest checkpoint
  --force    retrain stages that already have a final/ folder
Ctrl-C stops after the current step and writes a checkpoint; --resume continues.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("train", argv, {
    backend: { type: "string" },
    resume: { type: "boolean" },
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const exp = await loadExperiment(positionals[0] as string);
  const stopWatching = watchSigint();
  try {
    const result = await runExperiment(exp, {
      ...(values.backend ? { backend: values.backend as "auto" } : {}),
      resume: values.resume === true,
      force: values.force === true,
    });
    console.log(`\n${result.name} on ${result.engine.backend} (${result.engine.device}), ${result.model.numParameters()} parameters`);
    for (const row of result.rows())
      console.log(
        `  ${Object.entries(row)
          .map(([k, v]) => `${k}=${v}`)
          .join("  ")}`,
      );
    console.log(`manifest: ${result.manifestPath}`);
    result.model.dispose();
    if (result.interrupted) {
      console.log("interrupted: a checkpoint was written; run again with --resume to continue");
      return 130;
    }
    return 0;
  } finally {
    stopWatching();
  }
}
