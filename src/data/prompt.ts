/**
 * Prompt formats. A renderer turns an example into a `prompt` (no loss) and a
 * `response` (loss); the tokenised sequence is exactly BOS + prompt + response
 * + EOS (see encode.ts), so the loss mask is the response span.
 *
 * The Alpaca strings are the Stanford Alpaca `PROMPT_DICT`, byte for byte, which
 * x-LLM (the study's code) reuses: the response follows "### Response:" with no
 * separator, as in their train.py (`source + target`).
 */
import { type ChatTurn, foldedInput, type InstructionExample } from "./example.js";

export type PromptFormat = "alpaca" | "chat";

export interface RenderedPrompt {
  /** Everything the model reads before answering; masked out of the loss. */
  prompt: string;
  /** What the model must produce; the loss is on these tokens (and the EOS after them). */
  response: string;
}

/** Stanford Alpaca's prompt with an input, verbatim. */
export const ALPACA_PROMPT_WITH_INPUT =
  "Below is an instruction that describes a task, paired with an input that provides further context. " +
  "Write a response that appropriately completes the request.\n\n" +
  "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:";

/** Stanford Alpaca's prompt without an input, verbatim. */
export const ALPACA_PROMPT_NO_INPUT =
  "Below is an instruction that describes a task. " +
  "Write a response that appropriately completes the request.\n\n" +
  "### Instruction:\n{instruction}\n\n### Response:";

/** The chat format's system line (Vicuna v1.1 wording, which Bayling builds on). */
export const CHAT_SYSTEM =
  "A chat between a curious user and an artificial intelligence assistant. " +
  "The assistant gives helpful, detailed, and polite answers to the user's questions.";

/**
 * The Alpaca prompt: the "with input" text when the input is non-empty, else
 * the "no input" text. Earlier dialogue turns (`meta.turns`) are folded into
 * the input exactly as the x-LLM JSON export does (see foldedInput).
 *
 * @example
 * renderAlpaca({ instruction: "Say hi.", input: "", output: "Hi!" }).prompt.endsWith("### Response:"); // true
 */
export function renderAlpaca(example: Pick<InstructionExample, "instruction" | "input" | "output" | "meta">): RenderedPrompt {
  const input = foldedInput(example);
  const template = input === "" ? ALPACA_PROMPT_NO_INPUT : ALPACA_PROMPT_WITH_INPUT;
  // One pass with a replacer function: "$&" or "{input}" inside user text stays literal.
  const values: Record<string, string> = { instruction: example.instruction, input };
  const prompt = template.replace(/\{(instruction|input)\}/g, (_, key: string) => values[key] as string);
  return { prompt, response: example.output };
}

/**
 * A Vicuna-style chat prompt: system line, earlier turns from `meta.turns`,
 * then the final user message (instruction, a blank line, input) and
 * "ASSISTANT:". Turns are separated by a newline (not an EOS token), so the
 * whole prompt is plain text.
 *
 * @example
 * renderChat({ instruction: "Translate to German.", input: "Good morning.", output: "Guten Morgen." }).prompt;
 * // "A chat between ... questions.\nUSER: Translate to German.\n\nGood morning.\nASSISTANT:"
 */
export function renderChat(example: Pick<InstructionExample, "instruction" | "input" | "output" | "meta">): RenderedPrompt {
  const turns: ChatTurn[] = example.meta?.turns ?? [];
  const parts = [CHAT_SYSTEM];
  for (const turn of turns) parts.push(`USER: ${turn.user}`, `ASSISTANT: ${turn.assistant}`);
  const user = example.input === "" ? example.instruction : `${example.instruction}\n\n${example.input}`;
  parts.push(`USER: ${user}`, "ASSISTANT:");
  // The space after "ASSISTANT:" belongs to the response so the prompt ends on a fixed string.
  return { prompt: parts.join("\n"), response: ` ${example.output}` };
}

/**
 * Renders an example in the named format.
 *
 * @example
 * const { prompt, response } = renderPrompt(example, "alpaca");
 */
export function renderPrompt(
  example: Pick<InstructionExample, "instruction" | "input" | "output" | "meta">,
  format: PromptFormat = "alpaca",
): RenderedPrompt {
  return format === "chat" ? renderChat(example) : renderAlpaca(example);
}

/** The full training text of an example and where its response (the loss span) lies in it. */
export interface PromptSpans {
  /** prompt + response. */
  text: string;
  /** [start, end) of the response in `text`, in UTF-16 code units. */
  response: [number, number];
}

/**
 * The character span of the response: what a tokenizer with offsets needs to
 * build the loss mask without re-rendering.
 *
 * @example
 * const { text, response: [start, end] } = promptSpans(example);
 * text.slice(start, end) === renderPrompt(example).response; // true
 */
export function promptSpans(
  example: Pick<InstructionExample, "instruction" | "input" | "output" | "meta">,
  format: PromptFormat = "alpaca",
): PromptSpans {
  const { prompt, response } = renderPrompt(example, format);
  return { text: prompt + response, response: [prompt.length, prompt.length + response.length] };
}
