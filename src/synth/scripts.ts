/**
 * Writing systems for derived languages: each script renders invented
 * syllables, transliterates kept English words and names letter by letter,
 * and has its own digits and punctuation. Text is stored in logical order;
 * Arabic is right-to-left only on display, as in any Unicode file.
 */
import { hashString } from "../util/rng.js";

export type ScriptName = "latin" | "latin-tr" | "latin-vi" | "greek" | "cyrillic" | "devanagari" | "arabic" | "cjk";

export const SCRIPT_NAMES: readonly ScriptName[] = ["latin", "latin-tr", "latin-vi", "greek", "cyrillic", "devanagari", "arabic", "cjk"];

export interface Script {
  readonly name: ScriptName;
  readonly rtl: boolean;
  /** Onsets, vowels and codas, already in the script; a syllable is compose(o, v, c). */
  readonly onsets: readonly string[];
  readonly vowels: readonly string[];
  readonly codas: readonly string[];
  compose(onset: string, vowel: string, coda: string): string;
  /** Fixes a finished word (Greek final sigma). */
  finish(word: string): string;
  /** Writes a lower-case English word in this script. */
  transliterate(word: string): string;
  /** The ten digits; ASCII for scripts that use them. */
  readonly digits: string;
  readonly period: string;
  readonly question: string;
  readonly comma: string;
}

const ASCII_DIGITS = "0123456789";
const plain = (o: string, v: string, c: string): string => o + v + c;
const same = (w: string): string => w;

function letterMap(table: Record<string, string>): (word: string) => string {
  return (word) => {
    let out = "";
    for (const ch of word) out += table[ch] ?? ch;
    return out;
  };
}

const LATIN: Script = {
  name: "latin",
  rtl: false,
  onsets: ["p", "t", "k", "b", "d", "g", "m", "n", "s", "l", "r", "v", "z", "h", "f"],
  vowels: ["a", "e", "i", "o", "u"],
  codas: ["", "", "", "n", "r", "s", "l", "m", "k"],
  compose: plain,
  finish: same,
  transliterate: same,
  digits: ASCII_DIGITS,
  period: ".",
  question: "?",
  comma: ",",
};

const LATIN_TR: Script = {
  ...LATIN,
  name: "latin-tr",
  onsets: ["p", "t", "k", "b", "d", "g", "m", "n", "s", "l", "r", "v", "z", "h", "y", "ş", "ç", "c"],
  vowels: ["a", "e", "i", "ı", "o", "ö", "u", "ü"],
  codas: ["", "", "", "n", "r", "k", "l", "m", "ş", "z"],
};

const LATIN_VI: Script = {
  ...LATIN,
  name: "latin-vi",
  onsets: ["b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "ng", "nh", "ph", "t", "th", "tr", "v", "x", "s", "kh"],
  vowels: ["a", "à", "á", "ả", "ạ", "ă", "â", "ấ", "e", "ê", "ề", "i", "ì", "o", "ô", "ồ", "ơ", "ở", "u", "ư", "ứ", "y"],
  codas: ["", "", "n", "ng", "c", "t", "m", "p", "nh"],
};

const GREEK_LETTERS: Record<string, string> = {
  a: "α",
  b: "β",
  c: "κ",
  d: "δ",
  e: "ε",
  f: "φ",
  g: "γ",
  h: "χ",
  i: "ι",
  j: "τζ",
  k: "κ",
  l: "λ",
  m: "μ",
  n: "ν",
  o: "ο",
  p: "π",
  q: "κ",
  r: "ρ",
  s: "σ",
  t: "τ",
  u: "ου",
  v: "β",
  w: "ου",
  x: "ξ",
  y: "ι",
  z: "ζ",
};

const greekFinalSigma = (w: string): string => (w.endsWith("σ") ? `${w.slice(0, -1)}ς` : w);

const GREEK: Script = {
  name: "greek",
  rtl: false,
  onsets: ["π", "τ", "κ", "μπ", "ντ", "γκ", "μ", "ν", "σ", "λ", "ρ", "β", "ζ", "χ", "φ", "θ", "δ", "γ"],
  vowels: ["α", "ε", "ι", "ο", "ου", "η", "ω", "ά", "έ", "ί", "ό"],
  codas: ["", "", "", "ν", "σ", "ρ"],
  compose: plain,
  finish: greekFinalSigma,
  transliterate: (w) => greekFinalSigma(letterMap(GREEK_LETTERS)(w)),
  digits: ASCII_DIGITS,
  period: ".",
  question: ";",
  comma: ",",
};

const CYRILLIC_LETTERS: Record<string, string> = {
  a: "а",
  b: "б",
  c: "к",
  d: "д",
  e: "е",
  f: "ф",
  g: "г",
  h: "х",
  i: "и",
  j: "дж",
  k: "к",
  l: "л",
  m: "м",
  n: "н",
  o: "о",
  p: "п",
  q: "к",
  r: "р",
  s: "с",
  t: "т",
  u: "у",
  v: "в",
  w: "в",
  x: "кс",
  y: "й",
  z: "з",
};

const CYRILLIC: Script = {
  name: "cyrillic",
  rtl: false,
  onsets: ["п", "т", "к", "б", "д", "г", "м", "н", "с", "л", "р", "в", "з", "х", "ж", "ш", "ч"],
  vowels: ["а", "е", "и", "о", "у", "ы", "я"],
  codas: ["", "", "", "н", "р", "в", "й", "к"],
  compose: plain,
  finish: same,
  transliterate: letterMap(CYRILLIC_LETTERS),
  digits: ASCII_DIGITS,
  period: ".",
  question: "?",
  comma: ",",
};

const DEVA_CONSONANTS: Record<string, string> = {
  b: "ब",
  c: "क",
  d: "द",
  f: "फ",
  g: "ग",
  h: "ह",
  j: "ज",
  k: "क",
  l: "ल",
  m: "म",
  n: "न",
  p: "प",
  q: "क",
  r: "र",
  s: "स",
  t: "त",
  v: "व",
  w: "व",
  x: "क्स",
  z: "ज़",
};
const DEVA_VOWELS: Record<string, [string, string]> = {
  a: ["अ", ""],
  e: ["ए", "े"],
  i: ["इ", "ि"],
  o: ["ओ", "ो"],
  u: ["उ", "ु"],
  y: ["इ", "ि"],
};

function devanagariTransliterate(word: string): string {
  let out = "";
  const chars = [...word];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    const vowel = DEVA_VOWELS[ch];
    if (vowel) {
      out += vowel[0];
      continue;
    }
    const consonant = DEVA_CONSONANTS[ch] ?? ch;
    const next = DEVA_VOWELS[chars[i + 1] ?? ""];
    if (next) {
      out += consonant + next[1];
      i++;
    } else {
      out += `${consonant}्`;
    }
  }
  return out;
}

const DEVANAGARI: Script = {
  name: "devanagari",
  rtl: false,
  onsets: ["क", "त", "प", "ब", "द", "ग", "म", "न", "स", "ल", "र", "व", "ज", "ह", "च", "श", "ट", "भ"],
  vowels: ["", "ा", "ि", "ी", "ु", "ू", "े", "ो", "ै"],
  codas: ["", "", "", "ं", "न्", "र्"],
  compose: plain,
  finish: same,
  transliterate: devanagariTransliterate,
  digits: "०१२३४५६७८९",
  period: "।",
  question: "?",
  comma: ",",
};

const ARABIC_LETTERS: Record<string, string> = {
  a: "ا",
  b: "ب",
  c: "ك",
  d: "د",
  e: "ي",
  f: "ف",
  g: "غ",
  h: "ه",
  i: "ي",
  j: "ج",
  k: "ك",
  l: "ل",
  m: "م",
  n: "ن",
  o: "و",
  p: "ب",
  q: "ق",
  r: "ر",
  s: "س",
  t: "ت",
  u: "و",
  v: "ف",
  w: "و",
  x: "كس",
  y: "ي",
  z: "ز",
};

const ARABIC: Script = {
  name: "arabic",
  rtl: true,
  onsets: ["ب", "ت", "ك", "د", "ج", "م", "ن", "س", "ل", "ر", "ف", "ز", "ه", "ق", "ش", "ع", "ح", "خ", "ص", "ط"],
  vowels: ["", "", "ا", "ي", "و"],
  codas: ["", "", "ن", "ر", "ل", "م", "ت"],
  compose: plain,
  finish: same,
  transliterate: letterMap(ARABIC_LETTERS),
  digits: "٠١٢٣٤٥٦٧٨٩",
  period: ".",
  question: "؟",
  comma: "،",
};

/** A fixed pool of Han characters standing for syllables (CJK-like: one syllable, one character). */
const HAN_POOL: readonly string[] = Array.from({ length: 480 }, (_, i) => String.fromCodePoint(0x4e00 + ((i * 7919 + 101) % 20902)));

function cjkTransliterate(word: string): string {
  const chunks = word.match(/[^aeiouy]*[aeiouy]+[^aeiouy]?(?![aeiouy])|[^aeiouy]+/g) ?? [word];
  return chunks.map((c) => HAN_POOL[240 + (hashString(c) % 240)]).join("");
}

const CJK: Script = {
  name: "cjk",
  rtl: false,
  onsets: HAN_POOL.slice(0, 240),
  vowels: [""],
  codas: [""],
  compose: plain,
  finish: same,
  transliterate: cjkTransliterate,
  digits: "〇一二三四五六七八九",
  period: "。",
  question: "？",
  comma: "，",
};

const SCRIPTS: Record<ScriptName, Script> = {
  latin: LATIN,
  "latin-tr": LATIN_TR,
  "latin-vi": LATIN_VI,
  greek: GREEK,
  cyrillic: CYRILLIC,
  devanagari: DEVANAGARI,
  arabic: ARABIC,
  cjk: CJK,
};

/** The script record for a name (names are validated by the language spec). */
export function script(name: ScriptName): Script {
  return SCRIPTS[name];
}

/** Upper-cases the first character (a no-op in scripts without case). */
export function capitalize(text: string): string {
  const first = text.codePointAt(0);
  if (first === undefined) return text;
  const ch = String.fromCodePoint(first);
  return ch.toUpperCase() + text.slice(ch.length);
}
