/**
 * Scale-out engine: an `engine: torch-fsdp` experiment runs on the project's
 * torch runner (python/xalign_torch.py) under torchrun — DDP where the model
 * fits one GPU, FSDP beyond — on one node, several nodes, or Slurm, and comes
 * back into the same runs/ layout.
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
export { estimateMemory, formatCount, type MemoryEstimate, type ModelShape, parameterCount } from "./memory.js";
export {
  chooseParallel,
  type LaunchJob,
  type LaunchPlan,
  launchSteps,
  type PlanOptions,
  planLaunch,
  type StagePlan,
  type TokenizerIds,
  tokenizerIds,
} from "./plan.js";
export { type PreparedLaunch, planSummary, prepareLaunch } from "./prepare.js";
export { FSDP_OPTIONS, type LaunchOverrides, resolveLaunchSettings, resolveTopology, type Topology } from "./topology.js";
