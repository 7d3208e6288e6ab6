/**
 * The language-neutral sentence structure every language realises: a clause
 * of constituents (subject, verb group, object, adjuncts) over leaves that
 * name lexemes, people, places or numbers. Word order, morphology and script
 * are decided only when a language realises it (realize.ts), so one structure
 * gives every language's sentence and the word alignment between them.
 */

/** What a leaf names: a lexeme, a world name (person or place), a number, or a comma. */
export const LeafKind = { Word: 0, Name: 1, Number: 2, Comma: 3 } as const;
export type LeafKind = (typeof LeafKind)[keyof typeof LeafKind];

export interface Leaf {
  readonly kind: LeafKind;
  /** Lexeme id, name index or the number itself. */
  readonly value: number;
  /** 0 base form, 1 inflected (plural noun, 3rd-singular verb). */
  readonly form: 0 | 1;
  /** Position-independent id, unique in its clause: the alignment key. */
  readonly id: number;
}

/** A noun phrase: "the [adjs] head [of possessor]". */
export interface NounPhrase {
  readonly type: "np";
  readonly det?: Leaf | undefined;
  readonly adjs: readonly Leaf[];
  /** One leaf, or a fixed group such as a coordination ("A and B"). */
  readonly head: readonly Leaf[];
  /** "of X": a genitive possessor. */
  readonly possessor?: { readonly of: Leaf; readonly np: NounPhrase } | undefined;
}

/** A prepositional phrase; a language may realise it as a postposition or a case suffix. */
export interface PrepPhrase {
  readonly type: "pp";
  readonly prep: Leaf;
  readonly np: NounPhrase;
}

/** Words whose internal order every language keeps ("34 years old", "how old"). */
export interface FixedPhrase {
  readonly type: "fixed";
  readonly leaves: readonly Leaf[];
}

export type Constituent = NounPhrase | PrepPhrase | FixedPhrase;

/** Which slot a wh-question word stands in. */
export type QuestionSlot = "subj" | "obj" | "adj";

export interface Clause {
  readonly subj?: Constituent | undefined;
  /** The verb group in English order ("often eats", "was born"). */
  readonly verb: readonly Leaf[];
  /** True when verb[0] is a copula/auxiliary that English inverts in questions. */
  readonly inverts: boolean;
  /** Object, or the predicate of a copula. */
  readonly obj?: Constituent | undefined;
  /** True when obj is a predicate (no accusative case). */
  readonly predicate: boolean;
  readonly adjuncts: readonly Constituent[];
  /** For wh-questions: the slot the wh-phrase fills (it is the constituent there). */
  readonly question?: { readonly slot: QuestionSlot; readonly adjunct: number; readonly aux?: Leaf | undefined } | undefined;
  /** A tail after a comma, in fixed order ("A or B"). */
  readonly tail?: FixedPhrase | undefined;
}

/**
 * Makes leaves with clause-unique ids. One builder per clause.
 *
 * @example
 * const b = new LeafBuilder();
 * const np = b.np([b.name(3)]);
 */
export class LeafBuilder {
  private next = 0;

  word(lexeme: number, form: 0 | 1 = 0): Leaf {
    return { kind: LeafKind.Word, value: lexeme, form, id: this.next++ };
  }

  name(index: number): Leaf {
    return { kind: LeafKind.Name, value: index, form: 0, id: this.next++ };
  }

  number(n: number): Leaf {
    return { kind: LeafKind.Number, value: n, form: 0, id: this.next++ };
  }

  comma(): Leaf {
    return { kind: LeafKind.Comma, value: 0, form: 0, id: this.next++ };
  }

  np(head: Leaf[], det?: Leaf, adjs: Leaf[] = [], possessor?: { of: Leaf; np: NounPhrase }): NounPhrase {
    return { type: "np", det, adjs, head, possessor };
  }

  pp(prep: number, np: NounPhrase): PrepPhrase {
    return { type: "pp", prep: this.word(prep), np };
  }

  fixed(leaves: Leaf[]): FixedPhrase {
    return { type: "fixed", leaves };
  }

  /** "the/a N of X" with the possessor as a noun phrase. */
  of(np: NounPhrase, ofLexeme: number, possessor: NounPhrase): NounPhrase {
    return { ...np, possessor: { of: this.word(ofLexeme), np: possessor } };
  }
}
