import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { greedyComplete } from "../../src/study/complete.js";
import { studySettings } from "../../src/study/settings.js";
import { Study } from "../../src/study/study.js";
import { findTorchPython, torchEngineWanted } from "../../src/train/torch-engine.js";
import { tempDir } from "../helpers.js";

const found = findTorchPython();
const skip = found.python ? false : `skipped: ${found.missing}`;
if (skip) process.stderr.write(`torch-study.test: ${skip}\n`);

describe("the study on the torch engine", () => {
  it("full mode asks for the torch engine when CUDA is there; quick and smoke stay on TF.js", () => {
    assert.equal(studySettings("full").engine, "auto");
    assert.equal(studySettings("quick").engine, undefined);
    assert.equal(studySettings("smoke").engine, undefined);
    assert.equal(torchEngineWanted("tfjs"), false);
    assert.equal(torchEngineWanted("torch"), true);
    assert.equal(torchEngineWanted("auto"), found.probe?.cuda === true);
  });

  describe("smoke size end to end on CPU torch", { skip }, () => {
    let cleanup: (() => Promise<void>) | undefined;
    after(async () => {
      await cleanup?.();
    });

    it("pretrains the base (canon, isolated documents) and tunes an arm through torch, then evaluates", async () => {
      const t = await tempDir();
      cleanup = t.cleanup;
      const study = await Study.prepare(studySettings("smoke", { engine: "torch", backend: "cpu" }), () => {}, {
        cacheDir: join(t.dir, "cache"),
      });
      assert.ok(existsSync(join(study.baseDir, "pretrain", "metrics.jsonl")), "the torch runner wrote the pretraining metrics");
      const base = await study.loadBase();
      assert.equal(base.config.canon_width, 4);
      // Evaluation generation runs through the torch runner and writes what TF.js greedy decoding writes.
      const prompts = ["The job of", "Where does", "What is the age of the", "Who likes"];
      const viaTorch = await study.complete(base, prompts, 6);
      const viaTfjs = await greedyComplete(base, study.tokenizer, prompts, { maxNewTokens: 6, batchSize: 4 });
      assert.deepEqual(viaTorch, viaTfjs);
      assert.ok(
        viaTorch.some((t) => t.length > 0),
        "something was generated",
      );
      await study.release(base);
      const arm = await study.runArm({
        label: "x-llama",
        seed: 0,
        examples: [...(await study.alpaca("en", 8)), ...(await study.translationExamples("vi", 8))],
        outDir: join(t.dir, "arm"),
        qaLanguages: ["vi"],
        translationLanguages: ["vi"],
        progress: false,
      });
      assert.ok(arm.steps > 0 && Number.isFinite(arm.finalLoss));
      assert.equal(arm.qa.vi?.count, studySettings("smoke").eval.qaPerLanguage);
      assert.ok(Number.isFinite(arm.translation.vi?.chrf));
    });
  });
});
