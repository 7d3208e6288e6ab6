/**
 * The two engines see the same training sequences: python/xalign_train.py's
 * encode_example against src/data/encode.ts's encodeExample, token ids and
 * label masks, for the same records — (a) with a character tokenizer written
 * identically on both sides (any python3), (b) with a real tokenizer.json
 * through both `tokenizers` bindings (when the Python package is importable).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { parseExperiment } from "../../src/config/load.js";
import { encodeExample } from "../../src/data/encode.js";
import type { PromptFormat } from "../../src/data/prompt.js";
import { prepareLaunch } from "../../src/launch/index.js";
import { loadTokenizer } from "../../src/tokenizer/index.js";
import { trainingTokenizer } from "../../src/train/experiment.js";
import { encodeExamples } from "../../src/train/sequences.js";
import { fixture, repoRoot, tempDir } from "../helpers.js";
import { charTokenizer } from "./char-tokenizer.js";
import { findPython } from "./python.js";

const RECORDS = [
  { instruction: "Translate the following sentences from English to Chinese.", input: "Good morning.", output: "早上好。" },
  { instruction: "Name two primary colors.", input: "", output: "Red and blue." },
  { instruction: "Keep {input} and $& literal.", input: "a {instruction} b $1", output: "ok $& {input}" },
  { instruction: "Emoji and combining marks", input: "👋🏽 e\u0301", output: "🎉 done\n\ttabs" },
  { instruction: "  spaces kept  ", input: " padded input \n", output: " leading space " },
  { instruction: "Long answer", input: "x", output: "word ".repeat(200) },
  { instruction: "A prompt longer than max_length ".repeat(20), input: "", output: "never seen" },
];

interface Encoded {
  input_ids: number[];
  labels: number[];
  attention_mask: number[];
  prompt_length: number;
  supervised_tokens: number;
  truncated: boolean;
}

function compare(python: Encoded[], ts: ReturnType<typeof encodeExample>[], what: string): void {
  assert.equal(python.length, ts.length, `${what}: record count`);
  python.forEach((p, i) => {
    const t = ts[i]!;
    assert.deepEqual(p.input_ids, t.inputIds, `${what}: input ids of record ${i}`);
    assert.deepEqual(p.labels, t.labels, `${what}: labels of record ${i}`);
    assert.deepEqual(p.attention_mask, t.attentionMask, `${what}: attention mask of record ${i}`);
    assert.equal(p.prompt_length, t.promptLength, `${what}: prompt length of record ${i}`);
    assert.equal(p.supervised_tokens, t.supervisedTokens, `${what}: supervised tokens of record ${i}`);
    assert.equal(p.truncated, t.truncated, `${what}: truncated flag of record ${i}`);
  });
}

const parseJsonl = (text: string): Encoded[] =>
  text
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Encoded);

test("char tokenizer: Python encode_example = encodeExample (ids, labels, masks, truncation), both formats", async (t) => {
  const { python, missing } = findPython([]);
  if (!python) return t.skip(`skipped: ${missing}`);
  const tmp = await tempDir();
  try {
    const recordsFile = join(tmp.dir, "records.json");
    await writeFile(recordsFile, JSON.stringify(RECORDS));
    const script = join(repoRoot(), "python", "tests", "encode_with_char_tokenizer.py");
    const cases: [PromptFormat, number][] = [
      ["alpaca", 512],
      ["alpaca", 40],
      ["chat", 512],
      ["chat", 2],
    ];
    const r = spawnSync(python, [script, recordsFile, ...cases.map(([f, n]) => `${f}:${n}`)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const byCase = JSON.parse(r.stdout) as Record<string, Encoded[]>;
    for (const [format, maxLength] of cases) {
      const ts = RECORDS.map((rec) => encodeExample(rec, charTokenizer, { maxLength, format }));
      compare(byCase[`${format}:${maxLength}`] ?? [], ts, `${format}/${maxLength}`);
      if (maxLength === 512) {
        assert.ok(ts.some((e) => e.truncated) && ts.some((e) => !e.truncated), "the records cover truncated and whole sequences");
        assert.ok(
          ts.some((e) => e.truncated && e.supervisedTokens === 0),
          "and a prompt that fills max_length",
        );
      }
    }
  } finally {
    await tmp.cleanup();
  }
});

test("real tokenizer.json: xalign_train.py --dump-encoded = encodeExamples on a prepared launch", async (t) => {
  const { python, missing } = findPython(["tokenizers"]);
  if (!python)
    return t.skip(
      `skipped: the Python side cannot be compared with a real tokenizer here: ${missing}; pip install -r python/requirements.txt`,
    );
  const tmp = await tempDir();
  try {
    const data = join(tmp.dir, "data.json");
    await writeFile(data, JSON.stringify(RECORDS));
    const yaml = `name: parity\nengine: torch-fsdp\noutput: ${tmp.dir}/runs\ntokenizer:\n  path: ${fixture("spm-bpe", "tokenizer.model")}\nmodel:\n  hidden_size: 16\n  intermediate_size: 32\n  num_hidden_layers: 1\n  num_attention_heads: 2\n  max_position_embeddings: 128\nstages:\n  - name: sft\n    data: [${data}]\n    validation_ratio: 0\n    train: { epochs: 1, batch_size: 1, max_length: 64 }\n`;
    const exp = { config: parseExperiment(yaml), file: join(tmp.dir, "exp.yaml"), baseDir: tmp.dir };
    const { plan } = await prepareLaunch(exp);
    const stage = plan.stages[0]!;
    const out = join(tmp.dir, "encoded.jsonl");
    const r = spawnSync(python, [join(repoRoot(), "python", "xalign_train.py"), "--config", stage.configFile, "--dump-encoded", out], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const tokenizer = trainingTokenizer(await loadTokenizer(fixture("spm-bpe", "tokenizer.model")));
    const ts = await encodeExamples(RECORDS, tokenizer, { maxLength: 64 });
    compare(parseJsonl(await readFile(out, "utf8")), ts, "spm-bpe tokenizer.json");
  } finally {
    await tmp.cleanup();
  }
});
