/**
 * The one record every builder produces and every consumer (trainer, exporter,
 * statistics, notebooks) reads: an instruction-tuning example in the Alpaca
 * layout, tagged with where it came from.
 *
 * @example
 * const ex: InstructionExample = {
 *   id: "wikimatrix-zh:0", instruction: "Translate the following sentences from English to Chinese.",
 *   input: "Hello.", output: "你好。", lang: "zh", source: "wikimatrix-zh", task: "translation",
 * };
 */
export interface InstructionExample {
  /** Unique within a mixture: `<source>:<index>` by convention. */
  id: string;
  instruction: string;
  /** May be empty: then the "no input" Alpaca prompt is used. */
  input: string;
  /** The response; the only part that carries loss. */
  output: string;
  /** ISO 639-1 code of the language the example trains (for translation: the non-English side). */
  lang: string;
  /** The mixture source (or corpus) name. */
  source: string;
  task: TaskKind;
  /** Extra facts: template index, direction, earlier dialogue turns (see {@link ChatTurn}), answers... */
  meta?: ExampleMeta;
}

export type TaskKind = "translation" | "general" | "qa" | "interactive-translation" | "hinted-translation" | (string & {});

/** One earlier exchange of a multi-turn dialogue (the last exchange is instruction/input → output). */
export interface ChatTurn {
  user: string;
  assistant: string;
}

export interface ExampleMeta {
  /** Earlier turns, oldest first; the chat renderer shows them before the final request. */
  turns?: ChatTurn[];
  [key: string]: unknown;
}

/** The three fields of the x-LLM / Stanford Alpaca JSON layout, nothing else. */
export interface AlpacaRecord {
  instruction: string;
  input: string;
  output: string;
}

/**
 * The input with earlier dialogue turns folded in, for layouts that have no
 * turns (Alpaca): one "User: ..." and one "Assistant: ..." line per earlier
 * turn, then a blank line and the input. Without turns, the input unchanged.
 */
export function foldedInput(example: Pick<InstructionExample, "input" | "meta">): string {
  const turns = example.meta?.turns;
  if (!turns || turns.length === 0) return example.input;
  const history = turns.map((t) => `User: ${t.user}\nAssistant: ${t.assistant}`).join("\n");
  return example.input === "" ? history : `${history}\n\n${example.input}`;
}

/**
 * The Alpaca-layout view of an example, with exactly the fields instruction,
 * input, output (in that order); earlier turns are folded into the input.
 *
 * @example
 * JSON.stringify(toAlpacaRecord(example)); // {"instruction":"...","input":"...","output":"..."}
 */
export function toAlpacaRecord(example: Pick<InstructionExample, "instruction" | "input" | "output" | "meta">): AlpacaRecord {
  return { instruction: example.instruction, input: foldedInput(example), output: example.output };
}
