/**
 * The commands that run a plan: torchrun on one node, torchrun on each node of
 * a multi-node job (c10d rendezvous at node 0), and a Slurm batch script that
 * runs every stage in one allocation; each runs python/xalign_torch.py on the
 * stage's job. Argument lists (for spawn) and their shell spelling (for people
 * and scripts) come from the same function.
 */
import { join } from "node:path";
import { torchRunnerPath } from "../train/torch-engine.js";
import { ConfigError } from "../util/errors.js";
import type { LaunchPlan, StagePlan } from "./plan.js";

/** The project's Python entry point, python/xalign_torch.py (found from this module; works from src/ and dist/src/). */
export function entryPoint(): string {
  return torchRunnerPath();
}

/** Quotes one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_/.:=@%+,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line as one shell string. */
export function shellLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

/** A script line: words holding a $VARIABLE are double-quoted so the shell expands them. */
function scriptLine(argv: readonly string[]): string {
  return argv.map((w) => (/\$[A-Z_]/.test(w) ? `"${w}"` : shellQuote(w))).join(" ");
}

export interface CommandOptions {
  /** This node's rank (multi-node); default the plan's. A script passes "$NODE_RANK". */
  nodeRank?: number | "$NODE_RANK";
  /** Continue from the newest checkpoint-N of the stage. */
  resume?: boolean;
}

/**
 * The torchrun command of one stage on one node.
 *
 * @example
 * shellLine(torchrunCommand(plan, plan.stages[0]));
 * // torchrun --standalone --nproc_per_node=8 .../python/xalign_torch.py --job runs/x/launch/sft.json
 */
export function torchrunCommand(plan: LaunchPlan, stage: StagePlan, options: CommandOptions = {}): string[] {
  const { nodes, gpusPerNode, rdzvEndpoint } = plan.topology;
  const argv = [plan.settings.torchrun];
  if (nodes === 1) {
    argv.push("--standalone", `--nproc_per_node=${gpusPerNode}`);
  } else {
    const rank = options.nodeRank ?? plan.topology.nodeRank;
    if (rank === undefined) {
      throw new ConfigError("XA_LAUNCH_NODE_RANK", `a ${nodes}-node launch needs this machine's node rank`, {
        field: "launch.node_rank (--node-rank)",
        hint: "run the same command on every node with --node-rank 0..N-1 (node 0 hosts the rendezvous), or use --slurm",
      });
    }
    argv.push(
      `--nnodes=${nodes}`,
      `--nproc_per_node=${gpusPerNode}`,
      `--node_rank=${rank}`,
      "--rdzv_backend=c10d",
      `--rdzv_endpoint=${rdzvEndpoint}`,
      `--rdzv_id=${plan.experiment}-${stage.name}`,
    );
  }
  argv.push(entryPoint(), "--job", stage.jobFile);
  if (options.resume) argv.push("--resume");
  return argv;
}

/** Every command a person runs for the plan: per stage, one per node. */
export function allCommands(plan: LaunchPlan): { stage: string; nodeRank: number | undefined; argv: string[] }[] {
  const out: { stage: string; nodeRank: number | undefined; argv: string[] }[] = [];
  for (const stage of plan.stages) {
    if (plan.topology.nodes === 1) {
      out.push({ stage: stage.name, nodeRank: undefined, argv: torchrunCommand(plan, stage) });
      continue;
    }
    const ranks = plan.topology.nodeRank !== undefined ? [plan.topology.nodeRank] : [...Array(plan.topology.nodes).keys()];
    for (const nodeRank of ranks) out.push({ stage: stage.name, nodeRank, argv: torchrunCommand(plan, stage, { nodeRank }) });
  }
  return out;
}

/** launch.sh: the stages in order on this node (stops at the first failure). */
export function launchScript(plan: LaunchPlan): string {
  const lines = ["#!/usr/bin/env bash", `# ${plan.experiment}: written by \`xalign launch\`; run on each node.`, "set -euo pipefail"];
  if (plan.topology.nodes > 1 && plan.topology.nodeRank === undefined) {
    lines.push(`[ -n "$\{NODE_RANK:-}" ] || { echo "set NODE_RANK to this node's rank (node 0 hosts the rendezvous)" >&2; exit 2; }`);
  }
  const nodeRank = plan.topology.nodes > 1 ? (plan.topology.nodeRank ?? "$NODE_RANK") : undefined;
  for (const stage of plan.stages) {
    const argv = torchrunCommand(plan, stage, nodeRank !== undefined ? { nodeRank } : {});
    lines.push(`mkdir -p ${shellQuote(stage.dir)}`, `${scriptLine(argv)} 2>&1 | tee -a ${shellQuote(join(stage.dir, "job.log"))}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * A Slurm batch script: one task per node, each running torchrun; the
 * rendezvous is the first node of the allocation. The runner writes each
 * stage's metrics.jsonl itself.
 *
 * @example
 * await writeFile("paper.sbatch", slurmScript(plan)); // then: sbatch paper.sbatch
 */
export function slurmScript(plan: LaunchPlan): string {
  const slurm = { time: "24:00:00", cpus_per_task: 16, port: 29500, ...plan.settings.slurm };
  const { nodes, gpusPerNode } = plan.topology;
  const header = [
    "#!/usr/bin/env bash",
    `#SBATCH --job-name=xalign-${plan.experiment}`,
    `#SBATCH --nodes=${nodes}`,
    "#SBATCH --ntasks-per-node=1",
    `#SBATCH --gpus-per-node=${gpusPerNode}`,
    `#SBATCH --cpus-per-task=${slurm.cpus_per_task}`,
    `#SBATCH --time=${slurm.time}`,
    ...(slurm.partition ? [`#SBATCH --partition=${slurm.partition}`] : []),
    ...(slurm.account ? [`#SBATCH --account=${slurm.account}`] : []),
    ...(slurm.mem ? [`#SBATCH --mem=${slurm.mem}`] : []),
    `#SBATCH --output=${join(plan.launchDir, "slurm-%j.out")}`,
    `# ${plan.experiment}: written by \`xalign launch --slurm\`; submit with sbatch.`,
    "set -euo pipefail",
    'HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
  ];
  const body = plan.stages.map((stage) => {
    const argv = [
      plan.settings.torchrun,
      "--nnodes=$SLURM_NNODES",
      `--nproc_per_node=${gpusPerNode}`,
      "--rdzv_backend=c10d",
      `--rdzv_endpoint=$HEAD_NODE:${slurm.port}`,
      `--rdzv_id=$SLURM_JOB_ID-${stage.name}`,
      entryPoint(),
      "--job",
      stage.jobFile,
    ];
    return `mkdir -p ${shellQuote(stage.dir)}\nsrun --kill-on-bad-exit=1 ${scriptLine(argv)}`;
  });
  return `${[...header, ...body].join("\n")}\n`;
}
