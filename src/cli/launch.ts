/** `xalign launch EXPERIMENT.yaml`: runs an `engine: torch-fsdp` experiment with torchrun on python/xalign_torch.py (or writes its Slurm script). */
import { resolve } from "node:path";
import { loadExperiment } from "../config/load.js";
import { describeLaunch, type LaunchOverrides, launch, planLaunch, planSummary, prepareLaunch } from "../launch/index.js";
import { watchSigint } from "../notebook/index.js";
import { ConfigError } from "../util/errors.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign launch EXPERIMENT.yaml [--dry-run [--json]] [--slurm] [--model DIR]
                     [--nodes N] [--gpus-per-node G] [--rdzv-endpoint HOST:PORT] [--node-rank R]
                     [--parallel auto|ddp|fsdp] [--gpu-memory GIB] [--resume] [--force]

Runs an experiment with engine: torch-fsdp on PyTorch through torchrun: xalign
encodes each stage's data into micro-batches, python/xalign_torch.py trains them
(DDP where the model fits one GPU, FSDP beyond), writing checkpoint-N/ and
<output>/<name>/<stage>/metrics.jsonl; each stage ends in <stage>/final/, a
Hugging Face LLaMA folder that xalign loads for evaluation.

  --dry-run          print the resolved configuration, files and exact commands; write nothing
  --json             with --dry-run: the plan as JSON
  --slurm            write the run folder and a Slurm batch script (launch/slurm.sbatch); do not start
  --model DIR        the starting Hugging Face LLaMA folder (replaces model.from, and tokenizer.path when equal)
  --nodes N          number of machines (launch.nodes)
  --gpus-per-node G  processes per machine (launch.gpus_per_node)
  --rdzv-endpoint    HOST:PORT of node 0, for several nodes (launch.rdzv_endpoint)
  --node-rank R      this machine's rank, 0..N-1 (launch.node_rank)
  --parallel MODE    ddp, fsdp, or auto: DDP when the memory estimate fits one GPU (launch.parallel)
  --gpu-memory GIB   memory of one GPU for that estimate (launch.gpu_memory_gib, default 80)
  --resume           continue unfinished stages from their newest checkpoint-N
  --force            retrain stages whose final/ folder exists
Ctrl-C asks the job to stop at the next step (it saves a checkpoint); --resume continues.`;

function integer(flag: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== "string" || !/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
    throw new ConfigError("XA_CLI_ARGS", `--${flag} must be a whole number, got "${String(value)}"`, {
      hint: "run `xalign launch --help`",
    });
  }
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("launch", argv, {
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
    slurm: { type: "boolean" },
    model: { type: "string" },
    nodes: { type: "string" },
    "gpus-per-node": { type: "string" },
    "rdzv-endpoint": { type: "string" },
    "node-rank": { type: "string" },
    parallel: { type: "string" },
    "gpu-memory": { type: "string" },
    resume: { type: "boolean" },
    force: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const overrides: LaunchOverrides = {};
  const nodes = integer("nodes", values.nodes);
  const gpus = integer("gpus-per-node", values["gpus-per-node"]);
  const rank = integer("node-rank", values["node-rank"]);
  if (nodes !== undefined) overrides.nodes = nodes;
  if (gpus !== undefined) overrides.gpusPerNode = gpus;
  if (rank !== undefined) overrides.nodeRank = rank;
  if (typeof values["rdzv-endpoint"] === "string") overrides.rdzvEndpoint = values["rdzv-endpoint"];
  if (typeof values.model === "string") overrides.modelDir = resolve(values.model);
  if (values.parallel !== undefined) {
    if (values.parallel !== "auto" && values.parallel !== "ddp" && values.parallel !== "fsdp") {
      throw new ConfigError("XA_CLI_ARGS", `--parallel must be auto, ddp or fsdp, got "${String(values.parallel)}"`, {
        hint: "run `xalign launch --help`",
      });
    }
    overrides.parallel = values.parallel;
  }
  if (values["gpu-memory"] !== undefined) {
    const gib = Number(values["gpu-memory"]);
    if (typeof values["gpu-memory"] !== "string" || !(gib > 0)) {
      throw new ConfigError("XA_CLI_ARGS", `--gpu-memory must be a positive number of GiB, got "${String(values["gpu-memory"])}"`, {
        hint: "e.g. --gpu-memory 40 for A100 40GB",
      });
    }
    overrides.gpuMemoryGiB = gib;
  }
  const slurm = values.slurm === true;
  const exp = await loadExperiment(positionals[0] as string);

  if (values["dry-run"]) {
    const plan = await planLaunch(exp, { ...overrides, slurm });
    console.log(values.json ? JSON.stringify(planSummary(plan), null, 2) : describeLaunch(plan));
    return 0;
  }
  if (slurm) {
    const { plan, files } = await prepareLaunch(exp, { ...overrides, slurm, allowMissingModel: true });
    for (const f of files) console.log(`wrote ${f}`);
    for (const w of plan.warnings) console.log(`! ${w}`);
    console.log(`submit with: sbatch ${plan.launchDir}/slurm.sbatch`);
    return 0;
  }
  const stopWatching = watchSigint();
  try {
    const result = await launch(exp, { ...overrides, resume: values.resume === true, force: values.force === true });
    for (const row of result.rows())
      console.log(
        `  ${Object.entries(row)
          .map(([k, v]) => `${k}=${v}`)
          .join("  ")}`,
      );
    console.log(`manifest: ${result.manifestPath}`);
    if (result.interrupted) {
      console.log("interrupted: run again with --resume to continue from the newest checkpoint");
      return 130;
    }
    return 0;
  } finally {
    stopWatching();
  }
}
