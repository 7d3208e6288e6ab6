/**
 * A launch plan as text: what `xalign launch --dry-run` prints — topology,
 * batch arithmetic, the files a launch writes, the resolved per-stage
 * configuration, the exact commands and the Slurm script.
 */
import { join } from "node:path";
import { allCommands, launchScript, shellLine, slurmScript } from "./commands.js";
import type { LaunchPlan } from "./plan.js";

/** The files `prepareLaunch` writes for this plan. */
export function plannedFiles(plan: LaunchPlan): string[] {
  const files = [join(plan.tokenizer.dir, "tokenizer.json"), join(plan.tokenizer.dir, "tokenizer_config.json")];
  for (const s of plan.stages)
    files.push(
      ...(s.initWeightsFile ? [s.initWeightsFile] : []),
      s.batchesFile,
      ...(s.validationFile ? [s.validationFile] : []),
      s.jobFile,
    );
  files.push(join(plan.launchDir, "launch.sh"), join(plan.launchDir, "slurm.sbatch"), join(plan.launchDir, "plan.json"));
  return files;
}

/**
 * @example
 * console.log(describeLaunch(await planLaunch(exp)));
 */
export function describeLaunch(plan: LaunchPlan): string {
  const { nodes, gpusPerNode, worldSize, rdzvEndpoint, nodeRank } = plan.topology;
  const s = plan.settings;
  const ids = plan.tokenizer.ids;
  const out: string[] = [
    `xalign launch ${plan.experiment}: dry run (nothing written, nothing started)`,
    `  experiment  ${plan.experimentFile}`,
    `  engine      torch-fsdp: python/xalign_torch.py under torchrun, ${nodes} node(s) x ${gpusPerNode} GPU(s) = world size ${worldSize}` +
      (nodes > 1
        ? `, rendezvous ${rdzvEndpoint ?? "(from the Slurm allocation)"}${nodeRank !== undefined ? `, this node rank ${nodeRank}` : ""}`
        : ""),
    `  precision   ${s.bf16 ? "bf16 compute over fp32 master weights" : "fp32"}${s.tf32 ? " + tf32" : ""}${s.gradient_checkpointing ? "; gradient checkpointing" : ""}`,
    `  model       ${plan.model.from ? `${plan.model.from}${plan.model.available ? "" : " (not on this machine)"}` : "initialised from the experiment's model config (TypeScript's initialisation)"}`,
    `  tokenizer   ${plan.tokenizer.source} -> ${plan.tokenizer.dir}; ${ids ? `bos ${ids.bos_id}, eos ${ids.eos_id}, pad ${ids.pad_id}` : "ids resolved when prepared"}`,
    `  run folder  ${plan.runDir}`,
  ];
  for (const stage of plan.stages) {
    const t = stage.trainConfig;
    const a = stage.job.train as Record<string, unknown>;
    const perGpu = t.batch_size / worldSize;
    const p = stage.parallel;
    out.push(
      "",
      `stage ${stage.name}: ${stage.train.length} training / ${stage.validation.length} validation examples (${stage.promptFormat} prompt, max length ${t.max_length}, loss on the response)`,
      `  parallel    ${p.mode === "fsdp" ? `FSDP (${stage.job.fsdp?.sharding}, one unit per decoder layer)` : "DDP (each GPU holds the whole model)"}: ${p.reason}`,
      `  batch       ${perGpu} per GPU x ${t.grad_accum} accumulation x ${worldSize} GPUs = ${stage.effectiveBatch} examples per step (micro-batches of ${stage.microBatch} rows, ${perGpu} per rank)`,
      `  steps       ${stage.microBatchesPerEpoch} micro-batches per epoch -> ${stage.totalSteps} optimiser steps (${t.max_steps !== undefined ? `max_steps ${t.max_steps}` : `${t.epochs ?? 1} epochs`}), warmup ${stage.warmupSteps}; counted before encoding (records max_length leaves without a response are dropped when prepared)`,
      `  schedule    lr ${a.lr}, ${a.schedule}, weight decay ${a.weight_decay}, clip norm ${a.clip_norm ?? "off"}`,
      `  output      ${stage.dir} (checkpoint-N/, metrics.jsonl, job.log, final/)`,
      `  job         ${stage.jobFile}:`,
      ...JSON.stringify(stage.job, null, 2)
        .split("\n")
        .map((l) => `    ${l}`),
    );
  }
  out.push("", plan.topology.nodes > 1 ? "commands (one per node, stages in order):" : "commands (stages in order):");
  for (const c of allCommands(plan))
    out.push(`  # ${c.stage}${c.nodeRank !== undefined ? `, node ${c.nodeRank}` : ""}`, `  ${shellLine(c.argv)}`);
  out.push("", "files a launch writes:", ...plannedFiles(plan).map((f) => `  ${f}`));
  out.push("", `${join(plan.launchDir, "launch.sh")}:`, ...indent(launchScript(plan)));
  out.push(
    "",
    `${join(plan.launchDir, "slurm.sbatch")} (submit with sbatch, or run \`xalign launch --slurm\`):`,
    ...indent(slurmScript(plan)),
  );
  out.push("", plan.warnings.length > 0 ? "warnings:" : "checks passed: topology, batch arithmetic, data files, stage settings");
  for (const w of plan.warnings) out.push(`  ! ${w}`);
  return out.join("\n");
}

function indent(text: string): string[] {
  return text
    .trimEnd()
    .split("\n")
    .map((l) => `  ${l}`);
}
