/**
 * Derived languages: a spec of distance settings from the base language and
 * the deterministic lexicon it yields. Which words are replaced depends only
 * on `lexiconSeed`, so with one seed the replaced set at 30% is inside the set
 * at 60% (the similarity ladder changes one factor at a time).
 */
import { ConfigError } from "../util/errors.js";
import { hashString, Rng } from "../util/rng.js";
import { LEXICON } from "./lexicon.js";
import { SCRIPT_NAMES, type Script, type ScriptName, script } from "./scripts.js";

export type WordOrder = "svo" | "sov" | "vso";
export type QuestionStyle = "english" | "front" | "in-situ";

/** The distance settings of one language. The base language is share 0, latin, svo, ... */
export interface LanguageSpec {
  /** File-name-safe code ("ar", "xx", "v30"). */
  code: string;
  /** Human name for tables ("Arabic-like"). */
  name: string;
  /** Share of the lexicon replaced by invented words, in [0, 1]. */
  share: number;
  script: ScriptName;
  order: WordOrder;
  adjectives: "before" | "after";
  adpositions: "pre" | "post";
  /** Agglutinative: case suffixes (accusative; locative, dative, ... instead of some adpositions) and plural suffix. */
  morphology: "none" | "agglutinative";
  /** English: wh-fronting with inversion and do-support; front: fronting only; in-situ: wh stays, particle at the end. */
  questions: QuestionStyle;
  /** Keep "the" and "a". */
  articles: boolean;
  /** Spaces between words (false: CJK-like). */
  spaces: boolean;
  /** Keep names and numbers identical to English (Latin letters, ASCII digits). */
  anchors: boolean;
  /** Seed of the invented word forms (default: the code). */
  seed?: string | undefined;
  /** Seed of which words are replaced; languages sharing it have nested replaced sets. */
  lexiconSeed?: string | undefined;
}

/** The base language's own spec: realising with it gives the base text. */
export const BASE_SPEC: LanguageSpec = {
  code: "en",
  name: "English (base)",
  share: 0,
  script: "latin",
  order: "svo",
  adjectives: "before",
  adpositions: "pre",
  morphology: "none",
  questions: "english",
  articles: true,
  spaces: true,
  anchors: true,
};

const CASES: Record<string, string> = { in: "loc", at: "loc", on: "loc", to: "dat", from: "abl", with: "ins", of: "gen" };

/** A derived language, ready to realise clauses. */
export interface Language {
  readonly spec: LanguageSpec;
  readonly script: Script;
  /** Surface forms per lexeme id: [base, inflected]. */
  readonly forms: readonly (readonly [string, string])[];
  /** True where the lexeme was replaced by an invented word. */
  readonly replaced: readonly boolean[];
  /** Case suffixes by English preposition key (agglutinative only), plus "acc". */
  readonly caseSuffix: Readonly<Record<string, string>>;
  readonly pluralSuffix: string;
}

function fail(field: string, message: string, hint: string): never {
  throw new ConfigError("XA_SYNTH_LANGUAGE", message, { field, hint });
}

/** Checks a spec and throws a ConfigError naming the bad field. */
export function validateLanguageSpec(spec: LanguageSpec): void {
  const at = (f: string) => `language.${spec.code ?? "?"}.${f}`;
  if (typeof spec.code !== "string" || !/^[a-z][a-z0-9-]{0,15}$/.test(spec.code)) {
    fail("language.code", `language code "${spec.code}" is not a short lower-case name`, "use letters, digits and '-' (e.g. \"v30\")");
  }
  if (typeof spec.share !== "number" || !(spec.share >= 0 && spec.share <= 1)) {
    throw new ConfigError("XA_SYNTH_SHARE", `lexicon share ${spec.share} is outside [0, 1]`, {
      field: at("share"),
      hint: "0 keeps every English word, 1 replaces every word",
    });
  }
  if (!SCRIPT_NAMES.includes(spec.script)) fail(at("script"), `unknown script "${spec.script}"`, `use one of ${SCRIPT_NAMES.join(", ")}`);
  if (!["svo", "sov", "vso"].includes(spec.order)) fail(at("order"), `unknown word order "${spec.order}"`, "use svo, sov or vso");
  if (!["before", "after"].includes(spec.adjectives))
    fail(at("adjectives"), `bad adjective order "${spec.adjectives}"`, "use before or after");
  if (!["pre", "post"].includes(spec.adpositions)) fail(at("adpositions"), `bad adpositions "${spec.adpositions}"`, "use pre or post");
  if (!["none", "agglutinative"].includes(spec.morphology))
    fail(at("morphology"), `bad morphology "${spec.morphology}"`, "use none or agglutinative");
  if (!["english", "front", "in-situ"].includes(spec.questions))
    fail(at("questions"), `bad questions "${spec.questions}"`, "use english, front or in-situ");
}

/** Replacement order of the lexicon for a seed: the first share*N lexemes are replaced. */
function replacementRank(lexiconSeed: string): number[] {
  const salt = hashString(lexiconSeed);
  const keyed = LEXICON.map((lex, id) => ({ id, h: hashString(`${salt}:${lex.key}`) }));
  keyed.sort((a, b) => a.h - b.h || a.id - b.id);
  const rank = new Array<number>(LEXICON.length);
  keyed.forEach((k, i) => {
    rank[k.id] = i;
  });
  return rank;
}

function syllableCount(english: string, rng: Rng, cjk: boolean): number {
  const base = english.length <= 3 ? 1 : english.length <= 6 ? 2 : 3;
  if (cjk) return base === 1 ? 1 : 2;
  return Math.max(1, base + (rng.float() < 0.25 ? (rng.float() < 0.5 ? -1 : 1) : 0));
}

/** An invented word: syllables from the language's own inventory subset. */
class WordMaker {
  private readonly onsets: string[];
  private readonly vowels: string[];
  private readonly codas: readonly string[];
  constructor(
    private readonly sc: Script,
    rng: Rng,
  ) {
    // Each language uses a seeded subset of its script's sounds, so two Latin languages sound different.
    const keep = (xs: readonly string[], share: number) => {
      const picked = rng.shuffle([...xs]).slice(0, Math.max(2, Math.ceil(xs.length * share)));
      return xs.filter((x) => picked.includes(x));
    };
    this.onsets = keep(sc.onsets, sc.name === "cjk" ? 1 : 0.75);
    this.vowels = keep(sc.vowels, 0.8);
    this.codas = sc.codas;
  }
  syllable(rng: Rng, final: boolean): string {
    const coda = final || rng.float() < 0.3 ? rng.choice(this.codas) : "";
    return this.sc.compose(rng.choice(this.onsets), rng.choice(this.vowels), coda);
  }
  word(rng: Rng, syllables: number): string {
    let w = "";
    for (let i = 0; i < syllables; i++) w += this.syllable(rng, i === syllables - 1);
    return this.sc.finish(w);
  }
}

/**
 * Derives a language from its spec: the lexicon, suffixes and script.
 *
 * @example
 * const zh = deriveLanguage(PRESET_LANGUAGES.zh);
 * zh.forms[W.dog][0]; // an invented two-character word
 */
export function deriveLanguage(spec: LanguageSpec): Language {
  validateLanguageSpec(spec);
  const sc = script(spec.script);
  const rank = replacementRank(spec.lexiconSeed ?? "xalign-lexicon");
  const cutoff = Math.round(spec.share * LEXICON.length);
  const root = new Rng(`synth-language:${spec.seed ?? spec.code}`);
  const maker = new WordMaker(sc, root.fork("phonology"));
  const taken = new Set<string>();
  if (sc.name.startsWith("latin")) for (const lex of LEXICON) for (const f of lex.forms) taken.add(f.toLowerCase());
  const invent = (label: string, syllables: (r: Rng) => number): string => {
    const rng = root.fork(label);
    for (let attempt = 0; ; attempt++) {
      const w = maker.word(rng, syllables(rng) + (attempt >= 20 ? 1 : 0));
      if (!taken.has(w)) {
        taken.add(w);
        return w;
      }
    }
  };
  const suffix = (label: string) => invent(`suffix:${label}`, () => 1);
  const pluralSuffix = suffix("plural");
  const caseSuffix: Record<string, string> = {};
  if (spec.morphology === "agglutinative") {
    caseSuffix.acc = suffix("acc");
    const byCase = new Map<string, string>();
    for (const [prep, kase] of Object.entries(CASES)) {
      if (!byCase.has(kase)) byCase.set(kase, suffix(kase));
      caseSuffix[prep] = byCase.get(kase) as string;
    }
  }
  const replaced = LEXICON.map((_, id) => (rank[id] as number) < cutoff);
  const forms = LEXICON.map((lex, id): [string, string] => {
    if (!replaced[id]) {
      const t = (w: string) => (sc.name.startsWith("latin") ? w : sc.transliterate(w.toLowerCase()));
      return [t(lex.forms[0]), t(lex.forms[1])];
    }
    const stem = invent(`word:${lex.key}`, (r) => syllableCount(lex.forms[0], r, sc.name === "cjk"));
    const capital = /^[A-Z]/.test(lex.forms[0]) && sc.name !== "cjk";
    const base = capital ? stem.charAt(0).toUpperCase() + stem.slice(1) : stem;
    return [base, lex.pos === "noun" && lex.forms[1] !== lex.forms[0] ? base + pluralSuffix : base];
  });
  return { spec, script: sc, forms, replaced, caseSuffix, pluralSuffix };
}
