import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFile, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../src/engine/index.js";
import {
  floatBitsToBf16,
  type LlamaConfig,
  LlamaModel,
  loadCheckpoint,
  readSafetensors,
  SafetensorsReader,
  saveCheckpoint,
  WEIGHTS_INDEX_FILE,
  writeConfig,
  writeSafetensors,
} from "../../src/model/index.js";
import { CheckpointError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";
import { fixture, tempDir } from "../helpers.js";

await initEngine({ backend: "cpu" });

const cfg: LlamaConfig = {
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 40,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 32,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: null,
};

const input = () => tf.tensor2d([[1, 5, 9, 3, 7]], [1, 5], "int32");

function logitsOf(model: LlamaModel): Float32Array {
  return tf.tidy(() => model.forward(input()).dataSync() as Float32Array);
}

async function expectCheckpointError(promise: Promise<unknown>, code: string, file: RegExp, tensor?: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `a CheckpointError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.file ?? "", file);
    if (tensor !== undefined) assert.equal(e.field, tensor);
    assert.ok(e.message.includes(e.file ?? "?"), "the message names the file");
    return true;
  });
}

describe("safetensors", () => {
  it("reads F32, F16, BF16 and integer tensors and writes them back", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const path = join(dir, "t.safetensors");
      const values = new Float32Array([1.5, -2.25, 3.140625, 0, 65504, 1e-3]);
      await writeSafetensors(path, {
        f32: { dtype: "F32", shape: [2, 3], data: values },
        bf16: { dtype: "BF16", shape: [6], data: values },
        f16: { dtype: "F16", shape: [6], data: values },
        i64: { dtype: "I64", shape: [3], data: new Int32Array([-1, 7, 2147483647]) },
      });
      const back = await readSafetensors(path);
      assert.deepEqual(back.f32!.data, values);
      assert.deepEqual(back.f32!.shape, [2, 3]);
      assert.deepEqual(back.i64!.data, new Int32Array([-1, 7, 2147483647]));
      for (const name of ["bf16", "f16"]) {
        const got = back[name]!.data;
        for (let i = 0; i < values.length; i++)
          assert.ok(Math.abs((got[i] as number) - (values[i] as number)) <= Math.abs(values[i] as number) / 128 + 1e-6, `${name}[${i}]`);
      }
      assert.deepEqual(Array.from(back.f16!.data.slice(0, 4)), [1.5, -2.25, 3.140625, 0]);
      assert.equal(floatBitsToBf16(0x3f808000), 0x3f80); // ties to even
      assert.equal(floatBitsToBf16(0x3f818000), 0x3f82);
      const header = (await readFile(path)).readBigUInt64LE(0);
      assert.equal(Number(header) % 8, 0, "header padded to 8 bytes");
    } finally {
      await cleanup();
    }
  });

  it("names the file and tensor for truncated files, bad header lengths and unknown dtypes", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const good = join(dir, "good.safetensors");
      await writeSafetensors(good, {
        a: { dtype: "F32", shape: [4], data: new Float32Array(4) },
        b: { dtype: "F32", shape: [8], data: new Float32Array(8) },
      });
      const bytes = await readFile(good);
      const truncated = join(dir, "truncated.safetensors");
      await writeFile(truncated, bytes.subarray(0, bytes.length - 4));
      await expectCheckpointError(SafetensorsReader.open(truncated), "XA_CKPT_TRUNCATED", /truncated/, "b");
      const tiny = join(dir, "tiny.safetensors");
      await writeFile(tiny, bytes.subarray(0, 5));
      await expectCheckpointError(SafetensorsReader.open(tiny), "XA_CKPT_TRUNCATED", /tiny/);
      const longHeader = join(dir, "long.safetensors");
      const copy = Buffer.from(bytes);
      copy.writeBigUInt64LE(BigInt(bytes.length), 0);
      await writeFile(longHeader, copy);
      await expectCheckpointError(SafetensorsReader.open(longHeader), "XA_CKPT_HEADER_LENGTH", /long/);
      const unknown = join(dir, "dtype.safetensors");
      await writeFile(unknown, Buffer.from(bytes.toString("latin1").replace('"dtype":"F32"', '"dtype":"Q4X"'), "latin1"));
      await expectCheckpointError(SafetensorsReader.open(unknown), "XA_CKPT_DTYPE", /dtype/, "a");
      await expectCheckpointError(SafetensorsReader.open(join(dir, "none.safetensors")), "XA_CKPT_MISSING_FILE", /none/);
    } finally {
      await cleanup();
    }
  });
});

describe("checkpoints", () => {
  it("loadCheckpoint in a fresh process, before initEngine, starts the default engine instead of failing", () => {
    // In-process the engine is already up (other tests), so this runs in a child that imports the package entry.
    const self = fileURLToPath(import.meta.url);
    const ts = self.endsWith(".ts");
    const entry = join(self, "..", "..", "..", "src", `index.${ts ? "ts" : "js"}`);
    const script = `const { loadCheckpoint, tf } = await import(${JSON.stringify(entry)});
const m = await loadCheckpoint(${JSON.stringify(fixture("tiny-llama"))});
process.stdout.write("loaded " + m.numParameters() + " on " + tf.getBackend() + "\\n");`;
    const child = spawnSync(process.execPath, [...(ts ? ["--import", "tsx"] : []), "--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(child.status, 0, child.stderr);
    assert.match(child.stdout, /loaded \d+ on \w+/);
  });

  it("saves a Hugging Face folder that reloads to identical logits", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const model = LlamaModel.init(cfg, new Rng(1), { initializerRange: 0.2 });
      await saveCheckpoint(model, dir);
      assert.deepEqual((await readdir(dir)).sort(), ["config.json", "generation_config.json", "model.safetensors"]);
      const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
      assert.deepEqual(config.architectures, ["LlamaForCausalLM"]);
      const generation = JSON.parse(await readFile(join(dir, "generation_config.json"), "utf8")) as Record<string, unknown>;
      assert.equal(generation.eos_token_id, 2);
      const reader = await SafetensorsReader.open(join(dir, "model.safetensors"));
      assert.deepEqual(reader.tensors.get("model.layers.0.self_attn.k_proj.weight")?.shape, [8, 16], "HF [out, in] layout on disk");
      assert.deepEqual(reader.tensors.get("lm_head.weight")?.shape, [40, 16]);
      await reader.close();
      const again = await loadCheckpoint(dir);
      assert.deepEqual(logitsOf(again), logitsOf(model));
      model.dispose();
      again.dispose();
    } finally {
      await cleanup();
    }
  });

  it("writes and loads sharded folders with an index, in F32 and BF16", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const model = LlamaModel.init({ ...cfg, tie_word_embeddings: true }, new Rng(2), { initializerRange: 0.2 });
      await saveCheckpoint(model, dir, { maxShardBytes: 3000 });
      const files = await readdir(dir);
      const shards = files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
      assert.ok(shards.length > 2, `several shards: ${files.join(", ")}`);
      const index = JSON.parse(await readFile(join(dir, WEIGHTS_INDEX_FILE), "utf8")) as {
        weight_map: Record<string, string>;
        metadata: { total_size: number };
      };
      assert.ok(!("lm_head.weight" in index.weight_map), "a tied head is not saved");
      assert.equal(new Set(Object.values(index.weight_map)).size, shards.length);
      const again = await loadCheckpoint(dir);
      assert.deepEqual(logitsOf(again), logitsOf(model));
      again.dispose();
      // A shard the index names but the folder lacks: the error names the index and that shard's tensors.
      const lost = shards[1] as string;
      const inLost = Object.entries(index.weight_map)
        .filter(([, f]) => f === lost)
        .map(([n]) => n);
      await rename(join(dir, lost), join(dir, `${lost}.away`));
      await assert.rejects(
        loadCheckpoint(dir),
        (e: unknown) =>
          e instanceof CheckpointError &&
          e.code === "XA_CKPT_MISSING_SHARD" &&
          e.file === join(dir, WEIGHTS_INDEX_FILE) &&
          e.message.includes(lost) &&
          inLost.every((n) => e.message.includes(n)),
      );
      await rename(join(dir, `${lost}.away`), join(dir, lost));
      // BF16, single file: the older shards and index are removed.
      await saveCheckpoint(model, dir, { dtype: "BF16" });
      assert.deepEqual((await readdir(dir)).sort(), ["config.json", "generation_config.json", "model.safetensors"]);
      const bf16 = await loadCheckpoint(dir);
      const name = "model.layers.1.mlp.gate_proj.weight";
      const exact = model.weight(name).dataSync();
      const rounded = bf16.weight(name).dataSync();
      for (let i = 0; i < exact.length; i++)
        assert.ok(Math.abs((exact[i] as number) - (rounded[i] as number)) <= Math.abs(exact[i] as number) / 256);
      bf16.dispose();
      model.dispose();
    } finally {
      await cleanup();
    }
  });

  it("names the file and tensor when a tensor is missing or its shape disagrees with the config", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await copyFile(fixture("tiny-llama", "config.json"), join(dir, "config.json"));
      const weights = await readSafetensors(fixture("tiny-llama", "model.safetensors"));
      const missing = Object.fromEntries(
        Object.entries(weights)
          .filter(([name]) => name !== "model.layers.1.mlp.up_proj.weight")
          .map(([name, t]) => [name, { dtype: "F32" as const, shape: t.shape, data: t.data }]),
      );
      await writeSafetensors(join(dir, "model.safetensors"), missing);
      await expectCheckpointError(
        loadCheckpoint(dir),
        "XA_CKPT_MISSING_TENSOR",
        /model\.safetensors$/,
        "model.layers.1.mlp.up_proj.weight",
      );
      const bad = {
        ...missing,
        "model.layers.1.mlp.up_proj.weight": { dtype: "F32" as const, shape: [64, 172], data: new Float32Array(64 * 172) },
      };
      await writeSafetensors(join(dir, "model.safetensors"), bad);
      await expectCheckpointError(loadCheckpoint(dir), "XA_CKPT_SHAPE", /model\.safetensors$/, "model.layers.1.mlp.up_proj.weight");
      await writeConfig(dir, { ...cfg });
      await expectCheckpointError(loadCheckpoint(join(dir, "nowhere"), { config: cfg }), "XA_CKPT_MISSING_FILE", /nowhere/);
    } finally {
      await cleanup();
    }
  });
});
