/**
 * python/tests (unittest) with an interpreter that can import torch: the
 * runner's DDP/FSDP choice and FSDP's construction arguments, Hugging Face
 * folder loading, gradient checkpointing, gathering by name, the torchrun
 * shim. Skips with the reason where no Python has torch.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { findTorchPython } from "../../src/train/torch-engine.js";
import { repoRoot } from "../helpers.js";

const found = findTorchPython();

test("python/tests: the runner's unit tests pass", { skip: found.python ? false : `skipped: ${found.missing}`, timeout: 300_000 }, () => {
  const r = spawnSync(found.python as string, ["-m", "unittest", "discover", "-s", join(repoRoot(), "python", "tests"), "-v"], {
    encoding: "utf8",
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: "1" },
  });
  const out = `${r.stdout}${r.stderr}`;
  for (const line of out.split("\n").filter((l) => / \.\.\. (ok|skipped|FAIL|ERROR)/.test(l)))
    process.stderr.write(`runner.test: ${line}\n`);
  assert.equal(r.status, 0, out);
  assert.match(out, /^OK/m);
});
