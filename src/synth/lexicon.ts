/**
 * The base language's lexicon: a few hundred English words by category. Each
 * entry is one lexeme with its English forms; derived languages map lexemes,
 * never surface strings, so a word keeps its identity across languages.
 */

/** Parts of speech the grammar uses; derived languages inflect only nouns. */
export type Pos = "noun" | "verb" | "adj" | "det" | "prep" | "func" | "adv" | "wh";

export interface Lexeme {
  /** Stable key, unique in the lexicon (also the seed of the invented word). */
  readonly key: string;
  readonly pos: Pos;
  /** English forms: [base, inflected] (plural for nouns, 3rd singular for verbs). */
  readonly forms: readonly [string, string];
  /** Semantic class for the world and the question types ("job", "food", ...). */
  readonly cls: string;
}

const entries: Lexeme[] = [];
const byKey = new Map<string, number>();

function add(pos: Pos, cls: string, base: string, inflected = base, key = base): number {
  if (byKey.has(key)) throw new Error(`lexicon: duplicate key ${key}`);
  const id = entries.length;
  entries.push({ key, pos, forms: [base, inflected], cls });
  byKey.set(key, id);
  return id;
}

function nouns(cls: string, words: string): number[] {
  return words.split(" ").map((w) => {
    const [sg, pl] = w.includes("/") ? (w.split("/") as [string, string]) : [w, `${w}s`];
    return add("noun", cls, sg, pl);
  });
}

function verbs(cls: string, words: string): number[] {
  return words.split(" ").map((w) => {
    const [base, s3] = w.includes("/") ? (w.split("/") as [string, string]) : [w, `${w}s`];
    return add("verb", cls, base, s3);
  });
}

function words(pos: Pos, cls: string, list: string): number[] {
  return list.split(" ").map((w) => add(pos, cls, w));
}

/** Lexeme ids by class: the vocabulary of the world. */
export const JOBS = nouns(
  "job",
  "teacher doctor farmer baker driver singer painter writer nurse pilot cook tailor miner sailor hunter judge guard clerk dancer potter fisher builder smith barber actor poet lawyer vet",
);
export const OBJECTS = nouns(
  "object",
  "boat car house horse dog cat book lamp drum bike cart coat hat bag ring clock cup box/boxes key bed chair table kite flute map basket bell boot bowl brush/brushes candle comb fork glove jar knife/knives pen plate pot rope shoe sock spoon tent wheel",
);
export const FOODS = nouns(
  "food",
  "bread rice fish soup cheese apple milk tea honey egg bean meat cake nut corn pear plum grape carrot onion pie",
);
export const COLORS = words("adj", "color", "red blue green white black yellow brown gray pink orange");
export const SIZES = words("adj", "size", "big small old new long short heavy light cheap fine warm cold tidy dirty");
export const MONTHS = words("noun", "month", "January February March April May June July August September October November December");
export const DAYS = words("noun", "day", "Monday Tuesday Wednesday Thursday Friday Saturday Sunday");
export const PLACE_TYPES = nouns("placetype", "city/cities town village port");
export const GEO = nouns(
  "geo",
  "river sea hill forest lake desert mountain bridge market school park garden farm harbor library/libraries station temple castle",
);
export const EVENT_VERBS = verbs(
  "event",
  "buy sell find carry/carries paint build clean/cleans repair draw/draws wash/washes bring/brings cut fix/fixes fill hide lift lose move open pick pull push/pushes send show throw",
);
export const PERSON_VERBS = verbs("social", "visit meet help call/calls thank greet teach/teaches follow invite");
export const MOTION_VERBS = verbs("motion", "walk run sing swim sleep rest wait jump climb");

/** Frequent words, by English spelling. */
export const W = {
  the: add("det", "det", "the"),
  a: add("det", "det", "a", "an"),
  is: add("verb", "copula", "is", "is"),
  are: add("verb", "copula", "are", "are"),
  was: add("verb", "copula", "was", "was"),
  does: add("func", "aux", "does"),
  in: add("prep", "in", "in"),
  at: add("prep", "at", "at"),
  to: add("prep", "to", "to"),
  from: add("prep", "from", "from"),
  with: add("prep", "with", "with"),
  near: add("prep", "near", "near"),
  of: add("prep", "of", "of"),
  as: add("prep", "as", "as"),
  on: add("prep", "on", "on"),
  and: add("func", "conj", "and"),
  or: add("func", "conj", "or"),
  who: add("wh", "wh", "who"),
  what: add("wh", "wh", "what"),
  where: add("wh", "wh", "where"),
  when: add("wh", "wh", "when"),
  how: add("wh", "wh", "how"),
  many: add("wh", "wh", "many"),
  live: add("verb", "state", "live", "lives"),
  work: add("verb", "state", "work", "works"),
  have: add("verb", "state", "have", "has"),
  own: add("verb", "state", "own", "owns"),
  like: add("verb", "state", "like", "likes"),
  eat: add("verb", "state", "eat", "eats"),
  know: add("verb", "state", "know", "knows"),
  born: add("verb", "state", "born"),
  often: add("adv", "adv", "often"),
  always: add("adv", "adv", "always"),
  sometimes: add("adv", "adv", "sometimes"),
  every: add("det", "det", "every"),
  years: add("noun", "unit", "year", "years"),
  old: add("adj", "age", "old", "old", "old-age"),
  older: add("adj", "age", "older"),
  younger: add("adj", "age", "younger"),
  home: add("noun", "misc", "home"),
  job: add("noun", "misc", "job"),
  age: add("noun", "misc", "age"),
  friend: add("noun", "misc", "friend", "friends"),
  best: add("adj", "misc", "best"),
  favourite: add("adj", "misc", "favourite"),
  food: add("noun", "misc", "food"),
  color: add("noun", "misc", "color"),
  birthday: add("noun", "misc", "birthday"),
  people: add("noun", "misc", "person", "people"),
  name: add("noun", "misc", "name"),
  text: add("noun", "misc", "text"),
  question: add("noun", "misc", "question"),
  sentence: add("noun", "misc", "sentence"),
  number: add("noun", "misc", "number"),
  word: add("noun", "misc", "word"),
  use: add("verb", "task", "use"),
  first: add("adj", "misc", "first"),
  last: add("adj", "misc", "last"),
  answer: add("verb", "task", "answer"),
  read: add("verb", "task", "read"),
  repeat: add("verb", "task", "repeat"),
  list: add("verb", "task", "list"),
  count: add("verb", "task", "count"),
  write: add("verb", "task", "write"),
  morning: add("noun", "time", "morning"),
  evening: add("noun", "time", "evening"),
  day: add("noun", "time", "day"),
} as const;

/** The whole lexicon, in id order. */
export const LEXICON: readonly Lexeme[] = entries;

/** A lexeme id by its key; throws for an unknown key (a programming error). */
export function lexemeId(key: string): number {
  const id = byKey.get(key);
  if (id === undefined) throw new Error(`lexicon: unknown key ${key}`);
  return id;
}
