/**
 * Hugging Face checkpoint folders: config.json, generation_config.json and
 * the weights as model.safetensors, or as shards model-0000i-of-0000N.safetensors
 * with model.safetensors.index.json. A folder we save loads in `transformers`
 * (LlamaForCausalLM.from_pretrained) and one `transformers` saves loads here.
 *
 * Loading streams tensor by tensor, shard by shard: peak memory is about the
 * model plus one tensor (twice, while it is transposed to our layout).
 *
 * @example
 * await saveCheckpoint(model, "runs/tiny/checkpoint", { dtype: "BF16", maxShardBytes: 2e9 });
 * const again = await loadCheckpoint("runs/tiny/checkpoint");
 */
import { readFile, rm } from "node:fs/promises";
import { join, relative } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { ensureEngine } from "../engine/index.js";
import { CheckpointError } from "../util/errors.js";
import { writeJsonAtomic } from "../util/fs.js";
import { type LlamaConfig, readConfig, writeConfig } from "./config.js";
import { hfShape, isTransposedInMemory, LlamaModel, toHfLayout, weightNames } from "./llama.js";
import { fileSize, SafetensorsReader, writeSafetensors } from "./safetensors.js";

export const WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

export interface SaveCheckpointOptions {
  /** Weight dtype on disk (default F32). BF16 halves the size, as the study's checkpoints. */
  dtype?: "F32" | "BF16";
  /** Start a new shard when one would exceed this many bytes (default 5 GB, as transformers' max_shard_size). */
  maxShardBytes?: number;
  /** Extra generation_config.json fields (e.g. max_new_tokens, temperature). */
  generation?: Record<string, unknown>;
}

/**
 * Writes `model` as a Hugging Face LLaMA folder. Each file is written to a
 * temp name and renamed; the index comes after its shards, and files of an
 * older layout (a single file vs shards) are removed last.
 */
export async function saveCheckpoint(model: LlamaModel, dir: string, options: SaveCheckpointOptions = {}): Promise<void> {
  const dtype = options.dtype ?? "F32";
  const maxShard = options.maxShardBytes ?? 5e9;
  const cfg = model.config;
  const itemSize = dtype === "F32" ? 4 : 2;
  const shards: string[][] = [[]];
  let current = 0;
  for (const name of weightNames(cfg)) {
    const bytes = hfShape(cfg, name).reduce((a, b) => a * b, 1) * itemSize;
    const shard = shards[shards.length - 1] as string[];
    if (shard.length > 0 && current + bytes > maxShard) {
      shards.push([name]);
      current = bytes;
    } else {
      shard.push(name);
      current += bytes;
    }
  }
  const fileNames =
    shards.length === 1
      ? [WEIGHTS_FILE]
      : shards.map((_, i) => `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`);
  const previous = await previousWeightFiles(dir);
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, names] of shards.entries()) {
    const file = fileNames[i] as string;
    const tensors: Record<string, { dtype: "F32" | "BF16"; shape: number[]; data: () => Promise<Float32Array> }> = {};
    for (const name of names) {
      const shape = hfShape(cfg, name);
      weightMap[name] = file;
      totalSize += shape.reduce((a, b) => a * b, 1) * itemSize;
      tensors[name] = {
        dtype,
        shape,
        data: async () => {
          const t = tf.tidy(() => toHfLayout(name, model.weight(name)));
          const values = (await t.data()) as Float32Array;
          t.dispose();
          return values;
        },
      };
    }
    await writeSafetensors(join(dir, file), tensors, { format: "pt" });
  }
  if (shards.length > 1)
    await writeJsonAtomic(join(dir, WEIGHTS_INDEX_FILE), { metadata: { total_size: totalSize }, weight_map: weightMap });
  await writeConfig(dir, cfg, dtype === "BF16" ? "bfloat16" : "float32");
  await writeJsonAtomic(join(dir, "generation_config.json"), {
    _from_model_config: true,
    bos_token_id: cfg.bos_token_id,
    eos_token_id: cfg.eos_token_id,
    ...(cfg.pad_token_id !== null ? { pad_token_id: cfg.pad_token_id } : {}),
    ...options.generation,
  });
  const keep = new Set([...fileNames, ...(shards.length > 1 ? [WEIGHTS_INDEX_FILE] : [])]);
  for (const old of previous) if (!keep.has(old)) await rm(join(dir, old), { force: true });
}

/** The weight files an existing folder has (single file, index and its shards). */
async function previousWeightFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  if ((await fileSize(join(dir, WEIGHTS_FILE))) !== undefined) out.push(WEIGHTS_FILE);
  try {
    const index = JSON.parse(await readFile(join(dir, WEIGHTS_INDEX_FILE), "utf8")) as { weight_map?: Record<string, string> };
    out.push(WEIGHTS_INDEX_FILE, ...new Set(Object.values(index.weight_map ?? {})));
  } catch {
    // no index, or an unreadable one that the new save replaces
  }
  return out;
}

/** Which file holds each tensor: from model.safetensors.index.json when present, else all in model.safetensors. */
async function weightLocations(dir: string, names: string[]): Promise<Map<string, string>> {
  const indexPath = join(dir, WEIGHTS_INDEX_FILE);
  const locations = new Map<string, string>();
  if ((await fileSize(indexPath)) !== undefined) {
    let index: { weight_map?: Record<string, string> };
    try {
      index = JSON.parse(await readFile(indexPath, "utf8")) as typeof index;
    } catch (err) {
      throw new CheckpointError("XA_CKPT_INDEX", `index is not valid JSON: ${(err as Error).message}`, {
        file: indexPath,
        hint: "re-save the checkpoint",
        cause: err,
      });
    }
    const map = index.weight_map ?? {};
    for (const name of names) {
      const file = map[name];
      if (file === undefined) {
        throw new CheckpointError("XA_CKPT_MISSING_TENSOR", "tensor is not in the index's weight_map", {
          file: indexPath,
          field: name,
          hint: "the checkpoint is incomplete",
        });
      }
      locations.set(name, join(dir, file));
    }
    // A shard the index names but the folder lacks: say which tensors would come from it.
    const byShard = new Map<string, string[]>();
    for (const [name, path] of locations) byShard.set(path, [...(byShard.get(path) ?? []), name]);
    for (const [path, tensors] of byShard) {
      if ((await fileSize(path)) !== undefined) continue;
      const shown = tensors.slice(0, 6).join(", ");
      throw new CheckpointError(
        "XA_CKPT_MISSING_SHARD",
        `the index names shard ${relative(dir, path)}, which is missing; it holds ${tensors.length} tensor${tensors.length > 1 ? "s" : ""}: ${shown}${tensors.length > 6 ? `, and ${tensors.length - 6} more` : ""}`,
        {
          file: indexPath,
          field: tensors[0] as string,
          hint: `copy ${relative(dir, path)} into ${dir} again (an interrupted download or copy)`,
        },
      );
    }
    return locations;
  }
  const single = join(dir, WEIGHTS_FILE);
  if ((await fileSize(single)) === undefined) {
    throw new CheckpointError("XA_CKPT_MISSING_FILE", `no ${WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE} in the folder`, {
      file: dir,
      hint: "a checkpoint folder needs safetensors weights (convert .bin/.pth with transformers first)",
    });
  }
  for (const name of names) locations.set(name, single);
  return locations;
}

/**
 * Loads a Hugging Face LLaMA folder (config.json + safetensors, single or
 * sharded). Every tensor the config needs must be present with its shape;
 * otherwise a {@link CheckpointError} names the file and tensor.
 */
export async function loadCheckpoint(dir: string, options: { config?: LlamaConfig } = {}): Promise<LlamaModel> {
  await ensureEngine();
  const cfg = options.config ?? (await readConfig(dir));
  const names = weightNames(cfg);
  const locations = await weightLocations(dir, names);
  const byFile = new Map<string, string[]>();
  for (const name of names) {
    const file = locations.get(name) as string;
    byFile.set(file, [...(byFile.get(file) ?? []), name]);
  }
  reserveWasmHeap(names.reduce((sum, name) => sum + hfShape(cfg, name).reduce((a, b) => a * b, 1) * 4, 0));
  const tensors = new Map<string, tf.Tensor>();
  try {
    for (const [file, fileNames] of byFile) {
      const reader = await SafetensorsReader.open(file);
      try {
        for (const name of fileNames) {
          const info = reader.tensors.get(name);
          if (!info) {
            throw new CheckpointError("XA_CKPT_MISSING_TENSOR", "tensor is missing", {
              file,
              field: name,
              hint: "the checkpoint does not match config.json",
            });
          }
          const want = hfShape(cfg, name);
          if (!tf.util.arraysEqual(info.shape, want)) {
            throw new CheckpointError("XA_CKPT_SHAPE", `tensor has shape [${info.shape}] but config.json implies [${want}]`, {
              file,
              field: name,
              hint: "the weights do not belong to this config",
            });
          }
          const record = await reader.read(name);
          const raw = tf.tensor(record.data instanceof Float32Array ? record.data : Float32Array.from(record.data), want, "float32");
          if (isTransposedInMemory(name)) {
            tensors.set(name, tf.transpose(raw));
            raw.dispose();
          } else {
            tensors.set(name, raw);
          }
        }
      } finally {
        await reader.close();
      }
    }
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  }
  return LlamaModel.fromTensors(cfg, tensors);
}

/**
 * On the wasm backend, grows the heap once to hold `bytes` more. Growing it
 * tensor by tensor copies the whole heap at each step, which made loading a
 * 100M-parameter checkpoint take several times longer (measured: BENCHMARKS.md).
 * The block is freed at once; the allocator reuses it for the weights.
 */
function reserveWasmHeap(bytes: number): void {
  if (tf.getBackend() !== "wasm") return;
  const wasm = (tf.backend() as unknown as { wasm?: { _malloc(n: number): number; _free(p: number): void } }).wasm;
  if (!wasm) return;
  const ptr = wasm._malloc(Math.ceil(bytes * 1.1));
  if (ptr) wasm._free(ptr);
}
