/**
 * The synthetic multilingual world: a base language over a world of facts,
 * derived languages of controlled distance, and the data sets of the study
 * (parallel, Flores-like, Alpaca-like, XQuAD-like, pretraining) built from it.
 */
export { presetBpeSharing } from "./bpe-similarity.js";
export {
  buildSynthWorld,
  DEFAULT_SIZES,
  floresName,
  type ManifestFile,
  parseMix,
  parseSizes,
  presetSimilarity,
  resolveMix,
  SYNTH_FORMAT,
  type SynthBuildOptions,
  type SynthManifest,
  type SynthSizes,
} from "./build.js";
export { type AnswerType, Grammar, type Mark, type Question, type Sentence } from "./grammar.js";
export {
  BASE_SPEC,
  deriveLanguage,
  type Language,
  type LanguageSpec,
  type QuestionStyle,
  validateLanguageSpec,
  type WordOrder,
} from "./language.js";
export { LEXICON, type Lexeme, W } from "./lexicon.js";
export { PRESET_GROUPS, PRESET_LANGUAGES, type Preset, presetLanguages, presetName, resolvePreset } from "./presets.js";
export { competenceProbe, firstSentence, type ProbeOptions, type ProbeResult, probePrompt, type SynthQaSet } from "./probe.js";
export { type Realized, Realizer } from "./realize.js";
export { orderBySimilarity, similarityTable } from "./report.js";
export { SCRIPT_NAMES, type ScriptName } from "./scripts.js";
export { alignmentLinks, commonTokens, crossings, measureSimilarity, type Similarity } from "./similarity.js";
export { SynthWorld } from "./synth-world.js";
export {
  type AlpacaItem,
  type InstructionKind,
  type InstructionPlan,
  parallelSentence,
  planInstruction,
  planQaPassage,
  pretrainDocument,
  type QuestionOrder,
  renderInstruction,
  renderPassage,
} from "./tasks.js";
export {
  DEFAULT_WORLD,
  type FreshNames,
  freshNamePool,
  generateWorld,
  type Person,
  type Place,
  RELATIONS,
  type Relation,
  type World,
  type WorldSizes,
} from "./world.js";
