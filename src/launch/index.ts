/**
 * Scale-out engine: an `engine: torch-fsdp` experiment runs on PyTorch FSDP
 * through Hugging Face's Trainer (python/xalign_train.py) with torchrun on one
 * node, several nodes, or Slurm, and comes back into the same runs/ layout.
 */
export {
  allCommands,
  type CommandOptions,
  entryPoint,
  launchScript,
  shellLine,
  shellQuote,
  slurmScript,
  torchrunCommand,
} from "./commands.js";
export { describeLaunch, plannedFiles } from "./describe.js";
export { type JobOptions, type JobResult, METRICS_PREFIX, superviseJob } from "./job.js";
export { type LaunchedStage, type LaunchOptions, LaunchResult, launch } from "./launch.js";
export {
  type LaunchPlan,
  type PlanOptions,
  planLaunch,
  type StageLaunchConfig,
  type StagePlan,
  type TokenizerIds,
  tokenizerIds,
} from "./plan.js";
export { alpacaJson, type PreparedLaunch, planSummary, prepareLaunch } from "./prepare.js";
export { FSDP_OPTIONS, type LaunchOverrides, resolveLaunchSettings, resolveTopology, type Topology } from "./topology.js";
