/**
 * Flores-style evaluation sets: one file per language, line i of every file
 * the same sentence (Flores-101 `devtest/zho_simpl.devtest`, Flores-200
 * `devtest/zho_Hans.devtest`).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DataError } from "../../util/errors.js";
import type { ReadOptions } from "../report.js";
import { readAligned } from "./aligned.js";

/** Flores-101 and Flores-200 file codes for ISO 639-1 codes. */
export const FLORES_CODES: Record<string, { flores101: string; flores200: string }> = {
  en: { flores101: "eng", flores200: "eng_Latn" },
  ar: { flores101: "ara", flores200: "arb_Arab" },
  el: { flores101: "ell", flores200: "ell_Grek" },
  hi: { flores101: "hin", flores200: "hin_Deva" },
  tr: { flores101: "tur", flores200: "tur_Latn" },
  vi: { flores101: "vie", flores200: "vie_Latn" },
  zh: { flores101: "zho_simpl", flores200: "zho_Hans" },
  de: { flores101: "deu", flores200: "deu_Latn" },
  fr: { flores101: "fra", flores200: "fra_Latn" },
  es: { flores101: "spa", flores200: "spa_Latn" },
  ru: { flores101: "rus", flores200: "rus_Cyrl" },
  ja: { flores101: "jpn", flores200: "jpn_Jpan" },
  ko: { flores101: "kor", flores200: "kor_Hang" },
  sw: { flores101: "swh", flores200: "swh_Latn" },
};

/**
 * Finds a language's file in a Flores directory: `<dir>/<split>/<code>.<split>`
 * or `<dir>/<code>.<split>`, with the Flores-101 or Flores-200 code.
 *
 * @example
 * floresFile("flores101_dataset", "zh", "devtest"); // ".../devtest/zho_simpl.devtest"
 */
export function floresFile(dir: string, lang: string, split: "dev" | "devtest"): string {
  const codes = FLORES_CODES[lang];
  const names = codes ? [codes.flores101, codes.flores200] : [lang];
  const candidates = names.flatMap((n) => [join(dir, split, `${n}.${split}`), join(dir, `${n}.${split}`)]);
  const found = candidates.find((p) => existsSync(p));
  if (!found)
    throw new DataError("XA_DATA_NOT_FOUND", `no Flores ${split} file for "${lang}"`, {
      file: dir,
      hint: `looked for ${candidates.join(", ")}`,
    });
  return found;
}

/** One multi-way aligned Flores sentence. */
export interface FloresRow {
  line: number;
  /** Text per language code. */
  texts: Record<string, string>;
}

/**
 * Reads Flores files in lockstep; a file with a different line count is an error.
 *
 * @example
 * for await (const row of readFlores({ en: "devtest/eng.devtest", zh: "devtest/zho_simpl.devtest" })) console.log(row.texts.zh);
 */
export async function* readFlores(files: Record<string, string>, options: ReadOptions = {}): AsyncGenerator<FloresRow> {
  const langs = Object.keys(files);
  for await (const row of readAligned(
    langs.map((l) => files[l] as string),
    options,
  )) {
    const texts: Record<string, string> = {};
    langs.forEach((l, i) => {
      texts[l] = row.texts[i] as string;
    });
    yield { line: row.line, texts };
  }
}
