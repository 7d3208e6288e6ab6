/**
 * The `xalign` command. Each subcommand lives in its own module exporting
 * `run(argv): Promise<number>`; this file only dispatches, so the CLI stays a
 * thin front end over the library (the notebooks are the other one).
 */
import { systemError, XalignError } from "../util/errors.js";
import { VERSION } from "../version.js";

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  doctor: { summary: "report versions, backends and why each is or is not available", load: () => import("./doctor.js") },
  kernel: { summary: "install, list or remove the xalign Jupyter kernelspec (no Python needed)", load: () => import("./kernel.js") },
  run: {
    summary: "execute a notebook headless with the xalign kernel (-p key=value, --out, --timeout, --allow-errors)",
    load: () => import("./run.js"),
  },
  data: { summary: "build a data mixture from a YAML spec, or print statistics of an example file", load: () => import("./data.js") },
  cache: { summary: "list or clear the notebooks' shared artifacts (world, tokenizer, base model)", load: () => import("./cache.js") },
  study: { summary: "run the study notebooks headless and print their findings (npm start)", load: () => import("./study.js") },
  verify: {
    summary: "rerun a notebook with its published (or newest local) run's parameters and compare the metrics",
    load: () => import("./verify.js"),
  },
  publish: {
    summary: "ship a notebook's newest run as notebooks/results/<notebook>.json (what its findings quote)",
    load: () => import("./publish.js"),
  },
  train: { summary: "train an experiment's stages (pretraining, instruction tuning, LoRA)", load: () => import("./train.js") },
  synth: { summary: "generate the synthetic multilingual world (synth build)", load: () => import("./synth.js") },
  launch: { summary: "run a torch-fsdp experiment with torchrun or Slurm (--dry-run prints it)", load: () => import("./launch.js") },
  eval: { summary: "score translations (sacreBLEU-exact BLEU/chrF) or a predictions.jsonl by language", load: () => import("./eval.js") },
};

export function commandNames(): string[] {
  return Object.keys(COMMANDS);
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `xalign ${VERSION}: cross-lingual instruction tuning of LLaMA models\n\nUsage: xalign <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun \`xalign <command> --help\` for a command's options.`;
}

/** Runs the CLI with the given arguments; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    console.log(VERSION);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`xalign: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await command.load()).run(rest);
  } catch (err) {
    const known = err instanceof XalignError ? err : systemError(err);
    if (known) {
      console.error(`xalign ${name}: ${known.name} [${known.code}]: ${known.message}`);
      return 1;
    }
    throw err;
  }
}
