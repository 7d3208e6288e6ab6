/**
 * Instruction builders: translation pairs, general tasks (Alpaca) and QA,
 * each a stream transform into {@link InstructionExample}s.
 */
import { DataError } from "../util/errors.js";
import type { AlpacaRecord, InstructionExample } from "./example.js";
import { languageName } from "./languages.js";
import type { SentencePair } from "./readers/aligned.js";
import type { QaRecord } from "./readers/squad.js";
import { fillTemplate, TRANSLATION_TEMPLATES } from "./templates.js";

export type Direction = "forward" | "reverse" | "both";

export interface TranslationOptions {
  /** ISO code of the pair's `src` side (the study: "en"). */
  srcLang: string;
  /** ISO code of the pair's `tgt` side (the study: the non-English language). */
  tgtLang: string;
  /** forward = src->tgt (the study's choice, en->X), reverse = tgt->src, both = one of each per pair. Default forward. */
  direction?: Direction;
  /** "round-robin" cycles through the templates (training); a number fixes one (0 at test time). Default round-robin. */
  template?: "round-robin" | number;
  /** Templates with {source} and {target}; default the project's 33. */
  templates?: readonly string[];
  /** Source name for ids and the `source` field. */
  source: string;
  /** Language the example is tagged with; default the non-English side. */
  lang?: string;
  /** Language names for the templates, for codes without an ISO 639 name (e.g. a synthetic language); default from the codes. */
  names?: { src?: string; tgt?: string };
}

/** The non-English side of a language pair (the study's per-language tag). */
export function exampleLanguage(srcLang: string, tgtLang: string): string {
  return srcLang === "en" ? tgtLang : srcLang;
}

/**
 * The synchronous core of the translation builder, for batch pipelines: one
 * call per pair appends one example (two for direction "both") to `out`.
 *
 * @example
 * const builder = new TranslationInstructionBuilder({ srcLang: "en", tgtLang: "zh", source: "news-zh" });
 * const out: InstructionExample[] = [];
 * for (const pair of batch) builder.add(pair, out);
 */
export class TranslationInstructionBuilder {
  private readonly forward: string[];
  private readonly reverse: string[];
  private readonly forwardTag: string;
  private readonly reverseTag: string;
  private readonly lang: string;
  private readonly source: string;
  private readonly direction: Direction;
  private readonly template: "round-robin" | number;
  private readonly count: number;
  private n = 0;

  constructor(options: TranslationOptions) {
    const { srcLang, tgtLang, direction = "forward", template = "round-robin", source } = options;
    const templates = options.templates ?? TRANSLATION_TEMPLATES;
    if (templates.length === 0) throw new DataError("XA_DATA_TEMPLATE", "no translation templates", { field: "templates" });
    if (template !== "round-robin" && !(Number.isInteger(template) && template >= 0 && template < templates.length)) {
      throw new DataError("XA_DATA_TEMPLATE", `template must be "round-robin" or an index below ${templates.length}, got ${template}`, {
        field: "template",
      });
    }
    if (!["forward", "reverse", "both"].includes(direction)) {
      throw new DataError("XA_DATA_DIRECTION", `direction must be forward, reverse or both, got ${direction}`, { field: "direction" });
    }
    this.lang = options.lang ?? exampleLanguage(srcLang, tgtLang);
    const srcName = options.names?.src ?? languageName(srcLang);
    const tgtName = options.names?.tgt ?? languageName(tgtLang);
    this.forward = templates.map((t) => fillTemplate(t, srcName, tgtName));
    this.reverse = templates.map((t) => fillTemplate(t, tgtName, srcName));
    this.forwardTag = `${srcLang}-${tgtLang}`;
    this.reverseTag = `${tgtLang}-${srcLang}`;
    this.source = source;
    this.direction = direction;
    this.template = template;
    this.count = templates.length;
  }

  /** Appends the example(s) for one pair to `out`. */
  add(pair: Pick<SentencePair, "src" | "tgt">, out: InstructionExample[]): void {
    if (this.direction !== "reverse") out.push(this.make(pair.src, pair.tgt, this.forward, this.forwardTag));
    if (this.direction !== "forward") out.push(this.make(pair.tgt, pair.src, this.reverse, this.reverseTag));
  }

  private make(input: string, output: string, instructions: string[], direction: string): InstructionExample {
    const t = this.template === "round-robin" ? this.n % this.count : this.template;
    return {
      id: `${this.source}:${this.n++}`,
      instruction: instructions[t] as string,
      input,
      output,
      lang: this.lang,
      source: this.source,
      task: "translation",
      meta: { template: t, direction },
    };
  }
}

/**
 * Translation instructions from sentence pairs: instruction = a template with
 * the language names, input = the source sentence, output = its translation.
 *
 * @example
 * for await (const ex of buildTranslationInstructions(pairs, { srcLang: "en", tgtLang: "zh", source: "news-zh" })) write(ex);
 */
export async function* buildTranslationInstructions(
  pairs: AsyncIterable<Pick<SentencePair, "src" | "tgt">> | Iterable<Pick<SentencePair, "src" | "tgt">>,
  options: TranslationOptions,
): AsyncGenerator<InstructionExample> {
  const builder = new TranslationInstructionBuilder(options);
  const out: InstructionExample[] = [];
  for await (const pair of pairs) {
    builder.add(pair, out);
    for (const ex of out) yield ex;
    out.length = 0;
  }
}

export interface GeneralOptions {
  /** Language of the records (instruction and response). */
  lang: string;
  source: string;
}

/**
 * General-task instructions with instruction and response in one language
 * (Alpaca in English: en/en; Alpaca translated into X: X/X).
 *
 * @example
 * for await (const ex of buildGeneralInstructions(alpacaRecords, { lang: "en", source: "alpaca-en" })) write(ex);
 */
export async function* buildGeneralInstructions(
  records: AsyncIterable<AlpacaRecord> | Iterable<AlpacaRecord>,
  options: GeneralOptions,
): AsyncGenerator<InstructionExample> {
  let n = 0;
  for await (const r of records) {
    yield {
      id: `${options.source}:${n++}`,
      instruction: r.instruction,
      input: r.input,
      output: r.output,
      lang: options.lang,
      source: options.source,
      task: "general",
      meta: { instructionLang: options.lang, responseLang: options.lang },
    };
  }
}

export interface CrossLingualGeneralOptions {
  /** Language of the translated records (the response language). */
  lang: string;
  source: string;
  /** Sentence appended to the English instruction; {target} is the response language. Default "Answer in {target}." */
  responseHint?: string;
  /** Name of the translated file, for the count-mismatch message. */
  file?: string;
}

/**
 * Cross-lingual general tasks: the English instruction and input, the response
 * from the same record of Alpaca translated into X (en -> X). The two streams
 * must be aligned record by record.
 *
 * @example
 * buildCrossLingualGeneral(readAlpaca("alpaca_en.json"), readAlpaca("alpaca_zh.json"), { lang: "zh", source: "alpaca-en-zh" });
 */
export async function* buildCrossLingualGeneral(
  english: AsyncIterable<AlpacaRecord> | Iterable<AlpacaRecord>,
  translated: AsyncIterable<AlpacaRecord> | Iterable<AlpacaRecord>,
  options: CrossLingualGeneralOptions,
): AsyncGenerator<InstructionExample> {
  const hint = fillTemplate(options.responseHint ?? "Answer in {target}.", "English", languageName(options.lang));
  const a = toAsyncIterator(english);
  const b = toAsyncIterator(translated);
  let n = 0;
  for (;;) {
    const [x, y] = await Promise.all([a.next(), b.next()]);
    if (x.done || y.done) {
      if (x.done !== y.done) {
        throw new DataError(
          "XA_DATA_LINE_COUNT",
          `the English and translated general-task files differ in length (one ends after ${n} records)`,
          {
            ...(options.file ? { file: options.file } : {}),
            hint: "cross-lingual pairs need the translated file to have one record per English record, in the same order",
          },
        );
      }
      return;
    }
    yield {
      id: `${options.source}:${n++}`,
      instruction: hint ? `${x.value.instruction} ${hint}` : x.value.instruction,
      input: x.value.input,
      output: y.value.output,
      lang: options.lang,
      source: options.source,
      task: "general",
      meta: { instructionLang: "en", responseLang: options.lang },
    };
  }
}

function toAsyncIterator<T>(items: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
}

/**
 * QA instructions in each language's own words (the project's own wording,
 * kept simple: answer from the passage, answer only).
 */
export const QA_INSTRUCTIONS: Readonly<Record<string, string>> = {
  en: "Answer the question based on the passage. Write only the answer.",
  ar: "أجب عن السؤال بناءً على النص. اكتب الإجابة فقط.",
  el: "Απάντησε στην ερώτηση με βάση το κείμενο. Γράψε μόνο την απάντηση.",
  hi: "अनुच्छेद के आधार पर प्रश्न का उत्तर दीजिए। केवल उत्तर लिखिए।",
  tr: "Metne dayanarak soruyu yanıtlayın. Yalnızca cevabı yazın.",
  vi: "Dựa vào đoạn văn, hãy trả lời câu hỏi. Chỉ viết câu trả lời.",
  zh: "根据文章回答问题。只写出答案。",
};

export interface QaOptions {
  source: string;
  /** "native": the instruction in the question's language (the study's setting); "en": English. Default native. */
  instructionLang?: "native" | "en";
}

/**
 * QA prompts: instruction (native language), input = passage, a blank line,
 * question; output = the first gold answer (all answers in meta.answers).
 *
 * @example
 * for await (const ex of buildQaInstructions(readSquad("xquad.ar.json", { lang: "ar" }), { source: "xquad-ar" })) write(ex);
 */
export async function* buildQaInstructions(
  records: AsyncIterable<QaRecord> | Iterable<QaRecord>,
  options: QaOptions,
): AsyncGenerator<InstructionExample> {
  let n = 0;
  for await (const r of records) {
    const key = options.instructionLang === "en" ? "en" : r.lang;
    const instruction = QA_INSTRUCTIONS[key];
    if (instruction === undefined) {
      throw new DataError("XA_DATA_LANGUAGE", `no native QA instruction for "${r.lang}"`, {
        field: "instructionLang",
        hint: `native instructions exist for ${Object.keys(QA_INSTRUCTIONS).join(", ")}; use instructionLang: en`,
      });
    }
    yield {
      id: `${options.source}:${n++}`,
      instruction,
      input: `${r.context}\n\n${r.question}`,
      output: r.answers[0] as string,
      lang: r.lang,
      source: options.source,
      task: "qa",
      meta: { qid: r.id, answers: r.answers, contextLang: r.contextLang },
    };
  }
}
