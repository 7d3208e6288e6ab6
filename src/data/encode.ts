/**
 * From an example to token ids and next-token labels with the loss on the
 * response only. This is the single definition of the training sequence; a
 * PyTorch launcher must reproduce it exactly:
 *
 *   1. `{prompt, response} = renderPrompt(example, format)`
 *   2. `P = tokenizer.encode(prompt, {addBos: false, addEos: false})`,
 *      `R = tokenizer.encode(response, {addBos: false, addEos: false})`
 *      (encoded separately, so the prompt/response boundary is a token boundary)
 *   3. `ids = [bosId, ...P, ...R, eosId]`
 *   4. if `ids.length > maxLength`: keep the first `maxLength` ids (right
 *      truncation, as Stanford Alpaca / x-LLM do; the EOS and then the end of
 *      the response are lost first)
 *   5. `labels[t] = ids[t + 1]` when position t + 1 holds a response token or
 *      the EOS (t + 1 >= 1 + P.length), else -100; the last position is -100
 *   6. with `pad: true`, ids are padded to `maxLength` with `padId ?? eosId`
 *      and those positions get label -100 and attention mask 0
 *
 * Labels are already shifted: `labels[t]` is the target of the logits at
 * position t (HF `labels` would be `ids` itself, shifted inside the model).
 */
import { DataError } from "../util/errors.js";
import type { InstructionExample } from "./example.js";
import { type PromptFormat, renderPrompt } from "./prompt.js";

/** Label value for positions that carry no loss (PyTorch's CrossEntropyLoss ignore_index). */
export const IGNORE_INDEX = -100;

/** What encodeExample needs from a tokenizer (src/tokenizer implements it). */
export interface PromptTokenizer {
  encode(text: string, opts?: { addBos?: boolean; addEos?: boolean }): number[];
  bosId: number;
  eosId: number;
  padId?: number;
}

export interface EncodeOptions {
  /** Longest sequence, BOS and EOS included. */
  maxLength: number;
  format?: PromptFormat;
  /** Pad to maxLength (label -100, attention mask 0). Default false. */
  pad?: boolean;
}

export interface EncodedExample {
  inputIds: number[];
  /** Next-token targets aligned per position; -100 on prompt, padding and the last position. */
  labels: number[];
  /** 1 on real tokens, 0 on padding. */
  attentionMask: number[];
  /** Tokens before the response, BOS included (after truncation). */
  promptLength: number;
  /** Positions whose label is not -100. */
  supervisedTokens: number;
  /** True when step 4 cut the sequence. */
  truncated: boolean;
}

/**
 * Encodes one example for causal-LM training with the loss on the response.
 *
 * @example
 * const enc = encodeExample(example, tokenizer, { maxLength: 512 });
 * enc.labels[enc.promptLength - 1] === enc.inputIds[enc.promptLength]; // first response token is supervised
 */
export function encodeExample(
  example: Pick<InstructionExample, "instruction" | "input" | "output" | "meta">,
  tokenizer: PromptTokenizer,
  options: EncodeOptions,
): EncodedExample {
  const { maxLength, format = "alpaca", pad = false } = options;
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new DataError("XA_DATA_MAX_LENGTH", `maxLength must be an integer >= 2, got ${maxLength}`, {
      field: "maxLength",
      hint: "the study uses 512",
    });
  }
  const { prompt, response } = renderPrompt(example, format);
  const promptIds = tokenizer.encode(prompt, { addBos: false, addEos: false });
  const responseIds = tokenizer.encode(response, { addBos: false, addEos: false });
  const full = [tokenizer.bosId, ...promptIds, ...responseIds, tokenizer.eosId];
  const truncated = full.length > maxLength;
  const inputIds = truncated ? full.slice(0, maxLength) : full;
  const responseStart = 1 + promptIds.length;
  const length = inputIds.length;
  const labels = new Array<number>(length);
  let supervisedTokens = 0;
  for (let t = 0; t < length; t++) {
    if (t + 1 < length && t + 1 >= responseStart) {
      labels[t] = inputIds[t + 1] as number;
      supervisedTokens++;
    } else {
      labels[t] = IGNORE_INDEX;
    }
  }
  const attentionMask = new Array<number>(length).fill(1);
  if (pad && length < maxLength) {
    const padId = tokenizer.padId ?? tokenizer.eosId;
    for (let t = length; t < maxLength; t++) {
      inputIds.push(padId);
      labels.push(IGNORE_INDEX);
      attentionMask.push(0);
    }
  }
  return { inputIds, labels, attentionMask, promptLength: Math.min(responseStart, length), supervisedTokens, truncated };
}
