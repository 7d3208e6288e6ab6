/**
 * Writes a launch plan into the run folder, each file atomically:
 *
 *   runs/<name>/tokenizer/                   the tokenizer as xalign reads it (tokenizer.json + config)
 *   runs/<name>/launch/init.safetensors      from scratch only: TypeScript's initial weights (the tfjs engine's)
 *   runs/<name>/launch/<stage>.batches.bin   the stage's micro-batches, encoded once here (xalign-batches/1)
 *   runs/<name>/launch/<stage>.validation.bin  its validation batches (when it evaluates)
 *   runs/<name>/launch/<stage>.json          the job python/xalign_torch.py runs (xalign-torch-job/1)
 *   runs/<name>/launch/launch.sh             the torchrun commands, stage after stage
 *   runs/<name>/launch/slurm.sbatch          the same as a Slurm batch script
 *   runs/<name>/launch/plan.json             the resolved launch (what `--dry-run --json` prints)
 *
 * The batches are the tfjs engine's: the same encoding (src/data/encode.ts), split, seed and length
 * bucketing, with batch_size x world size rows per micro-batch; each rank takes an equal share. Python
 * tokenises nothing.
 *
 * @example
 * const prepared = await prepareLaunch(await loadExperiment("examples/paper-7b.yaml"), { modelDir: "/models/llama-7b" });
 * prepared.files; // every file written
 */
import { existsSync } from "node:fs";
import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { type LoadedExperiment, resolveFrom } from "../config/load.js";
import { ensureEngine } from "../engine/index.js";
import { LlamaModel } from "../model/llama.js";
import { loadTokenizer, type Tokenizer, trainBpeTokenizer } from "../tokenizer/index.js";
import { bucketedBatches } from "../train/batches.js";
import { modelConfigFor, trainingTokenizer } from "../train/experiment.js";
import { encodeExamples } from "../train/sequences.js";
import { microBatchSequence, torchTrainBlock, writeBatchesFile, writeHfWeights } from "../train/torch-engine.js";
import { ConfigError } from "../util/errors.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/fs.js";
import { Rng } from "../util/rng.js";
import { claimRunDir } from "../util/run-dir.js";
import { launchScript, slurmScript } from "./commands.js";
import { type LaunchPlan, launchSteps, type PlanOptions, planLaunch, type StagePlan, tokenizerIds } from "./plan.js";

export interface PreparedLaunch {
  plan: LaunchPlan;
  files: string[];
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
  plan.tokenizer.ids = tokenizerIds(tokenizer);
  const files = [join(plan.tokenizer.dir, "tokenizer.json")];
  if (plan.model.from === undefined) {
    // From scratch: the tfjs engine's initial weights (src/train/experiment.ts), so both engines start alike.
    const modelConfig = { ...modelConfigFor(exp.config, tokenizer) };
    const first = plan.stages[0] as StagePlan;
    first.job.model_config = modelConfig as unknown as Record<string, unknown>;
    const initFile = first.initWeightsFile as string;
    await ensureEngine();
    const model = LlamaModel.init(modelConfig, new Rng(exp.config.seed).fork("model-init"));
    try {
      await writeHfWeights(model, initFile);
    } finally {
      model.dispose();
    }
    files.push(initFile);
  }
  for (const stage of plan.stages) {
    files.push(...(await writeStageData(exp, stage, tokenizer)));
    await writeJsonAtomic(stage.jobFile, stage.job);
    files.push(stage.jobFile);
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

/**
 * Encodes a stage's records (TypeScript's tokenizer, src/data/encode.ts) and writes its micro-batches in
 * training order and its validation batches; recounts the steps from the sequences that carry loss.
 */
async function writeStageData(exp: LoadedExperiment, stage: StagePlan, tokenizer: Tokenizer): Promise<string[]> {
  const t = stage.trainConfig;
  const tok = trainingTokenizer(tokenizer);
  const encode = (records: StagePlan["train"]) => encodeExamples(records, tok, { maxLength: t.max_length, format: stage.promptFormat });
  const source = bucketedBatches(await encode(stage.train), { batchSize: stage.microBatch, seed: stage.seed, padId: tok.padId });
  if (source.batchesPerEpoch !== stage.microBatchesPerEpoch) {
    // Records whose response max_length cut away were dropped, as the tfjs engine drops them.
    const { totalSteps, warmupSteps } = launchSteps(t, source.batchesPerEpoch);
    if (warmupSteps > totalSteps) {
      throw new ConfigError("XA_LAUNCH_WARMUP", `warmup (${warmupSteps} steps) is longer than training (${totalSteps} steps)`, {
        file: exp.file,
        field: `stages[${stage.index}].train.warmup_steps`,
        hint: "lower warmup_steps or use warmup_ratio",
      });
    }
    Object.assign(stage, { microBatchesPerEpoch: source.batchesPerEpoch, totalSteps, warmupSteps });
    stage.job.train = torchTrainBlock(t, totalSteps, warmupSteps);
  }
  await writeBatchesFile(stage.batchesFile, microBatchSequence(source, stage.totalSteps, t.grad_accum));
  const written = [stage.batchesFile];
  if (stage.validationFile) {
    const sequences = await encode(stage.validation);
    const batchSize = Math.min(stage.microBatch, sequences.length);
    const batches = bucketedBatches(sequences, { batchSize, seed: stage.seed, padId: tok.padId, dropLast: false })
      .epoch(0)
      .slice(0, t.eval_batches);
    await writeBatchesFile(
      stage.validationFile,
      batches.map((batch, index) => ({ batch, epoch: 0, index })),
    );
    written.push(stage.validationFile);
  }
  return written;
}

/** The plan without the records: what plan.json holds and `--dry-run --json` prints. */
export function planSummary(plan: LaunchPlan): Record<string, unknown> {
  return {
    format: "xalign-launch-plan/2",
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
      micro_batch: s.microBatch,
      effective_batch: s.effectiveBatch,
      micro_batches_per_epoch: s.microBatchesPerEpoch,
      total_steps: s.totalSteps,
      warmup_steps: s.warmupSteps,
      parallel: s.parallel.mode,
      parallel_reason: s.parallel.reason,
      memory: s.parallel.memory,
      job_file: s.jobFile,
      job: s.job,
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
