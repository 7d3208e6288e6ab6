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

/** The Alpaca-layout view of an example, with exactly the fields instruction, input, output (in that order). */
export function toAlpacaRecord(example: InstructionExample): AlpacaRecord {
  return { instruction: example.instruction, input: example.input, output: example.output };
}
