/**
 * The generation harness: prompts a model over a test set in batches and
 * appends {id, prompt, reference, prediction, lang} lines to predictions.jsonl.
 * Rerunning skips ids already in the file, so an interrupted run resumes; a
 * last line cut off mid-write is dropped (the file is rewritten atomically).
 */
import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { AnalysisError, DataError } from "../util/errors.js";
import { writeFileAtomic } from "../util/fs.js";

/** One test item. Fields other than these are available to the template. */
export interface GenerationExample {
  id: string;
  lang?: string;
  /** Gold output(s): translation reference(s) or QA answers. */
  reference?: string | string[];
  [field: string]: unknown;
}

/** What predictions.jsonl holds, one per line. */
export interface PredictionRecord {
  id: string;
  prompt: string;
  reference: string | string[] | null;
  prediction: string;
  lang: string | null;
}

/**
 * A prompt template: a string with `{field}` placeholders filled from the
 * example (`{{` and `}}` for literal braces), or a function.
 */
export type PromptTemplate = string | ((example: GenerationExample) => string);

/** Decoding settings, passed through to the model unchanged. */
export type GenerationSettings = Record<string, unknown>;

/** Progress of a run. */
export interface GenerationProgress {
  /** Examples with a prediction (including ones found in the file). */
  done: number;
  total: number;
  /** Examples skipped because the file already had them. */
  skipped: number;
}

export interface RunGenerationOptions {
  examples: readonly GenerationExample[];
  /** The model: prompts in, one output per prompt out, same order; `settings` passed through. */
  generate: (prompts: string[], settings: GenerationSettings) => Promise<string[]>;
  /** Decoding settings handed to every generate() call (e.g. { maxNewTokens: 256, temperature: 0 }). */
  settings?: GenerationSettings;
  template: PromptTemplate;
  /** Prompts per generate() call (default 8). */
  batchSize?: number;
  /** The predictions.jsonl path (created or resumed). */
  out: string;
  onProgress?: (progress: GenerationProgress) => void;
}

export interface GenerationResult {
  /** Every example's record, in the examples' order. */
  records: PredictionRecord[];
  generated: number;
  skipped: number;
}

/**
 * Fills a `{field}` template from an example.
 *
 * @example
 * renderPrompt("Translate to {target}: {input}", { id: "1", target: "Chinese", input: "Hello" }); // "Translate to Chinese: Hello"
 */
export function renderPrompt(template: PromptTemplate, example: GenerationExample): string {
  if (typeof template === "function") return template(example);
  return template.replace(/\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (match, field: string | undefined) => {
    if (match === "{{") return "{";
    if (match === "}}") return "}";
    const value = example[field!];
    if (value === undefined || value === null) {
      throw new AnalysisError(
        "XA_EVAL_TEMPLATE_FIELD",
        `the prompt template uses {${field}} but example "${example.id}" has no "${field}"`,
        {
          field: field!,
          hint: `add "${field}" to every example or change the template`,
        },
      );
    }
    return String(value);
  });
}

/** Reads predictions.jsonl; drops a truncated last line (rewriting the file), rejects other bad lines. */
export async function readPredictions(path: string): Promise<PredictionRecord[]> {
  if (!existsSync(path)) return [];
  const text = await readFile(path, "utf8");
  const lines = text.split("\n");
  const records: PredictionRecord[] = [];
  let keptChars = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const isLast = i === lines.length - 1;
    if (line.trim() === "") {
      if (!isLast) keptChars += line.length + 1;
      continue;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch (err) {
      // No newline after it: an interrupted append. Anything else is damage we should not guess about.
      if (isLast) {
        await writeFileAtomic(path, text.slice(0, keptChars));
        break;
      }
      throw new DataError("XA_EVAL_PREDICTIONS_LINE", `not valid JSON: ${(err as Error).message}`, {
        file: path,
        line: i + 1,
        hint: "fix or delete the line, then rerun to regenerate it",
      });
    }
    const rec = parsed as Partial<PredictionRecord>;
    if (typeof rec.id !== "string" || typeof rec.prediction !== "string") {
      throw new DataError("XA_EVAL_PREDICTIONS_LINE", "a prediction line needs string fields id and prediction", {
        file: path,
        line: i + 1,
        hint: "fix or delete the line, then rerun to regenerate it",
      });
    }
    records.push(parsed as PredictionRecord);
    keptChars += line.length + 1;
  }
  return records;
}

/**
 * Runs `generate` over the examples not yet in `out`, `batchSize` prompts
 * at a time, appending each batch's records as it completes.
 *
 * @example
 * const { records } = await runGeneration({
 *   examples, template: "{instruction}\n\n{input}", batchSize: 16,
 *   settings: { maxNewTokens: 256, temperature: 0 },
 *   generate: (prompts, settings) => model.generate(prompts, settings),
 *   out: "runs/x-llama-zh/predictions.jsonl",
 *   onProgress: ({ done, total }) => bar.update(done / total),
 * });
 */
export async function runGeneration(options: RunGenerationOptions): Promise<GenerationResult> {
  const { examples, generate, template, out, onProgress } = options;
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new AnalysisError("XA_EVAL_BATCH_SIZE", `batchSize must be a positive integer, got ${batchSize}`, { field: "batchSize" });
  }
  const seen = new Set<string>();
  for (const ex of examples) {
    if (typeof ex.id !== "string" || ex.id === "") {
      throw new AnalysisError("XA_EVAL_EXAMPLE_ID", "every example needs a non-empty string id", { field: "examples[].id" });
    }
    if (seen.has(ex.id)) {
      throw new AnalysisError("XA_EVAL_DUPLICATE_ID", `example id "${ex.id}" appears twice`, {
        field: "examples[].id",
        hint: "ids identify predictions when a run resumes; make them unique",
      });
    }
    seen.add(ex.id);
  }
  await mkdir(dirname(out), { recursive: true });
  const existing = new Map((await readPredictions(out)).map((r) => [r.id, r]));
  const todo = examples.filter((ex) => !existing.has(ex.id));
  const skipped = examples.length - todo.length;
  let done = skipped;
  onProgress?.({ done, total: examples.length, skipped });
  const fresh = new Map<string, PredictionRecord>();
  for (let start = 0; start < todo.length; start += batchSize) {
    const batch = todo.slice(start, start + batchSize);
    const prompts = batch.map((ex) => renderPrompt(template, ex));
    const outputs = await generate(prompts, options.settings ?? {});
    if (!Array.isArray(outputs) || outputs.length !== prompts.length || outputs.some((o) => typeof o !== "string")) {
      throw new AnalysisError(
        "XA_EVAL_GENERATE_COUNT",
        `generate() returned ${Array.isArray(outputs) ? outputs.length : typeof outputs} outputs for ${prompts.length} prompts`,
        {
          hint: "return one string per prompt, in order",
        },
      );
    }
    const lines = batch.map((ex, j) => {
      const rec: PredictionRecord = {
        id: ex.id,
        prompt: prompts[j]!,
        reference: ex.reference ?? null,
        prediction: outputs[j]!,
        lang: ex.lang ?? null,
      };
      fresh.set(ex.id, rec);
      return `${JSON.stringify(rec)}\n`;
    });
    await appendFile(out, lines.join(""));
    done += batch.length;
    onProgress?.({ done, total: examples.length, skipped });
  }
  const records = examples.map((ex) => (existing.get(ex.id) ?? fresh.get(ex.id))!);
  return { records, generated: todo.length, skipped };
}
