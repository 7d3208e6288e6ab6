/**
 * Text generation with a KV cache: one forward over the (left-padded) prompts,
 * then one position per step, attending to the cached keys/values instead of
 * recomputing the prefix. Greedy by default; sampling with temperature, top-k
 * and top-p from a seeded {@link Rng}, so a seed gives the same text. Rows stop
 * at EOS, at a stop string, or after maxNewTokens; finished rows leave the
 * batch (their cache rows are dropped).
 *
 * With the native addon on (wasm backend) and a model without adapters, each
 * step (the prompt's prefill, then every new token) is one native call with
 * the KV cache in native memory ({@link NativeDecoder}); elsewhere, or with
 * `native: false`, the per-op TF.js forward with a {@link KvCache} runs, which
 * stays the reference. Both give the same logits to float rounding, and
 * sampling consumes them the same way.
 *
 * @example
 * const out = await generate(model, [await tok.encode("Translate ...")], {
 *   maxNewTokens: 64, tokenizer: tok, stopStrings: ["\n\n"],
 * });
 * out.texts[0];
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../util/rng.js";
import { KvCache } from "./kvcache.js";
import type { LlamaModel } from "./llama.js";
import { maskPositions, NativeDecoder } from "./nativedecode.js";

/** Anything that turns ids into text (a {@link Tokenizer} from src/tokenizer fits). */
export interface TokenDecoder {
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): Promise<string>;
  /**
   * Many id lists at once, as `decode` gives each (optional): generate() decodes every row's text after each step,
   * and one call instead of one per row saves a round trip per row (a {@link Tokenizer}'s decode is an async call
   * into its native library).
   */
  decodeBatch?(batch: number[][], options?: { skipSpecialTokens?: boolean }): Promise<string[]>;
}

export interface GenerateOptions {
  /** Most tokens to generate per prompt (default 64). */
  maxNewTokens?: number;
  /** Sample instead of taking the most likely token (default false: greedy). */
  doSample?: boolean;
  /** Softmax temperature when sampling (default 1). */
  temperature?: number;
  /** Keep only the k most likely tokens when sampling (default 0: off). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p when sampling (default 1: off). */
  topP?: number;
  /** Seed or generator for sampling (default seed 0). */
  seed?: number | Rng;
  /** Token id(s) that end a sequence (default the config's eos_token_id). The EOS itself is not returned. */
  eosTokenId?: number | number[];
  /** Strings that end a sequence; needs `tokenizer`. The returned text stops before the string. */
  stopStrings?: string[];
  /** Decodes generated ids into `texts` (and checks stop strings). */
  tokenizer?: TokenDecoder;
  /** Id used for left padding (default pad, else eos, else 0); masked out, so any id works. */
  padTokenId?: number;
  /** Decode natively when the addon is on and the model is supported (default true); false: the per-op path. */
  native?: boolean;
}

export type FinishReason = "eos" | "stop" | "length";

export interface GenerateResult {
  /** Generated ids per prompt (prompt and EOS excluded). */
  tokens: number[][];
  /** Decoded generations (when a tokenizer was given), cut before any stop string. */
  texts: string[] | undefined;
  finishReasons: FinishReason[];
}

/** Greedy or sampled continuation of each prompt (ids, BOS included if wanted). */
export async function generate(model: LlamaModel, prompts: number[][], options: GenerateOptions = {}): Promise<GenerateResult> {
  const cfg = model.config;
  const maxNew = options.maxNewTokens ?? 64;
  const eos = new Set(options.eosTokenId === undefined ? [cfg.eos_token_id] : ([] as number[]).concat(options.eosTokenId));
  const stops = options.stopStrings ?? [];
  if (stops.length > 0 && !options.tokenizer) throw new Error("generate: stopStrings need a tokenizer to decode with");
  if (prompts.some((p) => p.length === 0)) throw new Error("generate: every prompt needs at least one token (e.g. BOS)");
  const rng = options.seed instanceof Rng ? options.seed : new Rng(options.seed ?? 0);
  const pad = options.padTokenId ?? cfg.pad_token_id ?? cfg.eos_token_id;
  const tokens: number[][] = prompts.map(() => []);
  const texts: string[] = prompts.map(() => "");
  const reasons: FinishReason[] = prompts.map(() => "length");
  if (prompts.length === 0 || maxNew <= 0) return { tokens, texts: options.tokenizer ? texts : undefined, finishReasons: reasons };

  const width = Math.max(...prompts.map((p) => p.length));
  // Rows still generating (indices into prompts) and their attention masks over cached + new positions.
  let active = prompts.map((_, i) => i);
  let masks = prompts.map((p) => [...new Array(width - p.length).fill(0), ...p.map(() => 1)]);
  const plan = model.inferenceWeights();
  // The last generated token is never fed back: the prompt width plus maxNew - 1 positions get cached.
  const native = options.native === false ? undefined : NativeDecoder.open(model, plan, prompts.length, width + maxNew - 1);
  const cache = native ? undefined : new KvCache(cfg.num_hidden_layers);
  // One logits array for every native step: each step's values are read before the next.
  const nativeLogits = native ? new Float32Array(prompts.length * cfg.vocab_size) : undefined;
  try {
    let input = prompts.map((p) => [...new Array(width - p.length).fill(pad), ...p]);
    for (let step = 0; step < maxNew && active.length > 0; step++) {
      const t = input[0]!.length;
      let values: Float32Array;
      if (native) {
        const real = masks.map((m) => m.slice(m.length - t));
        values = native.step(
          input,
          masks.map((m) => maskPositions(m, t)),
          real,
          nativeLogits,
        );
      } else {
        const ids = tf.tensor2d(input, [active.length, t], "int32");
        const logits = model.forward(ids, { attentionMask: masks, cache, logits: "last", inferenceWeights: plan });
        ids.dispose();
        values = (await logits.data()) as Float32Array;
        logits.dispose();
      }
      const next: number[] = [];
      const stillActive: number[] = [];
      // Each row's token (in row order, which sampling's draws follow), then every continuing row's text in one call.
      const chosen = active.map((_, row) => chooseToken(values.subarray(row * cfg.vocab_size, (row + 1) * cfg.vocab_size), options, rng));
      const finished: (FinishReason | undefined)[] = chosen.map((token) => (eos.has(token) ? "eos" : undefined));
      const decoding = active.filter((_, row) => finished[row] === undefined);
      for (const [row, index] of active.entries()) if (finished[row] === undefined) tokens[index]!.push(chosen[row]!);
      if (options.tokenizer && decoding.length > 0) {
        const decoded = await decodeTexts(
          options.tokenizer,
          decoding.map((index) => tokens[index]!),
        );
        let k = 0;
        for (const [row, index] of active.entries()) {
          if (finished[row] !== undefined) continue;
          const text = decoded[k++] as string;
          const cut = firstStop(text, stops);
          texts[index] = cut ?? text;
          if (cut !== undefined) finished[row] = "stop";
        }
      }
      for (const [row, index] of active.entries()) {
        const reason = finished[row];
        if (reason) reasons[index] = reason;
        else {
          stillActive.push(row);
          next.push(chosen[row]!);
        }
      }
      if (stillActive.length < active.length && stillActive.length > 0) {
        if (native) native.selectRows(stillActive);
        else cache?.selectRows(stillActive);
      }
      masks = stillActive.map((row) => [...masks[row]!, 1]);
      active = stillActive.map((row) => active[row]!);
      input = next.map((t) => [t]);
    }
  } finally {
    native?.dispose();
    cache?.dispose();
  }
  return { tokens, texts: options.tokenizer ? texts : undefined, finishReasons: reasons };
}

/** The texts of id lists (special tokens skipped): one decodeBatch call where the decoder has one. */
async function decodeTexts(tokenizer: TokenDecoder, lists: number[][]): Promise<string[]> {
  if (tokenizer.decodeBatch) return tokenizer.decodeBatch(lists, { skipSpecialTokens: true });
  return Promise.all(lists.map((ids) => tokenizer.decode(ids, { skipSpecialTokens: true })));
}

/** The text before the earliest stop string, or undefined when none occurs. */
function firstStop(text: string, stops: string[]): string | undefined {
  let cut: number | undefined;
  for (const s of stops) {
    const at = s.length > 0 ? text.indexOf(s) : -1;
    if (at >= 0 && (cut === undefined || at < cut)) cut = at;
  }
  return cut === undefined ? undefined : text.slice(0, cut);
}

/** Argmax, or a sample after temperature, top-k and top-p. */
export function chooseToken(
  logits: Float32Array,
  options: Pick<GenerateOptions, "doSample" | "temperature" | "topK" | "topP">,
  rng: Rng,
): number {
  if (!options.doSample) return argmax(logits);
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0)) return argmax(logits);
  const n = logits.length;
  const topK = options.topK ?? 0;
  const topP = options.topP ?? 1;
  let candidates = Array.from({ length: n }, (_, i) => i);
  if ((topK > 0 && topK < n) || topP < 1) {
    // A native sort of the values finds the cut-off; one pass then keeps the tokens above it
    // (a comparator sort of 32000 indices would cost milliseconds per token).
    const sorted = Float32Array.from(logits).sort().reverse();
    let keep = topK > 0 && topK < n ? topK : n;
    if (topP < 1) {
      const top = sorted[0] as number;
      let total = 0;
      for (let i = 0; i < keep; i++) total += Math.exp(((sorted[i] as number) - top) / temperature);
      let acc = 0;
      let m = 0;
      while (m < keep && acc < topP * total) acc += Math.exp(((sorted[m++] as number) - top) / temperature);
      keep = Math.max(m, 1);
    }
    const cutoff = sorted[keep - 1] as number;
    candidates = [];
    for (let i = 0; i < n; i++) if ((logits[i] as number) > cutoff) candidates.push(i);
    for (let i = 0; i < n && candidates.length < keep; i++) if (logits[i] === cutoff) candidates.push(i);
  }
  let max = Number.NEGATIVE_INFINITY;
  for (const i of candidates) max = Math.max(max, logits[i] as number);
  const weights = candidates.map((i) => Math.exp(((logits[i] as number) - max) / temperature));
  return candidates[rng.weighted(weights)] as number;
}

function argmax(values: Float32Array): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}
