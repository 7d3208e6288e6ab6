/**
 * ISO 639-1 codes to the names used in instructions, and the Unicode script
 * each language is normally written in (for the script filter).
 */
import { DataError } from "../util/errors.js";

export interface LanguageInfo {
  code: string;
  /** English name, as used in English instructions ("Chinese"). */
  name: string;
  /** Endonym ("中文"). */
  native: string;
  /** Unicode Script property values the language is written in (regex `\p{Script=...}`). */
  scripts: string[];
}

const TABLE: LanguageInfo[] = [
  { code: "en", name: "English", native: "English", scripts: ["Latin"] },
  { code: "ar", name: "Arabic", native: "العربية", scripts: ["Arabic"] },
  { code: "el", name: "Greek", native: "Ελληνικά", scripts: ["Greek"] },
  { code: "hi", name: "Hindi", native: "हिन्दी", scripts: ["Devanagari"] },
  { code: "tr", name: "Turkish", native: "Türkçe", scripts: ["Latin"] },
  { code: "vi", name: "Vietnamese", native: "Tiếng Việt", scripts: ["Latin"] },
  { code: "zh", name: "Chinese", native: "中文", scripts: ["Han"] },
  { code: "de", name: "German", native: "Deutsch", scripts: ["Latin"] },
  { code: "fr", name: "French", native: "Français", scripts: ["Latin"] },
  { code: "es", name: "Spanish", native: "Español", scripts: ["Latin"] },
  { code: "it", name: "Italian", native: "Italiano", scripts: ["Latin"] },
  { code: "pt", name: "Portuguese", native: "Português", scripts: ["Latin"] },
  { code: "ru", name: "Russian", native: "Русский", scripts: ["Cyrillic"] },
  { code: "uk", name: "Ukrainian", native: "Українська", scripts: ["Cyrillic"] },
  { code: "ja", name: "Japanese", native: "日本語", scripts: ["Han", "Hiragana", "Katakana"] },
  { code: "ko", name: "Korean", native: "한국어", scripts: ["Hangul", "Han"] },
  { code: "th", name: "Thai", native: "ไทย", scripts: ["Thai"] },
  { code: "bn", name: "Bengali", native: "বাংলা", scripts: ["Bengali"] },
  { code: "he", name: "Hebrew", native: "עברית", scripts: ["Hebrew"] },
  { code: "fa", name: "Persian", native: "فارسی", scripts: ["Arabic"] },
  { code: "sw", name: "Swahili", native: "Kiswahili", scripts: ["Latin"] },
  { code: "id", name: "Indonesian", native: "Bahasa Indonesia", scripts: ["Latin"] },
];

const BY_CODE = new Map(TABLE.map((l) => [l.code, l]));

/** The six non-English languages of the study. */
export const STUDY_LANGUAGES = ["ar", "el", "hi", "tr", "vi", "zh"] as const;

/** All languages xalign knows by code. */
export function knownLanguages(): LanguageInfo[] {
  return TABLE.map((l) => ({ ...l, scripts: [...l.scripts] }));
}

/**
 * The language record for an ISO 639-1 code (case-insensitive; a region or
 * script suffix such as "zh-CN" or "zho_Hans" is not accepted: use "zh").
 *
 * @example
 * language("zh").name; // "Chinese"
 */
export function language(code: string): LanguageInfo {
  const info = BY_CODE.get(code.toLowerCase());
  if (!info) {
    throw new DataError("XA_DATA_LANGUAGE", `unknown language code "${code}"`, {
      hint: `use an ISO 639-1 code, one of: ${TABLE.map((l) => l.code).join(", ")}`,
    });
  }
  return info;
}

/** The English name of a language ("ar" -> "Arabic"). */
export function languageName(code: string): string {
  return language(code).name;
}
