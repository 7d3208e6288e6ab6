/**
 * Realising a clause in a language: word order, adjective order,
 * adpositions or case suffixes, question formation, script and spacing. The
 * result keeps, per output word, the ids of the leaves it expresses: the exact
 * word alignment to any other language's realisation of the same clause.
 */
import type { Language } from "./language.js";
import { W } from "./lexicon.js";
import { capitalize } from "./scripts.js";
import { type Clause, type Constituent, type FixedPhrase, type Leaf, LeafKind, type NounPhrase, type PrepPhrase } from "./syntax.js";

/** One realised sentence: its text and, per word, the leaf ids it expresses. */
export interface Realized {
  readonly text: string;
  readonly words: readonly string[];
  readonly ids: readonly (readonly number[])[];
  /** Character offset of each word in text. */
  readonly starts: readonly number[];
  /** Length of each word before any suffix: the span of the word's own leaf. */
  readonly stems: readonly number[];
}

interface Unit {
  text: string;
  ids: number[];
  /** Attaches to the previous word without a space (commas). */
  glue: boolean;
  /** Length before suffixes. */
  stem: number;
}

const ARTICLES = new Set<number>([W.the, W.a]);

/**
 * Realises clauses of one world in one language.
 *
 * @example
 * const r = new Realizer(deriveLanguage(BASE_SPEC), world.names);
 * r.sentence(clause).text; // "Talo lives in Varnek."
 */
export class Realizer {
  private readonly names: string[];
  private readonly digits: string;
  constructor(
    readonly language: Language,
    worldNames: readonly string[],
  ) {
    const { spec, script } = language;
    this.digits = spec.anchors ? "0123456789" : script.digits;
    this.names = worldNames.map((n) => {
      if (spec.anchors || script.name.startsWith("latin")) return n;
      return capitalize(script.transliterate(n.toLowerCase()));
    });
  }

  private leafText(leaf: Leaf): string {
    switch (leaf.kind) {
      case LeafKind.Word:
        return (this.language.forms[leaf.value] as readonly [string, string])[leaf.form];
      case LeafKind.Name:
        return this.names[leaf.value] as string;
      case LeafKind.Number: {
        const s = String(leaf.value);
        if (this.digits === "0123456789") return s;
        let out = "";
        for (const ch of s) out += this.digits[ch.charCodeAt(0) - 48];
        return out;
      }
      default:
        return this.language.script.comma;
    }
  }

  private leaf(out: Unit[], leaf: Leaf): void {
    if (leaf.kind === LeafKind.Word && !this.language.spec.articles && ARTICLES.has(leaf.value)) return;
    const text = this.leafText(leaf);
    out.push({ text, ids: [leaf.id], glue: leaf.kind === LeafKind.Comma, stem: text.length });
  }

  private leaves(out: Unit[], leaves: readonly Leaf[]): void {
    for (const l of leaves) this.leaf(out, l);
  }

  /** Appends a suffix to the last word emitted since `from`, merging the ids. */
  private suffix(out: Unit[], from: number, suffix: string, id: number): void {
    const last = out[out.length - 1];
    if (!last || out.length <= from) return;
    last.text += suffix;
    last.ids.push(id);
  }

  private np(out: Unit[], np: NounPhrase): void {
    const { spec, caseSuffix } = this.language;
    const post = spec.adpositions === "post";
    if (np.possessor && post) {
      const start = out.length;
      this.np(out, np.possessor.np);
      const gen = caseSuffix.of;
      if (gen !== undefined) this.suffix(out, start, gen, np.possessor.of.id);
      else this.leaf(out, np.possessor.of);
    }
    if (np.det) this.leaf(out, np.det);
    if (spec.adjectives === "before") {
      this.leaves(out, np.adjs);
      this.leaves(out, np.head);
    } else {
      this.leaves(out, np.head);
      this.leaves(out, np.adjs);
    }
    if (np.possessor && !post) {
      this.leaf(out, np.possessor.of);
      this.np(out, np.possessor.np);
    }
  }

  private pp(out: Unit[], pp: PrepPhrase): void {
    const key = (this.language.forms.length > 0 && pp.prep.kind === LeafKind.Word ? PREP_KEYS[pp.prep.value] : undefined) ?? "";
    const kase = this.language.caseSuffix[key];
    if (kase !== undefined) {
      const start = out.length;
      this.np(out, pp.np);
      this.suffix(out, start, kase, pp.prep.id);
    } else if (this.language.spec.adpositions === "post") {
      this.np(out, pp.np);
      this.leaf(out, pp.prep);
    } else {
      this.leaf(out, pp.prep);
      this.np(out, pp.np);
    }
  }

  private constituent(out: Unit[], c: Constituent, objectCase: boolean): void {
    if (c.type === "np") {
      const start = out.length;
      this.np(out, c);
      const acc = this.language.caseSuffix.acc;
      if (objectCase && acc !== undefined) this.suffix(out, start, acc, -1);
    } else if (c.type === "pp") this.pp(out, c);
    else this.fixed(out, c);
  }

  private fixed(out: Unit[], f: FixedPhrase): void {
    this.leaves(out, f.leaves);
  }

  /** Realises a clause as a sentence with final punctuation. */
  sentence(clause: Clause): Realized {
    return this.finish(this.clauseUnits(clause), clause.question ? this.language.script.question : this.language.script.period);
  }

  /** Realises a fixed phrase (a list answer, say) without capital or final punctuation. */
  phrase(leaves: readonly Leaf[]): Realized {
    const out: Unit[] = [];
    this.leaves(out, leaves);
    return this.join(out, "", false);
  }

  private clauseUnits(c: Clause): Unit[] {
    const { spec } = this.language;
    const out: Unit[] = [];
    const q = c.question;
    const objCase = !c.predicate && !(q && q.slot === "obj");
    const subj = () => {
      if (c.subj) this.constituent(out, c.subj, false);
    };
    const obj = () => {
      if (c.obj) this.constituent(out, c.obj, objCase);
    };
    const adjuncts = (skip: number) => {
      c.adjuncts.forEach((a, i) => {
        if (i !== skip) this.constituent(out, a, false);
      });
    };
    const verb = (from: number) => this.leaves(out, c.verb.slice(from));
    const moved = q && q.slot !== "subj" && spec.questions !== "in-situ";
    if (moved && q) {
      const wh = q.slot === "obj" ? c.obj : c.adjuncts[q.adjunct];
      if (wh) this.constituent(out, wh, false);
    }
    const skipAdj = moved && q && q.slot === "adj" ? q.adjunct : -1;
    const objMoved = moved && q?.slot === "obj";
    const objSlot = () => {
      if (!objMoved) obj();
    };
    if (moved && spec.questions === "english") {
      // English inversion: the auxiliary (or the copula) comes before the subject.
      if (c.inverts) {
        this.leaf(out, c.verb[0] as Leaf);
        subj();
        verb(1);
      } else {
        if (q?.aux) this.leaf(out, q.aux);
        subj();
        verb(0);
      }
      objSlot();
      adjuncts(skipAdj);
    } else if (spec.order === "svo") {
      subj();
      verb(0);
      objSlot();
      adjuncts(skipAdj);
    } else if (spec.order === "sov") {
      subj();
      adjuncts(skipAdj);
      objSlot();
      verb(0);
    } else {
      verb(0);
      subj();
      objSlot();
      adjuncts(skipAdj);
    }
    if (q?.aux && spec.questions === "in-situ") this.leaf(out, q.aux);
    if (c.tail) {
      out.push({ text: this.language.script.comma, ids: [], glue: true, stem: 1 });
      this.fixed(out, c.tail);
    }
    return out;
  }

  private finish(units: Unit[], punct: string): Realized {
    return this.join(units, punct, true);
  }

  private join(units: Unit[], punct: string, capital: boolean): Realized {
    const sep = this.language.spec.spaces ? " " : "";
    const words: string[] = [];
    const ids: number[][] = [];
    const starts: number[] = [];
    const stems: number[] = [];
    let text = "";
    for (const u of units) {
      if (u.glue && words.length > 0) {
        text += u.text;
        continue;
      }
      if (words.length > 0) text += sep;
      starts.push(text.length);
      const t = capital && words.length === 0 ? capitalize(u.text) : u.text;
      text += t;
      words.push(t);
      ids.push(u.ids);
      stems.push(u.stem);
    }
    text += punct;
    return { text, words, ids, starts, stems };
  }
}

const PREP_KEYS: Record<number, string> = {
  [W.in]: "in",
  [W.at]: "at",
  [W.on]: "on",
  [W.to]: "to",
  [W.from]: "from",
  [W.with]: "with",
  [W.of]: "of",
};
