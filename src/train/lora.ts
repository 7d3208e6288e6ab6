/**
 * LoRA (Hu et al. 2021) on the model's projection modules, saved in the PEFT
 * layout so that `peft.PeftModel.from_pretrained` reads our adapters and we
 * read theirs: adapter_config.json + adapter_model.safetensors with tensors
 * `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r].
 *
 * delta(x) = dropout(x) @ A^T @ B^T * (alpha / r); A starts Kaiming-uniform
 * (PEFT's default), B at zero, so training starts from the base model.
 *
 * @example
 * const lora = LoraAdapters.attach(model, { rank: 8, alpha: 16, dropout: 0, targets: ["q_proj", "v_proj"] }, new Rng(0));
 * model.setTrainable(() => false); // base frozen: only lora.params are optimised
 * await lora.save("runs/x/adapter");
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { LoraConfig } from "../config/schema.js";
import type { LlamaModel } from "../model/llama.js";
import { readSafetensors, type TensorToWrite, writeSafetensors } from "../model/safetensors.js";
import { CheckpointError, ConfigError } from "../util/errors.js";
import { writeJsonAtomic } from "../util/fs.js";
import { hashString, type Rng } from "../util/rng.js";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

interface Adapter {
  module: string;
  /** [in, r] in memory; PEFT stores [r, in]. */
  a: tf.Variable;
  /** [r, out] in memory; PEFT stores [out, r]. */
  b: tf.Variable;
}

export class LoraAdapters {
  readonly config: LoraConfig;
  readonly scale: number;
  private readonly model: LlamaModel;
  private readonly adapters: Adapter[];
  /** Dropout is applied only while training; seeded by (seed, step, call). */
  training = true;
  private step = 0;
  private calls = 0;
  private readonly seed: number;

  private constructor(model: LlamaModel, config: LoraConfig, adapters: Adapter[], seed: number) {
    this.model = model;
    this.config = config;
    this.scale = config.alpha / config.rank;
    this.adapters = adapters;
    this.seed = seed;
    for (const ad of adapters) model.setAdapter(ad.module, (x) => this.delta(ad, x));
  }

  /** Creates fresh adapters on every module whose name ends with one of `config.targets`. */
  static attach(model: LlamaModel, config: LoraConfig, rng: Rng): LoraAdapters {
    const modules = model.projectionModules().filter((m) => config.targets.some((t) => m.endsWith(`.${t}`)));
    if (modules.length === 0) {
      throw new ConfigError("XA_LORA_TARGETS", `no projection module matches the LoRA targets ${config.targets.join(", ")}`, {
        field: "lora.targets",
      });
    }
    const adapters = modules.map((module) => {
      const [inDim, outDim] = model.weight(`${module}.weight`).shape as [number, number];
      // kaiming_uniform_(a=sqrt(5)) on [r, in] gives bound 1/sqrt(in).
      const bound = 1 / Math.sqrt(inDim);
      const a = new Float32Array(inDim * config.rank);
      for (let i = 0; i < a.length; i++) a[i] = (rng.float() * 2 - 1) * bound;
      return {
        module,
        a: tf.tidy(() => tf.variable(tf.tensor2d(a, [inDim, config.rank]), true)),
        b: tf.tidy(() => tf.variable(tf.zeros([config.rank, outDim]), true)),
      };
    });
    return new LoraAdapters(model, config, adapters, rng.nextU32());
  }

  /** Loads PEFT-layout adapters from a folder and attaches them. */
  static async load(model: LlamaModel, dir: string): Promise<LoraAdapters> {
    const cfgFile = join(dir, ADAPTER_CONFIG_FILE);
    let raw: { r?: number; lora_alpha?: number; lora_dropout?: number; target_modules?: string[] };
    try {
      raw = JSON.parse(await readFile(cfgFile, "utf8"));
    } catch (err) {
      throw new CheckpointError("XA_LORA_CONFIG", `cannot read the adapter config: ${(err as Error).message}`, { file: cfgFile });
    }
    const config: LoraConfig = {
      rank: raw.r ?? 8,
      alpha: raw.lora_alpha ?? 8,
      dropout: raw.lora_dropout ?? 0,
      targets: (raw.target_modules ?? []) as LoraConfig["targets"],
    };
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    const tensors = await readSafetensors(file);
    const adapters: Adapter[] = [];
    for (const module of model.projectionModules().filter((m) => config.targets.some((t) => m.endsWith(`.${t}`)))) {
      const a = tensors[`base_model.model.${module}.lora_A.weight`];
      const b = tensors[`base_model.model.${module}.lora_B.weight`];
      if (!a || !b)
        throw new CheckpointError("XA_LORA_MISSING", `no LoRA tensors for ${module}`, {
          file,
          field: `base_model.model.${module}.lora_A.weight`,
        });
      adapters.push({
        module,
        a: tf.tidy(() => tf.variable(tf.transpose(tf.tensor2d(a.data as Float32Array, a.shape as [number, number])), true)),
        b: tf.tidy(() => tf.variable(tf.transpose(tf.tensor2d(b.data as Float32Array, b.shape as [number, number])), true)),
      });
    }
    return new LoraAdapters(model, config, adapters, 0);
  }

  /** Trainable tensors by PEFT name (in-memory layout). */
  get params(): Map<string, tf.Variable> {
    const out = new Map<string, tf.Variable>();
    for (const ad of this.adapters) {
      out.set(`base_model.model.${ad.module}.lora_A.weight`, ad.a);
      out.set(`base_model.model.${ad.module}.lora_B.weight`, ad.b);
    }
    return out;
  }

  /** Sets the optimiser step, which seeds this step's dropout masks. */
  beginStep(step: number): void {
    this.step = step;
    this.calls = 0;
  }

  private delta(ad: Adapter, x: tf.Tensor2D): tf.Tensor2D {
    const dropped =
      this.training && this.config.dropout > 0
        ? (tf.dropout(x, this.config.dropout, undefined, hashString(`${this.seed}:${this.step}:${this.calls++}`)) as tf.Tensor2D)
        : x;
    return tf.mul(tf.matMul(tf.matMul(dropped, ad.a), ad.b), this.scale) as tf.Tensor2D;
  }

  /** Writes adapter_config.json + adapter_model.safetensors (PEFT layout). */
  async save(dir: string, baseModel = ""): Promise<void> {
    const tensors: Record<string, TensorToWrite> = {};
    for (const ad of this.adapters) {
      tensors[`base_model.model.${ad.module}.lora_A.weight`] = {
        dtype: "F32",
        shape: [ad.a.shape[1] as number, ad.a.shape[0] as number],
        data: () => transposedData(ad.a),
      };
      tensors[`base_model.model.${ad.module}.lora_B.weight`] = {
        dtype: "F32",
        shape: [ad.b.shape[1] as number, ad.b.shape[0] as number],
        data: () => transposedData(ad.b),
      };
    }
    await mkdir(dir, { recursive: true });
    await writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: "pt" });
    await writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), {
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      base_model_name_or_path: baseModel,
      r: this.config.rank,
      lora_alpha: this.config.alpha,
      lora_dropout: this.config.dropout,
      target_modules: this.config.targets,
      bias: "none",
      fan_in_fan_out: false,
      inference_mode: true,
      modules_to_save: null,
    });
  }

  /** Reads adapter weights saved by {@link save} into these adapters (for resume). */
  async restore(dir: string): Promise<void> {
    const tensors = await readSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    for (const [name, v] of this.params) {
      const t = tensors[name];
      if (!t) throw new CheckpointError("XA_LORA_MISSING", `no tensor ${name}`, { file: join(dir, ADAPTER_WEIGHTS_FILE) });
      tf.tidy(() => v.assign(tf.transpose(tf.tensor2d(t.data as Float32Array, t.shape as [number, number]))));
    }
  }

  /** Adds the adapters into the base weights (W += scale * A B) and detaches them: the model is plain LLaMA again. */
  merge(): void {
    for (const ad of this.adapters) {
      const w = this.model.weight(`${ad.module}.weight`);
      tf.tidy(() => w.assign(tf.add(w, tf.mul(tf.matMul(ad.a, ad.b), this.scale))));
      this.model.setAdapter(ad.module, undefined);
    }
    this.dispose();
  }

  /** Detaches and frees the adapters. */
  dispose(): void {
    for (const ad of this.adapters) {
      this.model.setAdapter(ad.module, undefined);
      ad.a.dispose();
      ad.b.dispose();
    }
    this.adapters.length = 0;
  }
}

async function transposedData(v: tf.Variable): Promise<Float32Array> {
  const t = tf.transpose(v);
  try {
    return (await t.data()) as Float32Array;
  } finally {
    t.dispose();
  }
}
