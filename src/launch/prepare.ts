/**
 * Writes a launch plan into the run folder, each file atomically:
 *
 *   runs/<name>/tokenizer/            the tokenizer as xalign reads it (tokenizer.json + config)
 *   runs/<name>/launch/<stage>.train.json, <stage>.validation.json   x-LLM / Alpaca JSON
 *   runs/<name>/launch/<stage>.json   the stage's TrainingArguments/FSDP config for python/xalign_train.py
 *   runs/<name>/launch/launch.sh      the torchrun commands, stage after stage
 *   runs/<name>/launch/slurm.sbatch   the same as a Slurm batch script
 *   runs/<name>/launch/plan.json      the resolved launch (what `--dry-run` prints)
 *
 * @example
 * const prepared = await prepareLaunch(await loadExperiment("examples/paper-7b.yaml"), { modelDir: "/models/llama-7b" });
 * prepared.files; // every file written
 */
import { existsSync } from "node:fs";
import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { type LoadedExperiment, resolveFrom } from "../config/load.js";
import type { AlpacaRecord } from "../data/example.js";
import { loadTokenizer, type Tokenizer, trainBpeTokenizer } from "../tokenizer/index.js";
import { modelConfigFor } from "../train/experiment.js";
import { ConfigError } from "../util/errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/fs.js";
import { claimRunDir } from "../util/run-dir.js";
import { launchScript, slurmScript } from "./commands.js";
import { type LaunchPlan, type PlanOptions, planLaunch, tokenizerIds } from "./plan.js";

export interface PreparedLaunch {
  plan: LaunchPlan;
  files: string[];
}

/** The x-LLM / Stanford Alpaca JSON text: an array, one {instruction, input, output} per line. */
export function alpacaJson(records: readonly AlpacaRecord[]): string {
  if (records.length === 0) return "[]\n";
  return `[\n${records.map((r) => `  ${JSON.stringify({ instruction: r.instruction, input: r.input, output: r.output })}`).join(",\n")}\n]\n`;
}

/** Plans, then writes the plan's files. A missing model folder is an error unless `allowMissingModel` (Slurm from another machine). */
export async function prepareLaunch(
  exp: LoadedExperiment,
  options: PlanOptions & { allowMissingModel?: boolean } = {},
): Promise<PreparedLaunch> {
  const plan = await planLaunch(exp, options);
  if (plan.model.from !== undefined && !plan.model.available && !options.allowMissingModel) {
    throw new ConfigError("XA_LAUNCH_MODEL", `the starting checkpoint ${plan.model.from} has no config.json`, {
      field: "model.from (--model)",
      hint: "point model.from (or --model) at a Hugging Face LLaMA folder on this machine",
    });
  }
  await claimRunDir(plan.runDir);
  const tokenizer = await materialiseTokenizer(exp, plan);
  const ids = tokenizerIds(tokenizer);
  const modelConfig = plan.model.from === undefined ? { ...modelConfigFor(exp.config, tokenizer) } : null;
  plan.tokenizer.ids = ids;
  const files = [join(plan.tokenizer.dir, "tokenizer.json")];
  for (const stage of plan.stages) {
    stage.config.tokenizer = { path: join(plan.tokenizer.dir, "tokenizer.json"), ...ids };
    if ("config" in stage.config.model) stage.config.model = { config: modelConfig };
    await writeFileAtomic(stage.trainFile, alpacaJson(stage.train));
    files.push(stage.trainFile);
    if (stage.validationFile) {
      await writeFileAtomic(stage.validationFile, alpacaJson(stage.validation));
      files.push(stage.validationFile);
    }
    await writeJsonAtomic(stage.configFile, stage.config);
    files.push(stage.configFile);
  }
  const script = join(plan.launchDir, "launch.sh");
  const sbatch = join(plan.launchDir, "slurm.sbatch");
  await writeFileAtomic(script, launchScript(plan));
  await writeFileAtomic(sbatch, slurmScript(plan));
  await chmod(script, 0o755);
  const planFile = join(plan.launchDir, "plan.json");
  await writeJsonAtomic(planFile, planSummary(plan));
  files.push(script, sbatch, planFile);
  return { plan, files };
}

/** The plan without the records: what plan.json holds and `--dry-run --json` prints. */
export function planSummary(plan: LaunchPlan): Record<string, unknown> {
  return {
    format: "xalign-launch-plan/1",
    experiment: plan.experiment,
    experiment_file: plan.experimentFile,
    run_dir: plan.runDir,
    topology: plan.topology,
    settings: plan.settings,
    tokenizer: plan.tokenizer,
    model: plan.model,
    warnings: plan.warnings,
    stages: plan.stages.map((s) => ({
      name: s.name,
      train_examples: s.train.length,
      validation_examples: s.validation.length,
      effective_batch: s.effectiveBatch,
      steps_per_epoch: s.stepsPerEpoch,
      total_steps: s.totalSteps,
      warmup_steps: s.warmupSteps,
      config_file: s.configFile,
      config: s.config,
    })),
  };
}

/** Saves the tokenizer into runs/<name>/tokenizer (training it first when the experiment says train_on). */
async function materialiseTokenizer(exp: LoadedExperiment, plan: LaunchPlan): Promise<Tokenizer> {
  const t = exp.config.tokenizer;
  let tokenizer: Tokenizer;
  if (existsSync(plan.tokenizer.source)) {
    tokenizer = await loadTokenizer(plan.tokenizer.source);
  } else if (t.path === undefined && t.train_on) {
    tokenizer = await trainBpeTokenizer({ files: t.train_on.map((f) => resolveFrom(exp, f)) }, { vocabSize: t.vocab_size });
  } else {
    throw new ConfigError("XA_LAUNCH_TOKENIZER", `no tokenizer at ${plan.tokenizer.source}`, {
      field: "tokenizer.path",
      hint: "point tokenizer.path at a tokenizer.json / tokenizer.model (the LLaMA folder holds one)",
    });
  }
  await tokenizer.save(plan.tokenizer.dir);
  return tokenizer;
}
