/** Small torch-fsdp experiments written into a temp folder for the launch tests. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type LoadedExperiment, parseExperiment } from "../../src/config/load.js";
import { fixture } from "../helpers.js";

/** n Alpaca records with short, distinct texts. */
export function records(n: number): { instruction: string; input: string; output: string }[] {
  return Array.from({ length: n }, (_, i) => ({
    instruction: `Repeat the number ${i}.`,
    input: i % 3 === 0 ? "" : `number ${i}`,
    output: `The number is ${i}.`,
  }));
}

/** A tiny model with room for the Alpaca prompt, whose ~120-170 tokens (spm-bpe fixture) a max_length of 64 would cut the response from. */
export const ROOMY_MODEL =
  "  hidden_size: 32\n  intermediate_size: 64\n  num_hidden_layers: 2\n  num_attention_heads: 4\n  max_position_embeddings: 512\n";

/**
 * Writes data.json (n records) and returns an experiment over it; `extra`
 * is YAML appended at the top level (e.g. a launch: block), `train` inside
 * the stage's train block.
 */
export async function torchExperiment(
  dir: string,
  options: { n?: number; train?: string; extra?: string; stage?: string; model?: string } = {},
): Promise<LoadedExperiment> {
  const data = join(dir, "data.json");
  await writeFile(data, JSON.stringify(records(options.n ?? 64)));
  const model =
    options.model ??
    "  hidden_size: 32\n  intermediate_size: 64\n  num_hidden_layers: 2\n  num_attention_heads: 4\n  max_position_embeddings: 128\n";
  const yaml = [
    "name: tiny-torch",
    "seed: 7",
    "engine: torch-fsdp",
    "output: runs",
    "tokenizer:",
    `  path: ${fixture("spm-bpe", "tokenizer.model")}`,
    "model:",
    model.trimEnd(),
    "stages:",
    "  - name: sft",
    "    data: [data.json]",
    ...(options.stage ? [options.stage.trimEnd()] : []),
    "    train:",
    `      ${(options.train ?? "epochs: 2\n      batch_size: 2\n      grad_accum: 2\n      max_length: 64\n      lr: 0.001").trimEnd()}`,
    ...(options.extra ? [options.extra.trimEnd()] : []),
    "",
  ].join("\n");
  const file = join(dir, "exp.yaml");
  await writeFile(file, yaml);
  return { config: parseExperiment(yaml, file), file, baseDir: dir };
}
