/**
 * The cross-lingual data toolkit: readers, cleaning, instruction builders,
 * prompt formats and the training encoding, mixtures, export and statistics.
 */
export {
  buildCrossLingualGeneral,
  buildGeneralInstructions,
  buildQaInstructions,
  buildTranslationInstructions,
  type CrossLingualGeneralOptions,
  type Direction,
  exampleLanguage,
  type GeneralOptions,
  QA_INSTRUCTIONS,
  type QaOptions,
  TranslationInstructionBuilder,
  type TranslationOptions,
} from "./builders.js";
export {
  type CleanCounts,
  type CleanOptions,
  cleanPairs,
  FILTER_NAMES,
  type FilterName,
  hash53,
  normalizeForDedupe,
  PairCleaner,
  pairHash,
} from "./clean.js";
export { type EncodedExample, type EncodeOptions, encodeExample, IGNORE_INDEX, type PromptTokenizer } from "./encode.js";
export {
  type AlpacaRecord,
  type ChatTurn,
  type ExampleMeta,
  foldedInput,
  type InstructionExample,
  type TaskKind,
  toAlpacaRecord,
} from "./example.js";
export { readExamples, toAlpacaJson, toJsonl, writeAlpacaJson, writeJsonl } from "./export.js";
export { knownLanguages, type LanguageInfo, language, languageName, STUDY_LANGUAGES } from "./languages.js";
export { type LineBatch, readLineBatches, readLines } from "./lines.js";
export { type Manifest, type SplitCounts, splitCounts, writeMixture } from "./manifest.js";
export {
  type BuildOptions,
  type BuildProgress,
  buildMixture,
  DEFAULT_MAX_INVALID,
  type MixtureResult,
  type SourceSummary,
} from "./mixture.js";
export {
  ALPACA_PROMPT_NO_INPUT,
  ALPACA_PROMPT_WITH_INPUT,
  CHAT_SYSTEM,
  type PromptFormat,
  type PromptSpans,
  promptSpans,
  type RenderedPrompt,
  renderAlpaca,
  renderChat,
  renderPrompt,
} from "./prompt.js";
export {
  type AlignedRow,
  readAligned,
  readAlignedBatches,
  readMosesPairBatches,
  readMosesPairs,
  type SentencePair,
} from "./readers/aligned.js";
export { readAlpacaJson } from "./readers/alpaca.js";
export { type AlpacaFields, type FieldOptions, getField, pickFields, toAlpacaRecords, toSentencePairs } from "./readers/fields.js";
export { FLORES_CODES, type FloresRow, floresFile, readFlores } from "./readers/flores.js";
export { readJsonArray } from "./readers/json-array.js";
export { type JsonRecord, readJsonl } from "./readers/jsonl.js";
export { type ParquetOptions, readParquet } from "./readers/parquet.js";
export { mlqaLanguages, type QaRecord, readSquad, type SquadOptions } from "./readers/squad.js";
export { readTsvPairs, type TsvOptions } from "./readers/tsv.js";
export {
  buildHintedTranslation,
  buildInteractiveTranslation,
  corruptTranslation,
  FOLLOW_UP_REQUESTS,
  HINTS,
  type HintedOptions,
  type HintKind,
  type InteractiveOptions,
} from "./recipes.js";
export { type ReadOptions, ReadReport } from "./report.js";
export { allocate, seededOrder, temperatureWeights } from "./sampling.js";
export {
  type CleanSpec,
  CleanSpecSchema,
  loadMixtureSpec,
  type MixtureSpec,
  MixtureSpecSchema,
  parseMixtureSpec,
  type SourceSpec,
  SourceSpecSchema,
} from "./spec.js";
export { approximateTokens, computeStats, DataStats, type StatsOptions, type StatsRow } from "./stats.js";
export { fillTemplate, TRANSLATION_TEMPLATES } from "./templates.js";
