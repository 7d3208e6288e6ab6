/**
 * SQuAD-layout QA files (data -> paragraphs -> qas): SQuAD, XQuAD and MLQA.
 * These files are small (XQuAD ~1 MB a language, MLQA ~10 MB), so the file is
 * parsed whole; records are still yielded one at a time.
 */
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { DataError } from "../../util/errors.js";
import { jsonErrorOffset, lineOfOffset } from "../json-position.js";
import { emptyFile, fileSize } from "../lines.js";
import { type ReadOptions, ReadReport } from "../report.js";

/** One question with its context and gold answers. */
export interface QaRecord {
  id: string;
  title: string;
  context: string;
  question: string;
  /** Gold answer texts (first one is the reference; scoring accepts any). */
  answers: string[];
  /** Language of the question (and of the context unless contextLang says otherwise). */
  lang: string;
  contextLang: string;
}

export interface SquadOptions extends ReadOptions {
  /** Language code of the questions (and contexts); MLQA file names give it when absent. */
  lang?: string;
}

/** MLQA names its files `<split>-context-<c>-question-<q>.json`. */
export function mlqaLanguages(path: string): { contextLang: string; questionLang: string } | undefined {
  const m = /context-([a-z]{2})-question-([a-z]{2})/.exec(basename(path));
  return m ? { contextLang: m[1] as string, questionLang: m[2] as string } : undefined;
}

/**
 * Reads SQuAD / XQuAD / MLQA JSON. Malformed JSON raises XA_DATA_JSON with the
 * line; a missing field raises XA_DATA_FIELD with its path (data[0].paragraphs[1]...).
 *
 * @example
 * for await (const qa of readSquad("xquad.zh.json", { lang: "zh" })) console.log(qa.question, qa.answers[0]);
 */
export async function* readSquad(path: string, options: SquadOptions = {}): AsyncGenerator<QaRecord> {
  const report = options.report ?? new ReadReport();
  const size = await fileSize(path);
  if (size === 0) return emptyFile(path, options, report);
  const bytes = await readFile(path);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new DataError("XA_DATA_UTF8", "invalid UTF-8", { file: path, hint: "re-encode the file as UTF-8" });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const offset = jsonErrorOffset(text);
    throw new DataError("XA_DATA_JSON", `malformed JSON: ${(err as Error).message}`, {
      file: path,
      ...(offset !== undefined ? { line: lineOfOffset(text, offset) } : {}),
      hint: "the file must be one SQuAD-layout JSON object; check that the download finished",
    });
  }
  const mlqa = mlqaLanguages(path);
  const lang = options.lang ?? mlqa?.questionLang;
  if (!lang)
    throw new DataError("XA_DATA_LANGUAGE", "cannot tell the language of the questions", {
      file: path,
      hint: "pass lang (e.g. lang: zh in the mixture)",
    });
  const contextLang = mlqa?.contextLang ?? lang;
  const fieldError = (field: string, problem: string, near?: string): DataError => {
    const pos = near ? text.indexOf(near) : -1;
    return new DataError("XA_DATA_FIELD", problem, {
      file: path,
      ...(pos >= 0 ? { line: lineOfOffset(text, pos) } : {}),
      field,
      hint: "SQuAD layout is {data: [{title, paragraphs: [{context, qas: [{id, question, answers: [{text, answer_start}]}]}]}]}",
    });
  };
  const data = (doc as { data?: unknown }).data;
  if (!Array.isArray(data)) throw fieldError("data", 'missing array "data"');
  if (data.length === 0) return emptyFile(path, options, report);
  for (let a = 0; a < data.length; a++) {
    const article = data[a] as { title?: unknown; paragraphs?: unknown };
    if (!Array.isArray(article?.paragraphs)) throw fieldError(`data[${a}].paragraphs`, 'missing array "paragraphs"');
    const title = typeof article.title === "string" ? article.title : "";
    for (let p = 0; p < article.paragraphs.length; p++) {
      const para = article.paragraphs[p] as { context?: unknown; qas?: unknown };
      const at = `data[${a}].paragraphs[${p}]`;
      if (typeof para?.context !== "string") throw fieldError(`${at}.context`, 'missing string "context"');
      if (!Array.isArray(para.qas)) throw fieldError(`${at}.qas`, 'missing array "qas"');
      for (let q = 0; q < para.qas.length; q++) {
        const qa = para.qas[q] as { id?: unknown; question?: unknown; answers?: unknown };
        const field = `${at}.qas[${q}]`;
        const id = typeof qa?.id === "string" ? qa.id : String(qa?.id ?? "");
        const near = id ? JSON.stringify(id) : undefined;
        const answers = Array.isArray(qa?.answers) ? qa.answers.map((x) => (x as { text?: unknown })?.text) : undefined;
        let problem: [string, string] | undefined;
        if (!id) problem = [`${field}.id`, 'missing "id"'];
        else if (typeof qa.question !== "string") problem = [`${field}.question`, 'missing string "question"'];
        else if (!answers || answers.length === 0 || !answers.every((t) => typeof t === "string"))
          problem = [`${field}.answers`, 'missing "answers" (a non-empty list of {text, answer_start})'];
        if (problem) {
          if (options.skipInvalid) {
            report.skip("missing field", path, near ? lineOfOffset(text, text.indexOf(near)) : undefined);
            continue;
          }
          throw fieldError(problem[0], problem[1], near);
        }
        report.records++;
        yield { id, title, context: para.context, question: qa.question as string, answers: answers as string[], lang, contextLang };
      }
    }
  }
}
