/**
 * Named languages and preset groups. The six stand-ins keep the study's
 * languages' broad traits (script, word order, adpositions, morphology,
 * spacing) with a lexicon share that grows with their distance from English;
 * "xx" is a near-English control. The ladder changes one factor at a time.
 */
import { ConfigError } from "../util/errors.js";
import { BASE_SPEC, type LanguageSpec, validateLanguageSpec } from "./language.js";

const base = { ...BASE_SPEC, anchors: true };

/** Every named language. */
export const PRESET_LANGUAGES: Readonly<Record<string, LanguageSpec>> = {
  xx: { ...base, code: "xx", name: "near-English control", share: 0.3 },
  vi: {
    ...base,
    code: "vi",
    name: "Vietnamese-like",
    share: 0.6,
    script: "latin-vi",
    adjectives: "after",
    questions: "in-situ",
    articles: false,
  },
  el: { ...base, code: "el", name: "Greek-like", share: 0.6, script: "greek", questions: "front" },
  tr: {
    ...base,
    code: "tr",
    name: "Turkish-like",
    share: 0.7,
    script: "latin-tr",
    order: "sov",
    adpositions: "post",
    morphology: "agglutinative",
    questions: "in-situ",
    articles: false,
  },
  hi: {
    ...base,
    code: "hi",
    name: "Hindi-like",
    share: 0.8,
    script: "devanagari",
    order: "sov",
    adpositions: "post",
    questions: "in-situ",
    articles: false,
  },
  ar: { ...base, code: "ar", name: "Arabic-like", share: 0.8, script: "arabic", order: "vso", adjectives: "after", questions: "front" },
  zh: { ...base, code: "zh", name: "Chinese-like", share: 1, script: "cjk", questions: "in-situ", articles: false, spaces: false },
  // The similarity ladder: one factor at a time, nested replaced sets (same lexiconSeed).
  v30: { ...base, code: "v30", name: "ladder: 30% vocabulary", share: 0.3, seed: "ladder" },
  v60: { ...base, code: "v60", name: "ladder: 60% vocabulary", share: 0.6, seed: "ladder" },
  v100: { ...base, code: "v100", name: "ladder: 100% vocabulary", share: 1, seed: "ladder" },
  o100: {
    ...base,
    code: "o100",
    name: "ladder: 100% + SOV, postpositions, wh in situ",
    share: 1,
    seed: "ladder",
    order: "sov",
    adpositions: "post",
    questions: "in-situ",
  },
  s100: {
    ...base,
    code: "s100",
    name: "ladder: 100% + reordering + Devanagari + agglutinative",
    share: 1,
    seed: "ladder",
    order: "sov",
    adpositions: "post",
    questions: "in-situ",
    script: "devanagari",
    morphology: "agglutinative",
  },
};

/** Preset groups; any language code is also a preset of one. */
export const PRESET_GROUPS: Readonly<Record<string, readonly string[]>> = {
  paper: ["ar", "el", "hi", "tr", "vi", "zh", "xx"],
  ladder: ["v30", "v60", "v100", "o100", "s100"],
};

/**
 * The languages of a preset: a group name, a language code, or codes joined by commas.
 *
 * @example
 * presetLanguages("paper").map((l) => l.code); // ["ar", "el", "hi", "tr", "vi", "zh", "xx"]
 */
export function presetLanguages(preset: string): LanguageSpec[] {
  const codes = PRESET_GROUPS[preset] ?? preset.split(",").map((c) => c.trim());
  const known = [...Object.keys(PRESET_GROUPS), ...Object.keys(PRESET_LANGUAGES)].join(", ");
  if (codes.length === 0 || new Set(codes).size !== codes.length) {
    throw new ConfigError("XA_SYNTH_PRESET", `preset "${preset}" names no language or one twice`, {
      field: "preset",
      hint: `use one of ${known}`,
    });
  }
  return codes.map((code) => {
    const spec = PRESET_LANGUAGES[code];
    if (!spec)
      throw new ConfigError("XA_SYNTH_PRESET", `unknown preset or language "${code}"`, { field: "preset", hint: `use one of ${known}` });
    return spec;
  });
}

/** A preset name (or codes joined by commas), or custom language specs. */
export type Preset = string | readonly LanguageSpec[];

/**
 * The languages of a preset name or a list of custom specs (validated; codes unique, not "en").
 *
 * @example
 * resolvePreset([{ ...PRESET_LANGUAGES.v60, code: "v45", share: 0.45 }]);
 */
export function resolvePreset(preset: Preset): LanguageSpec[] {
  if (typeof preset === "string") return presetLanguages(preset);
  if (preset.length === 0)
    throw new ConfigError("XA_SYNTH_PRESET", "the list of custom languages is empty", {
      field: "preset",
      hint: "pass at least one LanguageSpec",
    });
  const codes = new Set<string>();
  return preset.map((spec) => {
    validateLanguageSpec(spec);
    if (spec.code === "en" || codes.has(spec.code)) {
      throw new ConfigError("XA_SYNTH_PRESET", `language code "${spec.code}" is used twice (or is the base "en")`, {
        field: `language.${spec.code}.code`,
        hint: "give every derived language its own code",
      });
    }
    codes.add(spec.code);
    return { ...spec };
  });
}

/** A preset's name for manifests: the string itself, or "custom:" and the codes. */
export function presetName(preset: Preset): string {
  return typeof preset === "string" ? preset : `custom:${preset.map((s) => s.code).join(",")}`;
}
