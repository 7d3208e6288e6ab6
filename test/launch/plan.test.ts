/**
 * Generated launch configurations and commands: the paper preset reproduces
 * the study's Trainer settings, the examples/paper-7b.yaml dry run is
 * complete, commands for one node, several nodes and Slurm are exact, the
 * validation split is the tfjs engine's, and every bad input is a ConfigError
 * naming its field.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { loadExperiment } from "../../src/config/load.js";
import {
  allCommands,
  describeLaunch,
  entryPoint,
  launchScript,
  planLaunch,
  plannedFiles,
  prepareLaunch,
  shellQuote,
  slurmScript,
  torchrunCommand,
} from "../../src/launch/index.js";
import { splitValidation } from "../../src/train/sequences.js";
import { ConfigError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { repoRoot, tempDir } from "../helpers.js";
import { records, torchExperiment } from "./experiment.js";

const PAPER = "preset: paper\n      clip_norm: 1.0";
const EIGHT_GPUS = "launch:\n  gpus_per_node: 8\n  effective_batch: 128\n  tf32: true";
const LONG_MODEL =
  "  hidden_size: 32\n  intermediate_size: 64\n  num_hidden_layers: 2\n  num_attention_heads: 4\n  max_position_embeddings: 1024\n";

function configError(code: string, field?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (field) assert.match(err.message, field);
    return true;
  };
}

test("the paper preset gives the study's TrainingArguments and FSDP settings", async () => {
  const tmp = await tempDir();
  try {
    const exp = await torchExperiment(tmp.dir, {
      n: 300,
      train: PAPER,
      extra: EIGHT_GPUS,
      stage: "    validation_ratio: 0",
      model: LONG_MODEL,
    });
    const plan = await planLaunch(exp);
    const stage = plan.stages[0]!;
    const a = stage.trainingArguments;
    assert.equal(a.per_device_train_batch_size, 4);
    assert.equal(a.gradient_accumulation_steps, 4);
    assert.equal(plan.topology.worldSize, 8);
    assert.equal(stage.effectiveBatch, 128);
    assert.equal(a.learning_rate, 2e-5);
    assert.equal(a.lr_scheduler_type, "cosine");
    assert.equal(a.warmup_ratio, 0.03);
    assert.equal(a.num_train_epochs, 3);
    assert.equal(a.weight_decay, 0);
    assert.equal(a.bf16, true);
    assert.equal(a.tf32, true);
    assert.equal(a.fsdp, "full_shard auto_wrap");
    assert.deepEqual(a.fsdp_config, { transformer_layer_cls_to_wrap: ["LlamaDecoderLayer"] });
    assert.equal(a.max_grad_norm, 1);
    assert.equal(stage.config.data.max_length, 512);
    assert.equal(stage.config.data.prompt_format, "alpaca");
    // 300 examples / 8 ranks = 38 per rank -> 10 batches of 4 -> 2 updates per epoch (HF's count), 3 epochs.
    assert.equal(stage.stepsPerEpoch, 2);
    assert.equal(stage.totalSteps, 6);
    assert.equal(stage.warmupSteps, 1);
    // Tokenizer ids come from xalign's tokenizer so both engines agree.
    assert.deepEqual(plan.tokenizer.ids, { bos_id: 1, eos_id: 2, pad_id: stage.config.tokenizer.pad_id });
    assert.equal(stage.config.tokenizer.bos_id, 1);
    assert.ok("config" in stage.config.model && stage.config.model.config?.hidden_size === 32);
  } finally {
    await tmp.cleanup();
  }
});

test("other train settings map onto HF names (max_steps, warmup_steps, eval, save, schedule)", async () => {
  const tmp = await tempDir();
  try {
    const train =
      "max_steps: 10\n      warmup_steps: 2\n      schedule: constant\n      eval_every: 5\n      eval_batches: 3\n      save_every: 4\n      keep_last: 3\n      early_stopping_patience: 2\n      batch_size: 2\n      max_length: 64";
    const plan = await planLaunch(await torchExperiment(tmp.dir, { n: 100, train, stage: "    validation_ratio: 0.2" }));
    const s = plan.stages[0]!;
    const a = s.trainingArguments;
    assert.equal(a.max_steps, 10);
    assert.equal(a.num_train_epochs, undefined);
    assert.equal(a.warmup_steps, 2);
    assert.equal(a.lr_scheduler_type, "constant_with_warmup");
    assert.equal(a.eval_strategy, "steps");
    assert.equal(a.eval_steps, 5);
    assert.equal(a.save_strategy, "steps");
    assert.equal(a.save_steps, 4);
    assert.equal(a.save_total_limit, 3);
    assert.equal(a.max_grad_norm, 0, "no clip_norm: no clipping, as the tfjs trainer");
    assert.equal(s.totalSteps, 10);
    assert.equal(s.config.xalign.early_stopping_patience, 2);
    assert.equal(s.config.data.max_eval_examples, 3 * 2 * 1);
    assert.ok(s.validation.length > 0 && s.validationFile !== undefined);
  } finally {
    await tmp.cleanup();
  }
});

test("the held-out split is the tfjs engine's (same seed, same examples)", async () => {
  const tmp = await tempDir();
  try {
    const plan = await planLaunch(await torchExperiment(tmp.dir, { n: 200, stage: "    validation_ratio: 0.1" }));
    const seed = new Rng(7).fork("stage-0-sft").nextU32();
    const expected = splitValidation(records(200), 0.1, seed);
    assert.deepEqual(plan.stages[0]!.validation, expected.validation);
    assert.deepEqual(plan.stages[0]!.train, expected.train);
    assert.ok(expected.validation.length > 5);
  } finally {
    await tmp.cleanup();
  }
});

test("examples/paper-7b.yaml: a complete dry run with the study's recipe", async () => {
  const exp = await loadExperiment(join(repoRoot(), "examples", "paper-7b.yaml"));
  const plan = await planLaunch(exp, { modelDir: "/nonexistent/llama-7b-hf" });
  assert.equal(plan.topology.worldSize, 8);
  assert.equal(plan.stages[0]!.effectiveBatch, 128);
  assert.equal(plan.model.from, "/nonexistent/llama-7b-hf");
  assert.equal(plan.tokenizer.source, "/nonexistent/llama-7b-hf", "--model also replaces tokenizer.path when it was the same folder");
  const text = describeLaunch(plan);
  for (const needle of [
    "1 node(s) x 8 GPU(s) = world size 8",
    "4 per GPU x 4 accumulation x 8 GPUs = 128 examples per step",
    `torchrun --standalone --nproc_per_node=8 ${entryPoint()} --config ${plan.stages[0]!.configFile}`,
    '"fsdp": "full_shard auto_wrap"',
    '"learning_rate": 0.00002',
    "#SBATCH --gpus-per-node=8",
    "not on this machine",
  ]) {
    assert.ok(text.includes(needle), `dry run lacks: ${needle}`);
  }
  for (const f of plannedFiles(plan)) assert.ok(text.includes(f), `dry run lists ${f}`);
});

test("commands: single node, each node of a multi-node job, launch.sh and Slurm", async () => {
  const tmp = await tempDir();
  try {
    const exp = await torchExperiment(tmp.dir, { n: 64 });
    const single = await planLaunch(exp, { gpusPerNode: 4 });
    assert.deepEqual(torchrunCommand(single, single.stages[0]!), [
      "torchrun",
      "--standalone",
      "--nproc_per_node=4",
      entryPoint(),
      "--config",
      single.stages[0]!.configFile,
    ]);
    const multi = await planLaunch(exp, { nodes: 2, gpusPerNode: 8, rdzvEndpoint: "node0:29500" });
    const cmds = allCommands(multi);
    assert.equal(cmds.length, 2);
    assert.deepEqual(cmds[1]!.argv.slice(0, 7), [
      "torchrun",
      "--nnodes=2",
      "--nproc_per_node=8",
      "--node_rank=1",
      "--rdzv_backend=c10d",
      "--rdzv_endpoint=node0:29500",
      "--rdzv_id=tiny-torch-sft",
    ]);
    assert.throws(() => torchrunCommand(multi, multi.stages[0]!), configError("XA_LAUNCH_NODE_RANK"));
    const mine = await planLaunch(exp, { nodes: 2, gpusPerNode: 8, rdzvEndpoint: "node0:29500", nodeRank: 1 });
    assert.equal(allCommands(mine).length, 1, "with a node rank: only this node's command");
    const script = launchScript(multi);
    assert.match(script, /"--node_rank=\$NODE_RANK"/);
    assert.match(script, /NODE_RANK:-/);
    const bash = spawnSync("bash", ["-n"], { input: script });
    assert.equal(bash.status, 0, `launch.sh parses: ${bash.stderr}`);
    const slurm = slurmScript(await planLaunch(exp, { nodes: 4, gpusPerNode: 8, slurm: true }));
    for (const line of [
      "#SBATCH --nodes=4",
      "#SBATCH --gpus-per-node=8",
      "#SBATCH --ntasks-per-node=1",
      "srun --kill-on-bad-exit=1 torchrun",
    ]) {
      assert.ok(slurm.includes(line), `slurm script lacks ${line}`);
    }
    assert.match(slurm, /"--rdzv_endpoint=\$HEAD_NODE:29500"/);
    assert.match(slurm, /--metrics-file \S+metrics\.jsonl/);
    assert.equal(spawnSync("bash", ["-n"], { input: slurm }).status, 0, "slurm script parses");
    assert.equal(shellQuote("it's a path"), `'it'\\''s a path'`);
  } finally {
    await tmp.cleanup();
  }
});

test("prepareLaunch writes the x-LLM JSON, the stage config, the tokenizer and the scripts", async () => {
  const tmp = await tempDir();
  try {
    const { plan, files } = await prepareLaunch(await torchExperiment(tmp.dir, { n: 50, stage: "    validation_ratio: 0.1" }));
    const stage = plan.stages[0]!;
    for (const f of files) assert.ok((await stat(f)).isFile(), `${f} written`);
    const train = JSON.parse(await readFile(stage.trainFile, "utf8")) as Record<string, string>[];
    assert.equal(train.length, stage.train.length);
    for (const r of train) assert.deepEqual(Object.keys(r), ["instruction", "input", "output"]);
    const config = JSON.parse(await readFile(stage.configFile, "utf8"));
    assert.equal(config.format, "xalign-launch/1");
    assert.equal(config.tokenizer.bos_id, 1);
    assert.equal(config.tokenizer.path, join(plan.runDir, "tokenizer", "tokenizer.json"));
    assert.ok((await stat(config.tokenizer.path)).isFile());
    assert.equal(config.model.config.vocab_size > 0, true);
    const script = join(plan.launchDir, "launch.sh");
    assert.ok(((await stat(script)).mode & 0o111) !== 0, "launch.sh is executable");
    const summary = JSON.parse(await readFile(join(plan.launchDir, "plan.json"), "utf8"));
    assert.equal(summary.stages[0].total_steps, stage.totalSteps);
  } finally {
    await tmp.cleanup();
  }
});

test("bad launches are ConfigErrors naming the field", async () => {
  const tmp = await tempDir();
  try {
    const base = await torchExperiment(tmp.dir, { n: 64 });
    await assert.rejects(planLaunch({ ...base, config: { ...base.config, engine: "tfjs" } }), configError("XA_LAUNCH_ENGINE", /engine/));
    await assert.rejects(planLaunch(base, { nodes: 2 }), configError("XA_LAUNCH_RDZV", /rdzv_endpoint/));
    await assert.rejects(planLaunch(base, { nodes: 2, rdzvEndpoint: "node0" }), configError("XA_LAUNCH_RDZV", /HOST:PORT/));
    await assert.rejects(planLaunch(base, { nodes: 2, rdzvEndpoint: "node0:70000" }), configError("XA_LAUNCH_RDZV"));
    await assert.rejects(planLaunch(base, { nodes: 2, rdzvEndpoint: "n:1", nodeRank: 2 }), configError("XA_LAUNCH_NODE_RANK", /0\.\.1/));
    await assert.rejects(planLaunch(base, { gpusPerNode: 0 }), configError("XA_LAUNCH_TOPOLOGY", /gpus_per_node/));
    await assert.rejects(planLaunch(base, { gpusPerNode: 65 }), configError("XA_LAUNCH_BATCH", /\d+ training examples for 65 GPUs/));
    // A Slurm plan takes the rendezvous from the allocation.
    assert.equal((await planLaunch(base, { nodes: 2, slurm: true })).topology.worldSize, 2);

    const batch = await torchExperiment(tmp.dir, { n: 300, train: PAPER, extra: EIGHT_GPUS, model: LONG_MODEL });
    await assert.rejects(planLaunch(batch, { gpusPerNode: 4 }), (err: unknown) => {
      configError("XA_LAUNCH_BATCH", /stages\[0\]\.train\.grad_accum/)(err);
      assert.match((err as Error).message, /= 64, but launch\.effective_batch is 128 \(set grad_accum to 8 for 4 GPUs\)/);
      return true;
    });
    const fsdp = await torchExperiment(tmp.dir, { extra: "launch:\n  fsdp: full_shard auto_wrapp" });
    await assert.rejects(planLaunch(fsdp), configError("XA_LAUNCH_FSDP", /auto_wrapp/));
    const lm = await torchExperiment(tmp.dir, { stage: "    objective: causal-lm" });
    await assert.rejects(planLaunch(lm), configError("XA_LAUNCH_OBJECTIVE", /stages\[0\]\.objective/));
    const lora = await torchExperiment(tmp.dir, { train: "epochs: 1\n      lora: { rank: 4 }" });
    await assert.rejects(planLaunch(lora), configError("XA_LAUNCH_LORA", /stages\[0\]\.train\.lora/));
    const long = await torchExperiment(tmp.dir, { train: "epochs: 1\n      max_length: 512" });
    await assert.rejects(planLaunch(long), configError("XA_LAUNCH_LENGTH", /128 positions/));
    const warm = await torchExperiment(tmp.dir, { n: 8, train: "epochs: 1\n      batch_size: 8\n      warmup_steps: 5" });
    await assert.rejects(planLaunch(warm), configError("XA_LAUNCH_WARMUP"));
    const missing = { ...base, config: { ...base.config, stages: [{ ...base.config.stages[0]!, data: ["data.json", "nope.json"] }] } };
    await assert.rejects(planLaunch(missing), configError("XA_LAUNCH_DATA", /stages\[0\]\.data\[1\].*nope\.json/));
    await assert.rejects(prepareLaunch(base, { modelDir: join(tmp.dir, "no-model") }), configError("XA_LAUNCH_MODEL", /config\.json/));
  } finally {
    await tmp.cleanup();
  }
});

test("xalign launch --dry-run prints the plan; bad flags are ConfigErrors", async () => {
  const { run } = await import("../../src/cli/launch.js");
  const printed: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => printed.push(args.join(" "));
  try {
    assert.equal(await run([join(repoRoot(), "examples", "paper-7b.yaml"), "--dry-run", "--json"]), 0);
  } finally {
    console.log = log;
  }
  const summary = JSON.parse(printed.join("\n"));
  assert.equal(summary.format, "xalign-launch-plan/1");
  assert.equal(summary.stages[0].effective_batch, 128);
  await assert.rejects(
    run([join(repoRoot(), "examples", "paper-7b.yaml"), "--dry-run", "--nodes", "two"]),
    configError("XA_CLI_ARGS", /--nodes/),
  );
  await assert.rejects(run([join(repoRoot(), "examples", "paper-7b.yaml"), "--gpus"]), configError("XA_CLI_ARGS"));
});

test("the launch: block is strict: an unknown key is a ConfigError with its line", async () => {
  const tmp = await tempDir();
  try {
    await assert.rejects(torchExperiment(tmp.dir, { extra: "launch:\n  gpus: 8" }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, "XA_CONFIG_INVALID");
      assert.match(err.message, /launch.*unknown key "gpus"/);
      assert.ok(err.line !== undefined);
      return true;
    });
  } finally {
    await tmp.cleanup();
  }
});
