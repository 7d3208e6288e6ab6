/**
 * Where an `engine: torch-fsdp` job runs: nodes x GPUs, the rendezvous and
 * this machine's rank, from the experiment's `launch:` block with command-line
 * overrides on top; and the FSDP words it accepts. Every impossible
 * combination is a ConfigError that names the field (or flag) and says what
 * to set.
 */
import { type LaunchConfig, LaunchSchema } from "../config/schema.js";
import { ConfigError } from "../util/errors.js";

/** Command-line (or notebook) overrides of the experiment's `launch:` block. */
export interface LaunchOverrides {
  nodes?: number;
  gpusPerNode?: number;
  rdzvEndpoint?: string;
  nodeRank?: number;
  /** A Hugging Face LLaMA folder replacing `model.from` (and `tokenizer.path` when it pointed at the same folder). */
  modelDir?: string;
  torchrun?: string;
  /** DDP, FSDP, or auto (by the plan's memory estimate). */
  parallel?: LaunchConfig["parallel"];
  /** Memory of one GPU, GiB (for parallel auto). */
  gpuMemoryGiB?: number;
}

export interface Topology {
  nodes: number;
  gpusPerNode: number;
  /** nodes x gpusPerNode: the number of training processes. */
  worldSize: number;
  rdzvEndpoint: string | undefined;
  nodeRank: number | undefined;
}

/**
 * The FSDP words of `launch.fsdp` (Hugging Face's spelling) that python/xalign_torch.py runs: the
 * sharding strategy, and auto_wrap, which it always does (one FSDP unit per decoder layer).
 */
export const FSDP_OPTIONS = ["full_shard", "shard_grad_op", "auto_wrap"] as const;

/** Hugging Face's other FSDP words, refused with a hint rather than as unknown. */
const UNSUPPORTED_FSDP = ["no_shard", "hybrid_shard", "hybrid_shard_zero2", "offload"];

/** The `launch:` block with defaults filled and overrides applied. */
export function resolveLaunchSettings(launch: LaunchConfig | undefined, overrides: LaunchOverrides = {}): LaunchConfig {
  const base = launch ?? LaunchSchema.parse({});
  return {
    ...base,
    ...(overrides.nodes !== undefined ? { nodes: overrides.nodes } : {}),
    ...(overrides.gpusPerNode !== undefined ? { gpus_per_node: overrides.gpusPerNode } : {}),
    ...(overrides.rdzvEndpoint !== undefined ? { rdzv_endpoint: overrides.rdzvEndpoint } : {}),
    ...(overrides.nodeRank !== undefined ? { node_rank: overrides.nodeRank } : {}),
    ...(overrides.torchrun !== undefined ? { torchrun: overrides.torchrun } : {}),
    ...(overrides.parallel !== undefined ? { parallel: overrides.parallel } : {}),
    ...(overrides.gpuMemoryGiB !== undefined ? { gpu_memory_gib: overrides.gpuMemoryGiB } : {}),
  };
}

/**
 * Checks and returns the topology. `slurm` derives the rendezvous from the
 * allocation, so it needs no endpoint or rank.
 *
 * @example
 * resolveTopology({ ...settings, nodes: 2, gpus_per_node: 8, rdzv_endpoint: "node0:29500" }).worldSize; // 16
 */
export function resolveTopology(settings: LaunchConfig, options: { slurm?: boolean } = {}): Topology {
  const { nodes, gpus_per_node: gpusPerNode, rdzv_endpoint: rdzvEndpoint, node_rank: nodeRank } = settings;
  for (const [field, value] of [
    ["launch.nodes (--nodes)", nodes],
    ["launch.gpus_per_node (--gpus-per-node)", gpusPerNode],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new ConfigError("XA_LAUNCH_TOPOLOGY", `must be a whole number >= 1, got ${value}`, {
        field,
        hint: "the study: 1 node x 8 GPUs",
      });
    }
  }
  if (rdzvEndpoint !== undefined) checkEndpoint(rdzvEndpoint);
  if (nodeRank !== undefined && (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nodes)) {
    throw new ConfigError("XA_LAUNCH_NODE_RANK", `node rank ${nodeRank} is not one of 0..${nodes - 1} for ${nodes} node(s)`, {
      field: "launch.node_rank (--node-rank)",
      hint: "node 0 hosts the rendezvous; give each machine its own rank",
    });
  }
  if (nodes > 1 && rdzvEndpoint === undefined && !options.slurm) {
    throw new ConfigError("XA_LAUNCH_RDZV", `${nodes} nodes need a rendezvous endpoint`, {
      field: "launch.rdzv_endpoint (--rdzv-endpoint)",
      hint: "set HOST:PORT of node 0 (e.g. node0:29500), or use --slurm, which takes the first node of the allocation",
    });
  }
  const words = settings.fsdp.split(/\s+/).filter(Boolean);
  for (const word of words) {
    if (UNSUPPORTED_FSDP.includes(word)) {
      throw new ConfigError("XA_LAUNCH_FSDP", `FSDP option "${word}" is not supported by xalign's runner (python/xalign_torch.py)`, {
        field: "launch.fsdp",
        hint: `use ${FSDP_OPTIONS.join(", ")} (the study: "full_shard auto_wrap"); for no sharding use launch.parallel: ddp`,
      });
    }
    if (!(FSDP_OPTIONS as readonly string[]).includes(word)) {
      throw new ConfigError("XA_LAUNCH_FSDP", `unknown FSDP option "${word}"`, {
        field: "launch.fsdp",
        hint: `use words from ${FSDP_OPTIONS.join(", ")} (the study: "full_shard auto_wrap"), or "" for no FSDP`,
      });
    }
  }
  if (words.includes("full_shard") && words.includes("shard_grad_op")) {
    throw new ConfigError("XA_LAUNCH_FSDP", "launch.fsdp names two sharding strategies (full_shard and shard_grad_op)", {
      field: "launch.fsdp",
      hint: 'keep one: "full_shard auto_wrap" shards weights, gradients and optimizer state',
    });
  }
  return { nodes, gpusPerNode, worldSize: nodes * gpusPerNode, rdzvEndpoint, nodeRank };
}

function checkEndpoint(endpoint: string): void {
  const match = /^([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\]):(\d{1,5})$/.exec(endpoint);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port < 1 || port > 65535) {
    throw new ConfigError("XA_LAUNCH_RDZV", `"${endpoint}" is not HOST:PORT`, {
      field: "launch.rdzv_endpoint (--rdzv-endpoint)",
      hint: "e.g. node0:29500 or 10.0.0.1:29500 (port 1-65535)",
    });
  }
}
