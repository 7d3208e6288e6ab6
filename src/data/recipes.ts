/**
 * Recipes that rebuild the baselines' kinds of data from plain sentence pairs:
 * Bayling-like interactive (multi-turn) translation and Parrot-like
 * translation with hints. Both are the project's approximations of those
 * recipes, not their released data.
 */

import { DataError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { exampleLanguage } from "./builders.js";
import type { ChatTurn, InstructionExample } from "./example.js";
import { languageName } from "./languages.js";
import type { SentencePair } from "./readers/aligned.js";
import { fillTemplate, TRANSLATION_TEMPLATES } from "./templates.js";

type Pairs = AsyncIterable<Pick<SentencePair, "src" | "tgt">> | Iterable<Pick<SentencePair, "src" | "tgt">>;

/** Follow-up requests of later dialogue turns ({target}: the target language name). */
export const FOLLOW_UP_REQUESTS: readonly string[] = [
  "Now translate this one into {target} as well.",
  "Good. Please continue with the next sentence.",
  "And how would you translate this into {target}?",
  "Thanks. Translate the following sentence too.",
];

export interface InteractiveOptions {
  srcLang: string;
  tgtLang: string;
  source: string;
  /** Sentences per dialogue (>= 2); the last is the supervised turn. Default 3. */
  turns?: number;
}

/**
 * Bayling-like interactive translation: consecutive pairs form one dialogue;
 * the first user turn asks for a translation (template 0), later turns ask
 * to go on; earlier exchanges go to `meta.turns`, the last one is
 * instruction/input -> output (the supervised response). A trailing group
 * shorter than two sentences is dropped.
 *
 * @example
 * buildInteractiveTranslation(pairs, { srcLang: "en", tgtLang: "zh", source: "bayling-zh", turns: 3 });
 */
export async function* buildInteractiveTranslation(pairs: Pairs, options: InteractiveOptions): AsyncGenerator<InstructionExample> {
  const size = options.turns ?? 3;
  if (!Number.isInteger(size) || size < 2)
    throw new DataError("XA_DATA_RECIPE", `turns must be an integer >= 2, got ${size}`, { field: "turns" });
  const first = fillTemplate(TRANSLATION_TEMPLATES[0] as string, languageName(options.srcLang), languageName(options.tgtLang));
  const followUps = FOLLOW_UP_REQUESTS.map((t) => fillTemplate(t, languageName(options.srcLang), languageName(options.tgtLang)));
  const lang = exampleLanguage(options.srcLang, options.tgtLang);
  let group: Pick<SentencePair, "src" | "tgt">[] = [];
  let n = 0;
  let dialogues = 0;
  const emit = (): InstructionExample => {
    const turns: ChatTurn[] = [];
    const requestFor = (i: number): string => (i === 0 ? first : (followUps[(dialogues + i - 1) % followUps.length] as string));
    for (let i = 0; i < group.length - 1; i++) {
      const p = group[i] as Pick<SentencePair, "src" | "tgt">;
      turns.push({ user: `${requestFor(i)}\n\n${p.src}`, assistant: p.tgt });
    }
    const last = group[group.length - 1] as Pick<SentencePair, "src" | "tgt">;
    const example: InstructionExample = {
      id: `${options.source}:${n++}`,
      instruction: requestFor(group.length - 1),
      input: last.src,
      output: last.tgt,
      lang,
      source: options.source,
      task: "interactive-translation",
      meta: { turns, direction: `${options.srcLang}-${options.tgtLang}` },
    };
    dialogues++;
    group = [];
    return example;
  };
  for await (const pair of pairs) {
    group.push(pair);
    if (group.length === size) yield emit();
  }
  if (group.length >= 2) yield emit();
}

export type HintKind = "plain" | "no-errors" | "with-errors";

/** The hint lines appended to the input (Parrot's wording of the idea, the project's text). */
export const HINTS: Readonly<Record<Exclude<HintKind, "plain">, string>> = {
  "no-errors": "### Hint: A translation with no errors could be",
  "with-errors": "### Hint: A translation with major errors could be",
};

export interface HintedOptions {
  srcLang: string;
  tgtLang: string;
  source: string;
  /** Relative weights of the kinds. Default plain 1, no-errors 1, with-errors 1. */
  mix?: Partial<Record<HintKind, number>>;
  /** Seed for the kind of each pair and the corruptions. */
  seed: number | string;
}

/**
 * A deliberately flawed translation: one word (or, for text without spaces,
 * a quarter of the characters) dropped and two neighbours swapped.
 */
export function corruptTranslation(text: string, rng: Rng): string {
  const spaced = text.includes(" ");
  const units = spaced ? text.split(" ") : [...text];
  if (units.length < 3) return spaced ? `${text} ${text}` : text + text;
  const drop = spaced ? 1 : Math.max(1, Math.floor(units.length / 4));
  const at = rng.int(units.length - drop + 1);
  units.splice(at, drop);
  if (units.length >= 2) {
    const i = rng.int(units.length - 1);
    const tmp = units[i] as string;
    units[i] = units[i + 1] as string;
    units[i + 1] = tmp;
  }
  return units.join(spaced ? " " : "");
}

/**
 * Parrot-like translation with hints: each pair becomes a plain instruction,
 * one whose input ends with a "no errors" hint (output: the reference), or one
 * with a "major errors" hint (output: a corrupted translation), drawn by the
 * seeded weights; templates round-robin as in the translation builder.
 *
 * @example
 * buildHintedTranslation(pairs, { srcLang: "en", tgtLang: "zh", source: "parrot-zh", seed: 1 });
 */
export async function* buildHintedTranslation(pairs: Pairs, options: HintedOptions): AsyncGenerator<InstructionExample> {
  const mix = { plain: 1, "no-errors": 1, "with-errors": 1, ...options.mix };
  const kinds: HintKind[] = ["plain", "no-errors", "with-errors"];
  const weights = kinds.map((k) => mix[k]);
  if (!weights.every((w) => w >= 0) || !(weights.reduce((a, b) => a + b, 0) > 0)) {
    throw new DataError("XA_DATA_RECIPE", "hint mix weights must be non-negative with a positive sum", { field: "mix" });
  }
  const rng = new Rng(options.seed).fork(`hints:${options.source}`);
  const instructions = TRANSLATION_TEMPLATES.map((t) => fillTemplate(t, languageName(options.srcLang), languageName(options.tgtLang)));
  const lang = exampleLanguage(options.srcLang, options.tgtLang);
  let n = 0;
  for await (const pair of pairs) {
    const kind = kinds[rng.weighted(weights)] as HintKind;
    const t = n % instructions.length;
    yield {
      id: `${options.source}:${n++}`,
      instruction: instructions[t] as string,
      input: kind === "plain" ? pair.src : `${pair.src}\n\n${HINTS[kind]}`,
      output: kind === "with-errors" ? corruptTranslation(pair.tgt, rng) : pair.tgt,
      lang,
      source: options.source,
      task: "hinted-translation",
      meta: { template: t, hint: kind, direction: `${options.srcLang}-${options.tgtLang}` },
    };
  }
}
