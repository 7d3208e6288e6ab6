/**
 * The world the languages talk about: people and places with facts. People
 * are split into a training part and a held-out part before anything is
 * written, and friendships pair people inside one part, so no held-out fact
 * can appear in training data.
 */
import { ConfigError } from "../util/errors.js";
import type { Rng } from "../util/rng.js";
import { COLORS, FOODS, GEO, JOBS, LEXICON, MONTHS, OBJECTS, PLACE_TYPES, SIZES } from "./lexicon.js";

/** The facts the grammar states about a person; each is one fact per person. */
export const RELATIONS = ["home", "job", "age", "owns", "likes", "friend", "born"] as const;
export type Relation = (typeof RELATIONS)[number];

export interface Person {
  readonly index: number;
  /** Index into World.names. */
  readonly name: number;
  readonly home: number;
  readonly job: number;
  readonly age: number;
  readonly color: number;
  readonly object: number;
  readonly food: number;
  /** Person index of the friend (symmetric). */
  readonly friend: number;
  readonly month: number;
  readonly heldOut: boolean;
}

export interface Place {
  readonly index: number;
  readonly name: number;
  readonly type: number;
  readonly size: number;
  readonly geo: number;
}

export interface WorldSizes {
  /** People in the world (at least 4). */
  people: number;
  /** Of those, held out for evaluation (at least 4, even). */
  heldOutPeople: number;
  places: number;
}

export const DEFAULT_WORLD: WorldSizes = { people: 1500, heldOutPeople: 300, places: 120 };

export interface World {
  readonly sizes: WorldSizes;
  /** Person and place names (Latin, capitalised), people first. */
  readonly names: readonly string[];
  readonly people: readonly Person[];
  readonly places: readonly Place[];
  readonly trainPeople: readonly number[];
  readonly heldOutPeople: readonly number[];
}

const ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "j"];
const VOWELS = ["a", "e", "i", "o", "u"];
const CODAS = ["n", "r", "k", "l", "m", "s", "t", "d"];

/** Syllables of a person's name (a place's get a coda too). */
const PERSON_SYLLABLES = 2;

/** Every lexicon word form, lower-cased: no name may spell one. */
function lexiconForms(): Set<string> {
  return new Set(LEXICON.flatMap((l) => l.forms.map((f) => f.toLowerCase())));
}

function makeNames(rng: Rng, count: number, syllables: number, coda: boolean, taken: Set<string>): string[] {
  const out: string[] = [];
  while (out.length < count) {
    let w = "";
    for (let i = 0; i < syllables; i++) w += rng.choice(ONSETS) + rng.choice(VOWELS);
    if (coda) w += rng.choice(CODAS);
    if (taken.has(w)) continue;
    taken.add(w);
    out.push(w.charAt(0).toUpperCase() + w.slice(1));
  }
  return out;
}

function checkSizes(s: WorldSizes): void {
  const bad = (field: string, msg: string, hint: string) => {
    throw new ConfigError("XA_SYNTH_SIZE", msg, { field: `world.${field}`, hint });
  };
  for (const k of ["people", "heldOutPeople", "places"] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 0) bad(k, `${k} must be a non-negative integer, got ${s[k]}`, "use a whole number");
  }
  if (s.people > 5000) bad("people", `${s.people} people is more than the name space allows (5000)`, "use fewer people");
  if (s.places < 4 || s.places > 2000) bad("places", `places must be in [4, 2000], got ${s.places}`, "use e.g. 120");
  if (s.heldOutPeople < 4 || s.heldOutPeople % 2 !== 0)
    bad("heldOutPeople", `heldOutPeople must be even and at least 4, got ${s.heldOutPeople}`, "use e.g. 300");
  if (s.people - s.heldOutPeople < 4 || (s.people - s.heldOutPeople) % 2 !== 0) {
    bad(
      "people",
      `people (${s.people}) must exceed heldOutPeople (${s.heldOutPeople}) by an even number of at least 4`,
      "raise people or lower heldOutPeople",
    );
  }
}

/**
 * Generates the world: names, facts, the train / held-out split and friendships.
 *
 * @example
 * const world = generateWorld(new Rng(1).fork("world"));
 * world.people.length; // 1500
 */
export function generateWorld(rng: Rng, sizes: WorldSizes = DEFAULT_WORLD): World {
  checkSizes(sizes);
  const taken = lexiconForms();
  const personNames = makeNames(rng.fork("person-names"), sizes.people, PERSON_SYLLABLES, false, taken);
  const placeNames = makeNames(rng.fork("place-names"), sizes.places, 2, true, taken);
  const names = [...personNames, ...placeNames];
  const places: Place[] = placeNames.map((_, i) => {
    const r = rng.fork(`place:${i}`);
    return { index: i, name: sizes.people + i, type: r.choice(PLACE_TYPES), size: r.choice(SIZES), geo: r.choice(GEO) };
  });
  const order = rng.fork("split").shuffle(Array.from({ length: sizes.people }, (_, i) => i));
  const heldOut = order.slice(0, sizes.heldOutPeople).sort((a, b) => a - b);
  const train = order.slice(sizes.heldOutPeople).sort((a, b) => a - b);
  const friend = new Array<number>(sizes.people);
  for (const [label, group] of [
    ["train", train],
    ["held-out", heldOut],
  ] as const) {
    const shuffled = rng.fork(`friends:${label}`).shuffle([...group]);
    for (let i = 0; i + 1 < shuffled.length; i += 2) {
      friend[shuffled[i] as number] = shuffled[i + 1] as number;
      friend[shuffled[i + 1] as number] = shuffled[i] as number;
    }
  }
  const heldOutSet = new Set(heldOut);
  const people: Person[] = personNames.map((_, i) => {
    const r = rng.fork(`person:${i}`);
    return {
      index: i,
      name: i,
      home: r.int(sizes.places),
      job: r.choice(JOBS),
      age: 18 + r.int(70),
      color: r.choice(COLORS),
      object: r.choice(OBJECTS),
      food: r.choice(FOODS),
      friend: friend[i] as number,
      month: r.choice(MONTHS),
      heldOut: heldOutSet.has(i),
    };
  });
  return { sizes, names, people, places, trainPeople: train, heldOutPeople: heldOut };
}

/**
 * Names for invented people: `names` is the world's names followed by a pool of unused ones (see freshNamePool),
 * and the pool starts at `first` (the world's name count), so every world index keeps its meaning.
 */
export interface FreshNames {
  readonly names: readonly string[];
  readonly first: number;
}

/**
 * The world's names followed by every person-like name (two syllables, as the world's people have) that neither
 * the world nor the lexicon uses, the pool in an order drawn from `rng`: names for people invented per document,
 * who look to the tokenizer like held-out people (never seen elsewhere) rather than like the train people whose
 * names recur through the corpus.
 */
export function freshNamePool(world: World, rng: Rng): FreshNames {
  const taken = lexiconForms();
  for (const n of world.names) taken.add(n.toLowerCase());
  let forms = [""];
  const syllables = ONSETS.flatMap((o) => VOWELS.map((v) => o + v));
  for (let i = 0; i < PERSON_SYLLABLES; i++) forms = forms.flatMap((f) => syllables.map((x) => f + x));
  const pool = rng.shuffle(forms.filter((w) => !taken.has(w)).map((w) => w.charAt(0).toUpperCase() + w.slice(1)));
  return { names: [...world.names, ...pool], first: world.names.length };
}

/**
 * The world with each person's facts (home, job, age, colour, object, food,
 * birth month) redrawn from `rng`, lazily and once per person asked for:
 * fresh bindings for documents that must be read rather than recalled, and
 * for the counterfactual probe. Friendships and places stay; names stay too unless `names` is given, when each
 * person asked for also gets a name drawn from that block (distinct within the returned world).
 */
export function withFreshFacts(world: World, rng: Rng, names?: FreshNames): World {
  const drawn = new Map<number, Person>();
  const used = new Set<number>();
  const freshName = (n: FreshNames): number => {
    const count = n.names.length - n.first;
    if (used.size >= count) throw new RangeError(`the fresh-name pool of ${count} names is used up in one document`);
    for (;;) {
      const k = n.first + rng.int(count);
      if (!used.has(k)) {
        used.add(k);
        return k;
      }
    }
  };
  const people = new Proxy(world.people as Person[], {
    get(target, prop, receiver) {
      if (typeof prop !== "string" || !/^\d+$/.test(prop)) return Reflect.get(target, prop, receiver);
      const i = Number(prop);
      const base = target[i];
      if (!base) return base;
      let p = drawn.get(i);
      if (!p) {
        p = {
          ...base,
          ...(names ? { name: freshName(names) } : {}),
          home: rng.int(world.places.length),
          job: rng.choice(JOBS),
          age: 18 + rng.int(70),
          color: rng.choice(COLORS),
          object: rng.choice(OBJECTS),
          food: rng.choice(FOODS),
          month: rng.choice(MONTHS),
        };
        drawn.set(i, p);
      }
      return p;
    },
  });
  return { ...world, ...(names ? { names: names.names } : {}), people };
}
