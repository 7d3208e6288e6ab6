import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseExperiment } from "../../src/config/index.js";
import { ConfigError } from "../../src/util/errors.js";

const base = `name: t
tokenizer:
  train_on: [corpus.txt]
model:
  preset: tiny-cpu
stages:
  - name: pretrain
    objective: causal-lm
    data: [corpus.txt]
    train:
      max_steps: 10
      batch_size: 4
`;

function errorOf(text: string): ConfigError {
  try {
    parseExperiment(text, "exp.yaml");
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected the experiment to be rejected");
}

describe("experiment config", () => {
  it("accepts a valid file and fills defaults", () => {
    const c = parseExperiment(base);
    assert.equal(c.stages[0]!.train.lr, 1e-3);
    assert.equal(c.stages[0]!.train.schedule, "cosine");
    assert.equal(c.backend, "auto");
  });

  it("expands the paper preset with the study's settings", () => {
    const c = parseExperiment(base.replace("      max_steps: 10\n      batch_size: 4\n", "      preset: paper\n"));
    const t = c.stages[0]!.train;
    assert.deepEqual(
      [t.lr, t.epochs, t.schedule, t.warmup_ratio, t.weight_decay, t.batch_size * t.grad_accum * 8, t.max_length],
      [2e-5, 3, "cosine", 0.03, 0, 128, 512],
    );
  });

  it("rejects an unknown key, naming it, its field and line", () => {
    const e = errorOf(base.replace("      batch_size: 4", "      batch_size: 4\n      bacth: 3"));
    assert.match(e.message, /unknown key "bacth"/);
    assert.equal(e.field, "stages[0].train");
    assert.equal(e.line, 13);
    assert.equal(e.file, "exp.yaml");
  });

  it("rejects a wrong type", () => {
    const e = errorOf(base.replace("batch_size: 4", 'batch_size: "four"'));
    assert.equal(e.field, "stages[0].train.batch_size");
    assert.equal(e.line, 12);
  });

  it("rejects batch 0", () => {
    const e = errorOf(base.replace("batch_size: 4", "batch_size: 0"));
    assert.equal(e.field, "stages[0].train.batch_size");
  });

  it("rejects warmup longer than training", () => {
    const e = errorOf(base.replace("batch_size: 4", "batch_size: 4\n      warmup_steps: 20"));
    assert.match(e.message, /warmup \(20 steps\) is longer than training \(10 steps\)/);
  });

  it("rejects a LoRA target that does not exist", () => {
    const e = errorOf(base.replace("batch_size: 4", "batch_size: 4\n      lora:\n        targets: [q_proj, qkv]"));
    assert.equal(e.field, "stages[0].train.lora.targets[1]");
    assert.match(e.message, /q_proj, k_proj/);
  });

  it("rejects an experiment or stage name that would leave the output folder", () => {
    for (const name of ["../../victim", "a/b", "..", "."]) {
      const e = errorOf(base.replace("name: t", `name: "${name}"`));
      assert.equal(e.field, "name", name);
      assert.match(e.message, /no path separators/);
    }
    assert.equal(errorOf(base.replace("- name: pretrain", "- name: ..")).field, "stages[0].name");
  });

  it("rejects an unknown preset and invalid YAML", () => {
    assert.match(errorOf(base.replace("max_steps: 10", "preset: huge")).message, /unknown train preset "huge"/);
    assert.equal(errorOf("name: [unclosed\n").code, "XA_CONFIG_YAML");
  });

  it("names file, line and column of a YAML syntax error", () => {
    const e = errorOf(base.replace("    objective: causal-lm\n", "    objective: causal-lm\n   bad: [1, 2\n"));
    assert.equal(e.code, "XA_CONFIG_YAML");
    assert.equal(e.file, "exp.yaml");
    assert.equal(typeof e.line, "number");
    assert.equal(typeof e.column, "number");
    assert.match(e.message, /^exp\.yaml, line \d+, column \d+: invalid YAML/);
    const tab = errorOf("name: t\nstages:\n\t- name: x\n");
    assert.deepEqual([tab.line, tab.column], [3, 1]);
  });
});
