/**
 * The base grammar: clauses stating facts of the world in varied phrasings,
 * events and place descriptions (distractors, never asked about), questions
 * with their answer, and passages of 3-8 sentences about a few people.
 */
import type { Rng } from "../util/rng.js";
import { DAYS, EVENT_VERBS, GEO, LEXICON, lexemeId, MOTION_VERBS, OBJECTS, PERSON_VERBS, SIZES, W } from "./lexicon.js";
import { type Clause, type Leaf, LeafBuilder, type NounPhrase } from "./syntax.js";
import { type Person, RELATIONS, type Relation, type World } from "./world.js";

/** What an extractive answer is: its type decides the chance level. */
export type AnswerType = "person" | "place" | "job" | "number" | "color" | "food" | "month" | "object";

/** A leaf that could answer a question: its type, its value and where it is. */
export interface Mark {
  readonly type: AnswerType;
  /** The value (person index, place index, lexeme id or number). */
  readonly key: number;
  /** The leaf id in the clause. */
  readonly id: number;
}

/** A clause with the marks it contains and, for facts, which fact it states. */
export interface Sentence {
  readonly clause: Clause;
  readonly marks: readonly Mark[];
  readonly fact?: { readonly person: number; readonly relation: Relation } | undefined;
}

/** A question clause and the value that answers it. */
export interface Question {
  readonly clause: Clause;
  readonly type: AnswerType;
  readonly key: number;
  readonly person: number;
  readonly relation: Relation;
}

/** Foods English uses in the plural ("likes apples", but "likes bread"). */
const COUNT_FOODS = new Set(["apple", "egg", "bean", "nut", "pear", "plum", "grape", "carrot", "onion"].map(lexemeId));

function clause(parts: Partial<Clause> & { verb: Leaf[] }): Clause {
  return { inverts: false, predicate: false, adjuncts: [], ...parts };
}

/** Builds the clauses of one world. */
export class Grammar {
  constructor(readonly world: World) {}

  private person(b: LeafBuilder, marks: Mark[], p: number): NounPhrase {
    const leaf = b.name((this.world.people[p] as Person).name);
    marks.push({ type: "person", key: p, id: leaf.id });
    return b.np([leaf]);
  }

  private place(b: LeafBuilder, marks: Mark[], c: number): NounPhrase {
    const leaf = b.name(this.world.places[c]?.name as number);
    marks.push({ type: "place", key: c, id: leaf.id });
    return b.np([leaf]);
  }

  private marked(b: LeafBuilder, marks: Mark[], type: AnswerType, lexeme: number, form: 0 | 1 = 0): Leaf {
    const leaf = b.word(lexeme, form);
    marks.push({ type, key: lexeme, id: leaf.id });
    return leaf;
  }

  /** "a" or "an", by the English spelling of the next word. */
  private a(b: LeafBuilder, next: number): Leaf {
    return b.word(W.a, /^[aeiou]/.test(LEXICON[next]?.forms[0] ?? "") ? 1 : 0);
  }

  /** "the X of P" */
  private ofPerson(b: LeafBuilder, marks: Mark[], head: Leaf, p: number, adjs: Leaf[] = []): NounPhrase {
    return b.of(b.np([head], b.word(W.the), adjs), W.of, this.person(b, marks, p));
  }

  /** A sentence stating one fact about person p, in one of several phrasings (`variant` 0 is the plainest). */
  fact(p: number, relation: Relation, rng: Rng, variant?: number): Sentence {
    const b = new LeafBuilder();
    const m: Mark[] = [];
    const who = this.world.people[p] as Person;
    const v = variant ?? rng.nextU32();
    let c: Clause;
    switch (relation) {
      case "home": {
        const place = this.world.places[who.home];
        switch (v % 5) {
          case 0:
            c = clause({ subj: this.person(b, m, p), verb: [b.word(W.live, 1)], adjuncts: [b.pp(W.in, this.place(b, m, who.home))] });
            break;
          case 4: {
            const subj = this.person(b, m, p);
            const near = b.pp(W.near, b.np([b.word(place?.geo as number)], b.word(W.the)));
            c = clause({ subj, verb: [b.word(W.live, 1)], adjuncts: [b.pp(W.in, this.place(b, m, who.home)), near] });
            break;
          }
          case 1: {
            const subj = this.person(b, m, p);
            const np = b.of(b.np([b.word(place?.type as number)], b.word(W.the)), W.of, this.place(b, m, who.home));
            c = clause({ subj, verb: [b.word(W.live, 1)], adjuncts: [b.pp(W.in, np)] });
            break;
          }
          case 2:
            c = clause({
              subj: this.ofPerson(b, m, b.word(W.home), p),
              verb: [b.word(W.is)],
              inverts: true,
              adjuncts: [b.pp(W.in, this.place(b, m, who.home))],
            });
            break;
          default:
            c = clause({
              subj: this.person(b, m, p),
              verb: [b.word(W.have, 1)],
              obj: b.np([b.word(OBJECTS[2] as number)], b.word(W.a)),
              adjuncts: [b.pp(W.in, this.place(b, m, who.home))],
            });
        }
        break;
      }
      case "job": {
        const job = () => this.marked(b, m, "job", who.job);
        const aJob = () => this.a(b, who.job);
        switch (v % 4) {
          case 0:
            c = clause({ subj: this.person(b, m, p), verb: [b.word(W.work, 1)], adjuncts: [b.pp(W.as, b.np([job()], aJob()))] });
            break;
          case 3: {
            const subj = this.person(b, m, p);
            const as = b.pp(W.as, b.np([job()], aJob()));
            c = clause({ subj, verb: [b.word(W.work, 1)], adjuncts: [as, b.pp(W.in, this.place(b, m, who.home))] });
            break;
          }
          case 1:
            c = clause({ subj: this.person(b, m, p), verb: [b.word(W.is)], inverts: true, obj: b.np([job()], aJob()), predicate: true });
            break;
          default:
            c = clause({
              subj: this.ofPerson(b, m, b.word(W.job), p),
              verb: [b.word(W.is)],
              inverts: true,
              obj: b.np([job()]),
              predicate: true,
            });
        }
        break;
      }
      case "age": {
        const n = () => {
          const leaf = b.number(who.age);
          m.push({ type: "number", key: who.age, id: leaf.id });
          return leaf;
        };
        if (v % 2 === 0) {
          const subj = this.person(b, m, p);
          c = clause({
            subj,
            verb: [b.word(W.is)],
            inverts: true,
            obj: b.fixed([n(), b.word(W.years, 1), b.word(W.old)]),
            predicate: true,
          });
        } else {
          const subj = this.ofPerson(b, m, b.word(W.age), p);
          c = clause({ subj, verb: [b.word(W.is)], inverts: true, obj: b.fixed([n()]), predicate: true });
        }
        break;
      }
      case "owns": {
        if (v % 4 !== 2) {
          const subj = this.person(b, m, p);
          const obj = b.np([this.marked(b, m, "object", who.object)], this.a(b, who.color), [this.marked(b, m, "color", who.color)]);
          const adjuncts = v % 4 === 3 ? [b.pp(W.at, b.np([b.word(W.home)]))] : [];
          c = clause({ subj, verb: [b.word(v % 4 === 1 ? W.own : W.have, 1)], obj, adjuncts });
        } else {
          const subj = this.ofPerson(b, m, this.marked(b, m, "object", who.object), p);
          c = clause({ subj, verb: [b.word(W.is)], inverts: true, obj: b.fixed([this.marked(b, m, "color", who.color)]), predicate: true });
        }
        break;
      }
      case "likes": {
        const food = () => b.np([this.marked(b, m, "food", who.food, COUNT_FOODS.has(who.food) ? 1 : 0)]);
        switch (v % 4) {
          case 0:
            c = clause({ subj: this.person(b, m, p), verb: [b.word(W.like, 1)], obj: food() });
            break;
          case 3: {
            const subj = this.person(b, m, p);
            const obj = food();
            const when = rng.float() < 0.5 ? b.np([b.word(W.day)], b.word(W.every)) : b.pp(W.in, b.np([b.word(W.morning)], b.word(W.the)));
            c = clause({ subj, verb: [b.word(W.eat, 1)], obj, adjuncts: [when] });
            break;
          }
          case 1:
            c = clause({ subj: this.person(b, m, p), verb: [b.word(W.often), b.word(W.eat, 1)], obj: food() });
            break;
          default:
            c = clause({
              subj: this.ofPerson(b, m, b.word(W.food), p, [b.word(W.favourite)]),
              verb: [b.word(W.is)],
              inverts: true,
              obj: food(),
              predicate: true,
            });
        }
        break;
      }
      case "friend": {
        switch (v % 3) {
          case 0: {
            const subj = this.person(b, m, p);
            c = clause({
              subj,
              verb: [b.word(W.is)],
              inverts: true,
              obj: b.of(b.np([b.word(W.friend)], b.word(W.a)), W.of, this.person(b, m, who.friend)),
              predicate: true,
            });
            break;
          }
          case 1: {
            const a = this.person(b, m, p).head[0] as Leaf;
            const and = b.word(W.and);
            const c2 = this.person(b, m, who.friend).head[0] as Leaf;
            c = clause({
              subj: b.np([a, and, c2]),
              verb: [b.word(W.are)],
              inverts: true,
              obj: b.np([b.word(W.friend, 1)]),
              predicate: true,
            });
            break;
          }
          default: {
            const subj = this.ofPerson(b, m, b.word(W.friend), p, [b.word(W.best)]);
            c = clause({ subj, verb: [b.word(W.is)], inverts: true, obj: this.person(b, m, who.friend), predicate: true });
          }
        }
        break;
      }
      default: {
        const month = () => b.np([this.marked(b, m, "month", who.month)]);
        if (v % 2 === 0) {
          const subj = this.person(b, m, p);
          c = clause({ subj, verb: [b.word(W.was), b.word(W.born)], inverts: true, adjuncts: [b.pp(W.in, month())] });
        } else {
          const subj = this.ofPerson(b, m, b.word(W.birthday), p);
          c = clause({ subj, verb: [b.word(W.is)], inverts: true, adjuncts: [b.pp(W.in, month())] });
        }
      }
    }
    return { clause: c, marks: m, fact: { person: p, relation } };
  }

  /** An event involving p (and maybe other), true of no fact: variety and distractors. */
  event(p: number, other: number, rng: Rng): Sentence {
    const b = new LeafBuilder();
    const m: Mark[] = [];
    const kind = rng.int(3);
    const subj = this.person(b, m, p);
    const time = () =>
      rng.float() < 0.5
        ? b.pp(W.on, b.np([b.word(rng.choice(DAYS))]))
        : b.pp(W.in, b.np([b.word(rng.float() < 0.5 ? W.morning : W.evening)], b.word(W.the)));
    let c: Clause;
    if (kind === 0) {
      const size = rng.choice(SIZES);
      const obj = b.np([this.marked(b, m, "object", rng.choice(OBJECTS))], this.a(b, size), [b.word(size)]);
      const adjuncts = [b.pp(W.in, this.place(b, m, rng.int(this.world.places.length)))];
      if (rng.float() < 0.5) adjuncts.push(time());
      c = clause({ subj, verb: [b.word(rng.choice(EVENT_VERBS), 1)], obj, adjuncts });
    } else if (kind === 1) {
      const adjuncts = [b.pp(W.at, b.np([b.word(rng.choice(GEO))], b.word(W.the)))];
      if (rng.float() < 0.5) adjuncts.push(time());
      const verb =
        rng.float() < 0.3
          ? [b.word(rng.choice([W.often, W.always, W.sometimes])), b.word(rng.choice(PERSON_VERBS), 1)]
          : [b.word(rng.choice(PERSON_VERBS), 1)];
      c = clause({ subj, verb, obj: this.person(b, m, other), adjuncts });
    } else {
      const adjuncts = [b.pp(W.near, b.np([b.word(rng.choice(GEO))], b.word(W.the)))];
      if (rng.float() < 0.5) adjuncts.push(b.pp(W.with, this.person(b, m, other)));
      if (rng.float() < 0.3) adjuncts.push(time());
      c = clause({ subj, verb: [b.word(rng.choice(MOTION_VERBS), 1)], adjuncts });
    }
    return { clause: c, marks: m };
  }

  /** "C is a big city near the river." */
  placeFact(c: number): Sentence {
    const b = new LeafBuilder();
    const m: Mark[] = [];
    const place = this.world.places[c];
    const subj = this.place(b, m, c);
    const obj = b.np([b.word(place?.type as number)], this.a(b, place?.size as number), [b.word(place?.size as number)]);
    const clauseOut = clause({
      subj,
      verb: [b.word(W.is)],
      inverts: true,
      obj,
      predicate: true,
      adjuncts: [b.pp(W.near, b.np([b.word(place?.geo as number)], b.word(W.the)))],
    });
    return { clause: clauseOut, marks: m };
  }

  /** A question about one fact of p; `alt` picks the "who ...?" form where there is one. */
  question(p: number, relation: Relation, alt: boolean): Question {
    const b = new LeafBuilder();
    const m: Mark[] = [];
    const who = this.world.people[p] as Person;
    const wh = (...lexemes: number[]) => b.fixed(lexemes.map((l) => b.word(l)));
    const out = (c: Clause, type: AnswerType, key: number): Question => ({ clause: c, type, key, person: p, relation });
    switch (relation) {
      case "home":
        return out(
          clause({
            subj: this.person(b, m, p),
            verb: [b.word(W.live)],
            adjuncts: [wh(W.where)],
            question: { slot: "adj", adjunct: 0, aux: b.word(W.does) },
          }),
          "place",
          who.home,
        );
      case "job":
        return out(
          clause({
            subj: this.ofPerson(b, m, b.word(W.job), p),
            verb: [b.word(W.is)],
            inverts: true,
            obj: wh(W.what),
            predicate: true,
            question: { slot: "obj", adjunct: -1 },
          }),
          "job",
          who.job,
        );
      case "age":
        return out(
          clause({
            subj: this.person(b, m, p),
            verb: [b.word(W.is)],
            inverts: true,
            obj: wh(W.how, W.old),
            predicate: true,
            question: { slot: "obj", adjunct: -1 },
          }),
          "number",
          who.age,
        );
      case "owns":
        if (alt) {
          const obj = b.np([b.word(who.object)], this.a(b, who.color), [b.word(who.color)]);
          return out(clause({ subj: wh(W.who), verb: [b.word(W.have, 1)], obj, question: { slot: "subj", adjunct: -1 } }), "person", p);
        }
        return out(
          clause({
            subj: this.ofPerson(b, m, b.word(who.object), p),
            verb: [b.word(W.is)],
            inverts: true,
            obj: wh(W.what, W.color),
            predicate: true,
            question: { slot: "obj", adjunct: -1 },
          }),
          "color",
          who.color,
        );
      case "likes":
        if (alt) {
          const food = b.np([b.word(who.food, COUNT_FOODS.has(who.food) ? 1 : 0)]);
          return out(
            clause({ subj: wh(W.who), verb: [b.word(W.like, 1)], obj: food, question: { slot: "subj", adjunct: -1 } }),
            "person",
            p,
          );
        }
        return out(
          clause({
            subj: this.person(b, m, p),
            verb: [b.word(W.like)],
            obj: wh(W.what),
            question: { slot: "obj", adjunct: -1, aux: b.word(W.does) },
          }),
          "food",
          who.food,
        );
      case "friend":
        return out(
          clause({
            subj: wh(W.who),
            verb: [b.word(W.is)],
            inverts: true,
            obj: b.of(b.np([b.word(W.friend)], b.word(W.a)), W.of, this.person(b, m, p)),
            predicate: true,
            question: { slot: "subj", adjunct: -1 },
          }),
          "person",
          who.friend,
        );
      default:
        return out(
          clause({
            subj: this.person(b, m, p),
            verb: [b.word(W.was), b.word(W.born)],
            inverts: true,
            adjuncts: [wh(W.when)],
            question: { slot: "adj", adjunct: 0 },
          }),
          "month",
          who.month,
        );
    }
  }

  /**
   * A passage of 3-8 sentences about 2-4 people of `pool` (train or held-out
   * people only): the same one to three relations stated for each of them, so
   * every question has same-type distractors, plus events and, when `places`
   * is true, place descriptions.
   */
  passage(pool: readonly number[], rng: Rng, places: boolean): Sentence[] {
    const k = 2 + rng.int(3);
    const first = rng.choice(pool);
    const people = [first];
    if (rng.float() < 0.5) people.push((this.world.people[first] as Person).friend);
    while (people.length < k) {
      const p = rng.choice(pool);
      if (!people.includes(p)) people.push(p);
    }
    const relations = rng.shuffle([...RELATIONS]).slice(0, 1 + rng.int(Math.min(3, Math.floor(7 / k))));
    const out: Sentence[] = [];
    const friendsStated = new Set<number>();
    for (const relation of relations) {
      for (const p of people) {
        if (relation === "friend") {
          const pair = Math.min(p, (this.world.people[p] as Person).friend);
          if (friendsStated.has(pair)) continue;
          friendsStated.add(pair);
        }
        out.push(this.fact(p, relation, rng));
      }
    }
    const extras = Math.max(3 - out.length, Math.min(8 - out.length, rng.int(3)));
    for (let i = 0; i < extras; i++) {
      if (places && rng.float() < 0.4) {
        out.push(this.placeFact((this.world.people[rng.choice(people)] as Person).home));
      } else {
        const p = rng.choice(people);
        const others = people.filter((q) => q !== p);
        out.push(this.event(p, others.length > 0 ? rng.choice(others) : (this.world.people[p] as Person).friend, rng));
      }
    }
    return rng.shuffle(out);
  }
}
