/**
 * The data sets of the world, language-neutral first (sentences, passages,
 * questions), then realised per language: parallel pairs, a Flores-like
 * held-out set, Alpaca-like instructions, XQuAD-like QA and the pretraining
 * corpus. Every generator takes its own forked Rng, so sizing one part never
 * shifts another.
 */
import { ConfigError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { type AnswerType, Grammar, type Question, type Sentence } from "./grammar.js";
import { W } from "./lexicon.js";
import type { Realized, Realizer } from "./realize.js";
import { type Leaf, LeafBuilder } from "./syntax.js";
import { type FreshNames, type Person, RELATIONS, type Relation, type World, withFreshFacts } from "./world.js";

/** A passage realised in one language, with each sentence's character offset. */
export interface RenderedPassage {
  readonly text: string;
  readonly sentences: readonly Realized[];
  readonly offsets: readonly number[];
}

/** The separator between sentences (and between passage, question and answer). */
export function separator(r: Realizer): string {
  return r.language.spec.spaces ? " " : "";
}

/** Realises a passage's sentences and joins them. */
export function renderPassage(r: Realizer, sentences: readonly Sentence[]): RenderedPassage {
  const sep = separator(r);
  const out: Realized[] = [];
  const offsets: number[] = [];
  let text = "";
  for (const s of sentences) {
    if (out.length > 0) text += sep;
    offsets.push(text.length);
    const real = r.sentence(s.clause);
    out.push(real);
    text += real.text;
  }
  return { text, sentences: out, offsets };
}

/**
 * Where leaf `id` of sentence `index` is in the passage: the leaf's own text
 * (a case suffix after it is not part of the answer) and its start.
 */
export function locateLeaf(p: RenderedPassage, index: number, id: number): { text: string; start: number } {
  const s = p.sentences[index] as Realized;
  const w = s.ids.findIndex((ids) => ids[0] === id);
  if (w < 0) throw new Error(`synth: leaf ${id} not realised in sentence ${index}`);
  const word = s.words[w] as string;
  return { text: word.slice(0, s.stems[w]), start: (p.offsets[index] as number) + (s.starts[w] as number) };
}

/** One question over a passage, language-neutral: where its answer is and its chance level. */
export interface QaQuestion {
  readonly question: Question;
  /** Sentence of the passage holding the answer, and the answer's leaf id there. */
  readonly sentence: number;
  readonly leaf: number;
  /** 1 / (distinct values of the answer's type in the passage). */
  readonly chance: number;
}

export interface QaPassage {
  readonly sentences: readonly Sentence[];
  readonly questions: readonly QaQuestion[];
}

/** The questions a passage can answer unambiguously, one per stated fact. */
export function passageQuestions(g: Grammar, sentences: readonly Sentence[], rng: Rng): QaQuestion[] {
  const distinct = new Map<AnswerType, Set<number>>();
  for (const s of sentences) {
    for (const m of s.marks) {
      let set = distinct.get(m.type);
      if (!set) distinct.set(m.type, (set = new Set()));
      set.add(m.key);
    }
  }
  const out: QaQuestion[] = [];
  const asked = new Set<string>();
  sentences.forEach((s, index) => {
    if (!s.fact) return;
    const { person, relation } = s.fact;
    let alt = (relation === "owns" || relation === "likes") && rng.float() < 0.4;
    if (alt && !uniqueWho(g.world, sentences, person, relation)) alt = false;
    const q = g.question(person, relation, alt);
    const key = `${q.type}:${q.person}:${relation}:${alt}`;
    if (asked.has(key)) return;
    const mark = s.marks.find((m) => m.type === q.type && m.key === q.key);
    if (!mark) return;
    asked.add(key);
    out.push({ question: q, sentence: index, leaf: mark.id, chance: 1 / (distinct.get(q.type)?.size ?? 1) });
  });
  return out;
}

/** "Who likes fish?" is fair only if no other stated fact of that relation has the same value. */
function uniqueWho(world: World, sentences: readonly Sentence[], person: number, relation: Relation): boolean {
  const me = world.people[person] as Person;
  const value = (p: Person) => (relation === "owns" ? p.object * 1000 + p.color : p.food);
  return !sentences.some(
    (s) => s.fact && s.fact.relation === relation && s.fact.person !== person && value(world.people[s.fact.person] as Person) === value(me),
  );
}

/** A parallel sentence: a fact (70%), an event (20%) or a place description (10%), from the train people. */
export function parallelSentence(g: Grammar, rng: Rng): Sentence {
  const pool = g.world.trainPeople;
  const r = rng.float();
  if (r < 0.7) return g.fact(rng.choice(pool), RELATIONS[rng.int(RELATIONS.length)] as Relation, rng);
  if (r < 0.9) {
    const p = rng.choice(pool);
    return g.event(p, (g.world.people[p] as Person).friend, rng);
  }
  return g.placeFact(rng.int(g.world.places.length));
}

/** Distinct held-out facts for the Flores-like sets: dev first, then devtest. */
export function heldOutFacts(world: World, rng: Rng, dev: number, devtest: number): { person: number; relation: Relation }[][] {
  const all: { person: number; relation: Relation }[] = [];
  for (const p of world.heldOutPeople) for (const relation of RELATIONS) all.push({ person: p, relation });
  if (dev + devtest > all.length) {
    throw new ConfigError(
      "XA_SYNTH_SIZE",
      `dev (${dev}) + devtest (${devtest}) sentences need more held-out facts than the world has (${all.length})`,
      {
        field: "sizes.dev",
        hint: `lower dev/devtest or raise heldOutPeople (each held-out person gives ${RELATIONS.length} facts)`,
      },
    );
  }
  rng.shuffle(all);
  return [all.slice(0, dev), all.slice(dev, dev + devtest)];
}

/** The kinds of Alpaca-like instruction the world yields, all with checkable answers. */
export type InstructionKind = "qa" | "sentence" | "list" | "count" | "compare" | "repeat";

/** A language-neutral instruction: clauses for the instruction, a passage input, an answer. */
export interface InstructionPlan {
  readonly kind: InstructionKind;
  readonly instruction: readonly Sentence["clause"][];
  readonly passage: readonly Sentence[];
  /** For qa: the question under the passage. */
  readonly question?: QaQuestion | undefined;
  /** The answer: a leaf of the passage, a phrase, a sentence of the passage, or a new sentence. */
  readonly answer:
    | { readonly sentence: number; readonly leaf: number }
    | { readonly phrase: readonly Leaf[] }
    | { readonly repeat: number }
    | { readonly clause: Sentence["clause"] };
}

function imperative(verb: number, obj: ReturnType<LeafBuilder["np"]>, b: LeafBuilder, adjuncts: ReturnType<LeafBuilder["pp"]>[] = []) {
  return { verb: [b.word(verb)], obj, adjuncts, inverts: false, predicate: false };
}

const theText = (b: LeafBuilder) => b.np([b.word(W.text)], b.word(W.the));

/** Plans one instruction from the train people. */
export function planInstruction(g: Grammar, rng: Rng): InstructionPlan {
  const pool = g.world.trainPeople;
  const r = rng.float();
  const b = new LeafBuilder();
  if (r < 0.1) {
    const passage = g.passage(pool, rng, true);
    const names = uniquePeople(passage);
    const leaves: Leaf[] = [];
    names.forEach((p, i) => {
      if (i > 0) leaves.push(i === names.length - 1 ? b.word(W.and) : b.comma());
      leaves.push(b.name((g.world.people[p] as Person).name));
    });
    const instruction = imperative(W.list, b.np([b.word(W.people, 1)], b.word(W.the)), b, [b.pp(W.in, theText(b))]);
    return { kind: "list", instruction: [instruction], passage, answer: { phrase: leaves } };
  }
  if (r < 0.2) {
    const passage = g.passage(pool, rng, true);
    const n = uniquePeople(passage).length;
    const q = {
      subj: b.fixed([b.word(W.how), b.word(W.many), b.word(W.people, 1)]),
      verb: [b.word(W.are)],
      inverts: true,
      predicate: false,
      adjuncts: [b.pp(W.in, theText(b))],
      question: { slot: "subj" as const, adjunct: -1 },
    };
    return { kind: "count", instruction: [q], passage, answer: { phrase: [new LeafBuilder().number(n)] } };
  }
  if (r < 0.3) {
    const passage = [...g.passage(pool, rng, true)];
    const people = uniquePeople(passage);
    let [x, y] = [people[0] as number, people[1] as number];
    if (people.length < 2 || (g.world.people[x] as Person).age === (g.world.people[y] as Person).age) {
      x = passage.find((s) => s.fact)?.fact?.person ?? x;
      y = (g.world.people[x] as Person).friend;
    }
    for (const p of [x, y]) {
      if (!passage.some((s) => s.fact?.person === p && s.fact.relation === "age"))
        passage.splice(rng.int(passage.length + 1), 0, g.fact(p, "age", rng));
    }
    const px = g.world.people[x] as Person;
    const py = g.world.people[y] as Person;
    const older = px.age >= py.age ? x : y;
    const which = rng.float() < 0.5;
    const q = {
      subj: b.fixed([b.word(W.who)]),
      verb: [b.word(W.is)],
      inverts: true,
      obj: b.fixed([b.word(which ? W.older : W.younger)]),
      predicate: true,
      adjuncts: [],
      question: { slot: "subj" as const, adjunct: -1 },
      tail: b.fixed([b.name(px.name), b.word(W.or), b.name(py.name)]),
    };
    const answer = which === (older === x) ? x : y;
    if (px.age === py.age) return planInstruction(g, rng);
    return {
      kind: "compare",
      instruction: [q],
      passage,
      answer: { phrase: [new LeafBuilder().name((g.world.people[answer] as Person).name)] },
    };
  }
  if (r < 0.4) {
    const passage = g.passage(pool, rng, true);
    const first = rng.float() < 0.5;
    const sentence = b.np([b.word(W.sentence)], b.word(W.the), [b.word(first ? W.first : W.last)], { of: b.word(W.of), np: theText(b) });
    return {
      kind: "repeat",
      instruction: [imperative(W.repeat, sentence, b)],
      passage,
      answer: { repeat: first ? 0 : passage.length - 1 },
    };
  }
  for (;;) {
    const passage = g.passage(pool, rng, true);
    const questions = passageQuestions(g, passage, rng);
    if (questions.length === 0) continue;
    const question = rng.choice(questions);
    if (r < 0.55) {
      // Rewriting: answer with the fact restated in its plainest phrasing.
      const { person, relation } = question.question;
      const use = imperative(W.use, b.np([b.word(W.sentence)], b.word(W.a)), b);
      const answerQ = imperative(W.answer, b.np([b.word(W.question)], b.word(W.the)), b);
      return {
        kind: "sentence",
        instruction: [answerQ, use],
        passage,
        question,
        answer: { clause: g.fact(person, relation, rng, 0).clause },
      };
    }
    // One plain instruction dominates, so "the" QA instruction of a language is well defined (the most frequent one).
    const variant = rng.weighted([0.6, 0.2, 0.2]);
    const answerQ = imperative(W.answer, b.np([b.word(W.question)], b.word(W.the)), b);
    const instruction =
      variant === 0
        ? [answerQ]
        : variant === 1
          ? [imperative(W.read, theText(b), b), answerQ]
          : [imperative(W.answer, b.np([b.word(W.question)], b.word(W.the)), b, [b.pp(W.with, b.np([b.word(W.word)], b.word(W.a)))])];
    return { kind: "qa", instruction, passage, question, answer: { sentence: question.sentence, leaf: question.leaf } };
  }
}

function uniquePeople(passage: readonly Sentence[]): number[] {
  const seen: number[] = [];
  for (const s of passage) for (const m of s.marks) if (m.type === "person" && !seen.includes(m.key)) seen.push(m.key);
  return seen;
}

/** An Alpaca record. */
export interface AlpacaItem {
  instruction: string;
  input: string;
  output: string;
}

/** Realises an instruction plan in one language. */
export function renderInstruction(r: Realizer, plan: InstructionPlan): AlpacaItem {
  const sep = separator(r);
  const instruction = plan.instruction.map((c) => r.sentence(c).text).join(sep);
  const passage = renderPassage(r, plan.passage);
  const input = plan.question ? `${passage.text}\n${r.sentence(plan.question.question.clause).text}` : passage.text;
  const a = plan.answer;
  const output =
    "leaf" in a
      ? locateLeaf(passage, a.sentence, a.leaf).text
      : "phrase" in a
        ? r.phrase(a.phrase).text
        : "clause" in a
          ? r.sentence(a.clause).text
          : (passage.sentences[a.repeat] as Realized).text;
  return { instruction, input, output };
}

/** A QA passage from the held-out people, with at least one question. */
export function planQaPassage(g: Grammar, rng: Rng, maxQuestions = 3): QaPassage {
  for (;;) {
    const sentences = g.passage(g.world.heldOutPeople, rng, false);
    const all = passageQuestions(g, sentences, rng);
    if (all.length === 0) continue;
    const questions = rng.shuffle(all).slice(0, 1 + rng.int(maxQuestions));
    return { sentences, questions };
  }
}

/**
 * A pretraining document: a passage from the train people, sometimes followed
 * by questions and answers. With `freshShare` > 0 that share of the QA
 * documents states freshly drawn facts of its people (the names are the
 * world's, the values are not), so only reading the passage answers them.
 * With `freshNames` those people also get names from that block (invented
 * people, as the held-out probe's are to the model); `r` must then know them.
 */
export function pretrainDocument(
  g: Grammar,
  r: Realizer,
  rng: Rng,
  qaShare: number,
  freshShare = 0,
  questions = 2,
  order: QuestionOrder = "passage",
  freshNames?: FreshNames,
): string {
  if (freshShare > 0 || questions !== 2 || order !== "passage") {
    const qa = rng.float() < qaShare;
    const fresh = qa && rng.float() < freshShare;
    const grammar = fresh ? new Grammar(withFreshFacts(g.world, rng.fork(`fresh-${rng.nextU32()}`), freshNames)) : g;
    const sentences = grammar.passage(g.world.trainPeople, rng, true);
    return qa ? qaDocument(grammar, r, rng, sentences, questions, order) : renderPassage(r, sentences).text;
  }
  // The original draw order (worlds built before fresh documents existed stay byte-identical).
  const sentences = g.passage(g.world.trainPeople, rng, true);
  if (rng.float() >= qaShare) return renderPassage(r, sentences).text;
  return qaDocument(g, r, rng, sentences);
}

/**
 * The order of a QA pretraining document's questions. "passage": the first facts, in the order the passage
 * states them (the original worlds); then the k-th question's answer is always the k-th fact's value, and a
 * model can answer by position without binding the question's person (issue 16, deviation 9). "random": a
 * random subset of the passage's questions in random order, like the held-out sets' one question per passage.
 */
export type QuestionOrder = "passage" | "random";

/** A passage followed by up to `questions` of its questions, each with its answer. */
function qaDocument(
  g: Grammar,
  r: Realizer,
  rng: Rng,
  sentences: readonly Sentence[],
  questions = 2,
  order: QuestionOrder = "passage",
): string {
  const passage = renderPassage(r, sentences);
  const sep = separator(r);
  let text = passage.text;
  const all = passageQuestions(g, sentences, rng);
  for (const q of (order === "random" ? rng.shuffle(all) : all).slice(0, questions)) {
    text += `${sep}${r.sentence(q.question.clause).text}${sep}${locateLeaf(passage, q.sentence, q.leaf).text}${r.language.script.period}`;
  }
  return text;
}

/**
 * A counterfactual QA passage: train people (whose facts pretraining states)
 * with freshly drawn facts, and the same passage with the world's facts, drawn
 * from the same random stream so the two differ only in the values. A model
 * that answers the fresh passage with the world's value answers from memory.
 */
export function planCounterfactualPassage(
  g: Grammar,
  rng: Rng,
  maxQuestions = 3,
): { fresh: QaPassage; world: readonly Sentence[]; grammar: Grammar } {
  for (;;) {
    const seed = rng.nextU32();
    const grammar = new Grammar(withFreshFacts(g.world, new Rng(seed).fork("values")));
    const sentences = grammar.passage(g.world.trainPeople, new Rng(seed), false);
    const world = g.passage(g.world.trainPeople, new Rng(seed), false);
    const all = passageQuestions(grammar, sentences, rng);
    if (all.length === 0) continue;
    const questions = rng.shuffle(all).slice(0, 1 + rng.int(maxQuestions));
    return { fresh: { sentences, questions }, world, grammar };
  }
}
