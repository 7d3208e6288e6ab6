import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../../src/cli/eval.js";
import { DataError } from "../../src/util/errors.js";
import { tempDir } from "../helpers.js";

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    return { code: await fn(), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

test("xalign eval text prints sacreBLEU lines (values checked against sacrebleu 2.6.0's CLI)", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const hyp = join(dir, "hyp.txt");
    const ref = join(dir, "ref.txt");
    await writeFile(hyp, "The cat sat on the mat.\nHello there!\n");
    await writeFile(ref, "The cat is on the mat.\nHello there!\n");
    const r = await capture(() => run(["text", "--hyp", hyp, "--ref", ref, "--metrics", "bleu,chrf", "--width", "1"]));
    assert.equal(r.code, 0);
    assert.equal(
      r.out,
      "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 53.9 90.0/75.0/50.0/25.0 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)\n" +
        "chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 78.8",
    );
    await writeFile(ref, "only one line\n");
    await assert.rejects(
      run(["text", "--hyp", hyp, "--ref", ref]),
      (e: unknown) => e instanceof DataError && e.code === "XA_EVAL_LINE_COUNT",
    );
  } finally {
    await cleanup();
  }
});

test("xalign eval predictions prints a per-language table", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = join(dir, "predictions.jsonl");
    await writeFile(
      file,
      `${JSON.stringify({ id: "1", prompt: "", reference: "Paris", prediction: "It is Paris", lang: "tr" })}\n${JSON.stringify({ id: "2", prompt: "", reference: "北京", prediction: "北京大学", lang: "zh" })}\n`,
    );
    const r = await capture(() => run(["predictions", file, "--metrics", "contains,f1"]));
    assert.equal(r.code, 0);
    assert.match(r.out, /^tr\s+100\.00\s+50\.00$/m);
    assert.match(r.out, /^zh\s+100\.00\s+66\.67$/m);
    assert.match(r.out, /^avg\s+100\.00\s+58\.33$/m);
  } finally {
    await cleanup();
  }
});
