/**
 * The cross-lingual data toolkit: readers, cleaning, instruction builders,
 * prompt formats and the training encoding, mixtures, export and statistics.
 */

export { type EncodedExample, type EncodeOptions, encodeExample, IGNORE_INDEX, type PromptTokenizer } from "./encode.js";
export { type AlpacaRecord, type ChatTurn, type ExampleMeta, type InstructionExample, type TaskKind, toAlpacaRecord } from "./example.js";
export { knownLanguages, type LanguageInfo, language, languageName, STUDY_LANGUAGES } from "./languages.js";
export {
  ALPACA_PROMPT_NO_INPUT,
  ALPACA_PROMPT_WITH_INPUT,
  CHAT_SYSTEM,
  type PromptFormat,
  type RenderedPrompt,
  renderAlpaca,
  renderChat,
  renderPrompt,
} from "./prompt.js";
export { fillTemplate, TRANSLATION_TEMPLATES } from "./templates.js";
