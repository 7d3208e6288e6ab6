/**
 * Generated launch plans and commands: the paper preset reproduces the
 * study's recipe in the runner's job (python/xalign_torch.py), DDP or FSDP
 * is chosen by the memory estimate or launch.parallel, the
 * examples/paper-7b.yaml dry run is complete (FSDP for LLaMA-7B), commands
 * for one node, several nodes and Slurm are exact, the validation split and
 * batch seed are the tfjs engine's, and every bad input is a ConfigError
 * naming its field.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { loadExperiment } from "../../src/config/load.js";
import { MODEL_PRESETS } from "../../src/config/presets.js";
import {
  allCommands,
  describeLaunch,
  entryPoint,
  estimateMemory,
  launchScript,
  parameterCount,
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

test("the paper preset gives the study's recipe in the runner's job; a tiny model trains under DDP", async () => {
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
    const job = stage.job;
    const t = job.train as Record<string, unknown>;
    assert.equal(plan.topology.worldSize, 8);
    assert.equal(stage.microBatch, 32, "4 per GPU x 8 GPUs rows per micro-batch");
    assert.equal(stage.effectiveBatch, 128);
    assert.equal(t.grad_accum, 4);
    assert.equal(t.lr, 2e-5);
    assert.equal(t.schedule, "cosine");
    assert.equal(t.weight_decay, 0);
    assert.equal(t.clip_norm, 1);
    assert.equal(job.precision, "bf16");
    assert.equal(job.tf32, true);
    assert.equal(job.format, "xalign-torch-job/1");
    assert.equal(job.final_on_interrupt, false);
    // 300 examples -> 9 micro-batches of 32 per epoch (the tfjs engine's whole batches); 3 epochs x 9 / 4 -> 7 steps.
    assert.equal(stage.microBatchesPerEpoch, 9);
    assert.equal(stage.totalSteps, 7);
    assert.equal(t.total_steps, 7);
    assert.equal(stage.warmupSteps, 1, "ceil(0.03 x 7)");
    assert.equal(job.train.warmup_steps, 1);
    assert.equal(stage.trainConfig.max_length, 512);
    assert.equal(stage.promptFormat, "alpaca");
    // A 32-wide model fits any GPU: DDP, by the estimate.
    assert.equal(stage.parallel.mode, "ddp");
    assert.equal(job.parallel, "ddp");
    assert.equal(job.fsdp, undefined);
    assert.match(stage.parallel.reason, /fits one GPU/);
    // Tokenizer ids come from xalign's tokenizer so both engines agree; from scratch: TypeScript's initial weights.
    assert.deepEqual(plan.tokenizer.ids, { bos_id: 1, eos_id: 2, pad_id: plan.tokenizer.ids?.pad_id });
    assert.equal((job.model_config as { hidden_size: number }).hidden_size, 32);
    assert.equal(job.init_weights, join(plan.launchDir, "init.safetensors"));
    assert.equal(job.init_from, undefined);
    assert.equal(job.batches, join(plan.launchDir, "sft.batches.bin"));
  } finally {
    await tmp.cleanup();
  }
});

test('DDP or FSDP: the memory estimate decides under auto; launch.parallel, --parallel and fsdp: "" override it', async () => {
  // LLaMA-7B: 6.74B parameters; 16 bytes each for weights, gradients and AdamW's moments alone exceed an 80 GB GPU.
  const shape = MODEL_PRESETS["llama-7b"];
  assert.equal(parameterCount(shape).total, 6_738_415_616, "LLaMA-7B's parameter count");
  const big = estimateMemory(shape, { batchSize: 4, maxLength: 512, worldSize: 8, bf16: true, gpuGiB: 80 });
  assert.ok(!big.fitsDdp && big.ddpGiB > 120, `DDP ~${big.ddpGiB} GiB`);
  assert.ok(big.fitsFsdp && big.fsdpGiB < 40, `FSDP over 8 ~${big.fsdpGiB} GiB`);
  const small = estimateMemory(MODEL_PRESETS["small-gpu"], { batchSize: 32, maxLength: 256, worldSize: 1, bf16: false, gpuGiB: 80 });
  assert.ok(small.fitsDdp, `a 512-wide model fits: ${small.ddpGiB} GiB`);
  const checkpointed = estimateMemory(shape, {
    batchSize: 4,
    maxLength: 512,
    worldSize: 8,
    bf16: true,
    gpuGiB: 80,
    gradientCheckpointing: true,
  });
  assert.ok(checkpointed.activationGiB < big.activationGiB / 4, "gradient checkpointing keeps far fewer activations");

  const tmp = await tempDir();
  try {
    const tiny = await torchExperiment(tmp.dir, { n: 64 });
    assert.equal((await planLaunch(tiny)).stages[0]!.parallel.mode, "ddp");
    const forced = await planLaunch(tiny, { parallel: "fsdp", gpusPerNode: 2 });
    assert.equal(forced.stages[0]!.parallel.mode, "fsdp");
    assert.deepEqual(forced.stages[0]!.job.fsdp, { sharding: "full_shard" });
    assert.match(forced.stages[0]!.parallel.reason, /launch\.parallel/);
    // A GPU too small for the tiny model under DDP: auto picks FSDP and says why.
    const cramped = await planLaunch(tiny, { gpuMemoryGiB: 1 });
    assert.equal(cramped.stages[0]!.parallel.mode, "fsdp");
    assert.match(cramped.stages[0]!.parallel.reason, /does not fit one GPU under DDP/);
    assert.ok(
      cramped.warnings.some((w) => /FSDP over 1 GPU/.test(w)),
      "and warns that FSDP does not fit either",
    );
    const grad = await torchExperiment(tmp.dir, { n: 64, extra: 'launch:\n  fsdp: "shard_grad_op auto_wrap"\n  parallel: fsdp' });
    assert.deepEqual((await planLaunch(grad)).stages[0]!.job.fsdp, { sharding: "shard_grad_op" });
    const noFsdp = await torchExperiment(tmp.dir, { n: 64, extra: 'launch:\n  fsdp: ""' });
    const plain = await planLaunch(noFsdp, { gpuMemoryGiB: 1 });
    assert.equal(plain.stages[0]!.parallel.mode, "ddp", 'fsdp: "" keeps DDP');
    assert.ok(
      plain.warnings.some((w) => /DDP needs/.test(w)),
      "with a warning when the estimate does not fit",
    );
  } finally {
    await tmp.cleanup();
  }
});

test("other train settings reach the runner's job (max_steps, warmup_steps, eval, save, schedule)", async () => {
  const tmp = await tempDir();
  try {
    const train =
      "max_steps: 10\n      warmup_steps: 2\n      schedule: constant\n      eval_every: 5\n      eval_batches: 3\n      save_every: 4\n      keep_last: 3\n      early_stopping_patience: 2\n      batch_size: 2\n      max_length: 64";
    const plan = await planLaunch(await torchExperiment(tmp.dir, { n: 100, train, stage: "    validation_ratio: 0.2" }));
    const s = plan.stages[0]!;
    const t = s.job.train as Record<string, unknown>;
    assert.equal(t.total_steps, 10);
    assert.equal(t.warmup_steps, 2);
    assert.equal(t.schedule, "constant");
    assert.equal(t.eval_every, 5);
    assert.equal(t.eval_batches, 3);
    assert.equal(t.save_every, 4);
    assert.equal(t.keep_last, 3);
    assert.equal(t.clip_norm, null, "no clip_norm: no clipping, as the tfjs trainer");
    assert.equal(t.early_stopping_patience, 2);
    assert.equal(s.totalSteps, 10);
    assert.ok(s.validation.length > 0 && s.validationFile !== undefined);
    assert.equal(s.job.validation, s.validationFile);
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
    assert.equal(plan.stages[0]!.seed, seed, "and the batch seed");
    assert.equal(plan.stages[0]!.job.seed, seed);
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
  const stage = plan.stages[0]!;
  assert.equal(stage.parallel.mode, "fsdp", "LLaMA-7B does not fit one 80 GB GPU under DDP");
  assert.deepEqual(stage.job.fsdp, { sharding: "full_shard" });
  assert.equal(stage.job.init_from, "/nonexistent/llama-7b-hf");
  assert.equal(stage.job.model_config, null, "the model's config is read from init_from when the job runs");
  assert.equal(stage.job.precision, "bf16");
  assert.ok(stage.parallel.memory.parameters > 6.7e9);
  const text = describeLaunch(plan);
  for (const needle of [
    "1 node(s) x 8 GPU(s) = world size 8",
    "4 per GPU x 4 accumulation x 8 GPUs = 128 examples per step",
    `torchrun --standalone --nproc_per_node=8 ${entryPoint()} --job ${stage.jobFile}`,
    "FSDP (full_shard, one unit per decoder layer): the model does not fit one GPU under DDP: 6.74B parameters",
    '"parallel": "fsdp"',
    '"lr": 0.00002',
    "#SBATCH --gpus-per-node=8",
    "not on this machine",
  ]) {
    assert.ok(text.includes(needle), `dry run lacks: ${needle}`);
  }
  for (const f of plannedFiles(plan)) assert.ok(text.includes(f), `dry run lists ${f}`);
  assert.ok(entryPoint().endsWith(join("python", "xalign_torch.py")), "the one Python trainer");
});

test("commands: single node, each node of a multi-node job, launch.sh and Slurm", async () => {
  const tmp = await tempDir();
  try {
    const exp = await torchExperiment(tmp.dir, { n: 200 });
    const single = await planLaunch(exp, { gpusPerNode: 4 });
    assert.deepEqual(torchrunCommand(single, single.stages[0]!), [
      "torchrun",
      "--standalone",
      "--nproc_per_node=4",
      entryPoint(),
      "--job",
      single.stages[0]!.jobFile,
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
    assert.match(slurm, /xalign_torch\.py --job \S+\/launch\/sft\.json/);
    assert.equal(spawnSync("bash", ["-n"], { input: slurm }).status, 0, "slurm script parses");
    assert.equal(shellQuote("it's a path"), `'it'\\''s a path'`);
  } finally {
    await tmp.cleanup();
  }
});

test("prepareLaunch writes the tokenizer, initial weights, batches, the runner's job and the scripts", async () => {
  const tmp = await tempDir();
  try {
    const train = "epochs: 2\n      batch_size: 2\n      grad_accum: 2\n      max_length: 256\n      lr: 0.001\n      eval_every: 2";
    const exp = await torchExperiment(tmp.dir, { n: 50, train, stage: "    validation_ratio: 0.1", model: LONG_MODEL });
    const { plan, files } = await prepareLaunch(exp);
    const stage = plan.stages[0]!;
    for (const f of files) assert.ok((await stat(f)).isFile(), `${f} written`);
    for (const f of [stage.batchesFile, stage.validationFile!, stage.initWeightsFile!, stage.jobFile]) assert.ok(files.includes(f), f);
    const job = JSON.parse(await readFile(stage.jobFile, "utf8"));
    assert.equal(job.format, "xalign-torch-job/1");
    assert.equal(job.tokenizer_dir, join(plan.runDir, "tokenizer"));
    assert.ok((await stat(join(job.tokenizer_dir, "tokenizer.json"))).isFile());
    assert.equal(job.model_config.vocab_size > 0, true);
    assert.equal(job.batches, stage.batchesFile);
    assert.equal(job.train.total_steps, stage.totalSteps);
    const head = (await readFile(stage.batchesFile)).subarray(0, 8).toString("latin1");
    assert.equal(head, "XALIGNB1", "an xalign-batches/1 file");
    const script = join(plan.launchDir, "launch.sh");
    assert.ok(((await stat(script)).mode & 0o111) !== 0, "launch.sh is executable");
    const summary = JSON.parse(await readFile(join(plan.launchDir, "plan.json"), "utf8"));
    assert.equal(summary.stages[0].total_steps, stage.totalSteps);
    assert.equal(summary.stages[0].parallel, "ddp");
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
    const offload = await torchExperiment(tmp.dir, { extra: "launch:\n  fsdp: full_shard offload" });
    await assert.rejects(planLaunch(offload), configError("XA_LAUNCH_FSDP", /"offload" is not supported by xalign's runner/));
    const both = await torchExperiment(tmp.dir, { extra: "launch:\n  fsdp: full_shard shard_grad_op" });
    await assert.rejects(planLaunch(both), configError("XA_LAUNCH_FSDP", /two sharding strategies/));
    await assert.rejects(
      torchExperiment(tmp.dir, { extra: "launch:\n  parallel: zero3" }),
      (err: unknown) => err instanceof ConfigError && /parallel/.test(err.message),
    );
    const few = await torchExperiment(tmp.dir, { n: 5, train: "epochs: 1\n      batch_size: 4" });
    await assert.rejects(
      planLaunch(few, { gpusPerNode: 2 }),
      configError("XA_LAUNCH_BATCH", /fewer than one micro-batch of 4 per GPU x 2 GPUs/),
    );
    const lm = await torchExperiment(tmp.dir, { stage: "    objective: causal-lm" });
    await assert.rejects(planLaunch(lm), configError("XA_LAUNCH_OBJECTIVE", /stages\[0\]\.objective/));
    const lora = await torchExperiment(tmp.dir, { train: "epochs: 1\n      lora: { rank: 4 }" });
    await assert.rejects(planLaunch(lora), configError("XA_LAUNCH_LORA", /stages\[0\]\.train\.lora/));
    const long = await torchExperiment(tmp.dir, { train: "epochs: 1\n      max_length: 512" });
    await assert.rejects(planLaunch(long), configError("XA_LAUNCH_LENGTH", /128 positions/));
    const warm = await torchExperiment(tmp.dir, {
      n: 8,
      stage: "    validation_ratio: 0",
      train: "epochs: 1\n      batch_size: 8\n      warmup_steps: 5",
    });
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
  assert.equal(summary.format, "xalign-launch-plan/2");
  assert.equal(summary.stages[0].effective_batch, 128);
  await assert.rejects(
    run([join(repoRoot(), "examples", "paper-7b.yaml"), "--dry-run", "--nodes", "two"]),
    configError("XA_CLI_ARGS", /--nodes/),
  );
  await assert.rejects(run([join(repoRoot(), "examples", "paper-7b.yaml"), "--gpus"]), configError("XA_CLI_ARGS"));
  await assert.rejects(
    run([join(repoRoot(), "examples", "paper-7b.yaml"), "--dry-run", "--parallel", "zero"]),
    configError("XA_CLI_ARGS", /--parallel/),
  );
  printed.length = 0;
  console.log = (...args: unknown[]) => printed.push(args.join(" "));
  try {
    const args = [join(repoRoot(), "examples", "paper-7b.yaml"), "--dry-run", "--json", "--parallel", "ddp", "--gpu-memory", "141"];
    assert.equal(await run(args), 0);
  } finally {
    console.log = log;
  }
  const ddp = JSON.parse(printed.join("\n"));
  assert.equal(ddp.stages[0].parallel, "ddp", "--parallel ddp overrides the estimate");
  assert.equal(ddp.settings.gpu_memory_gib, 141);
  assert.ok(
    ddp.warnings.some((w: string) => /DDP needs ~\d+ GiB per GPU/.test(w)),
    "and warns",
  );
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
