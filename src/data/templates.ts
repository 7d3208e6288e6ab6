/**
 * Paraphrases of "Translate the following sentences from {source} to
 * {target}." for translation instructions. The study's code had 33 and used
 * them round-robin in training and template 0 at test time; these 33 are the
 * project's own wording. Template 0 is the canonical sentence.
 */
export const TRANSLATION_TEMPLATES: readonly string[] = [
  "Translate the following sentences from {source} to {target}.",
  "Please translate these sentences from {source} into {target}.",
  "Render the following {source} text in {target}.",
  "Convert the sentences below from {source} to {target}.",
  "What is the {target} translation of the following {source} sentences?",
  "Give a {target} translation of this {source} text.",
  "Translate this passage from {source} into {target}.",
  "Rewrite the following {source} sentences in {target}.",
  "Provide the {target} version of the {source} text below.",
  "Turn the following {source} sentences into {target}.",
  "Translate from {source} to {target}:",
  "Express the following {source} sentences in {target}.",
  "How would you say the following {source} sentences in {target}?",
  "Produce a faithful {target} translation of the following {source} text.",
  "Translate the {source} input into fluent {target}.",
  "I need these {source} sentences in {target}. Please translate them.",
  "Could you translate the following text from {source} to {target}?",
  "Here is some {source} text. Translate it into {target}.",
  "Change the language of the following sentences from {source} to {target}.",
  "Write the following {source} sentences in {target}, keeping their meaning.",
  "Carry the meaning of this {source} text over into {target}.",
  "Translate the given {source} sentences to {target}.",
  "Your task: translate the following from {source} into {target}.",
  "Read the {source} sentences below and write them in {target}.",
  "Give me the {target} for the following {source} text.",
  "Translate the text below, which is in {source}, into {target}.",
  "Make a {target} translation of these {source} sentences.",
  "Put the following {source} sentences into {target}.",
  "Translate into {target} the following {source} sentences.",
  "Offer an accurate {target} rendering of the {source} text that follows.",
  "From {source} to {target}, translate the following sentences.",
  "The following sentences are in {source}. Translate them to {target}.",
  "Translate the sentences below into {target}; they are written in {source}.",
];

/**
 * Fills a template's {source} and {target} with language names.
 *
 * @example
 * fillTemplate(TRANSLATION_TEMPLATES[0], "English", "Chinese");
 * // "Translate the following sentences from English to Chinese."
 */
export function fillTemplate(template: string, source: string, target: string): string {
  return template.replace(/\{(source|target)\}/g, (_, key: string) => (key === "source" ? source : target));
}
