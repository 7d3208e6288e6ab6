/**
 * The competence probe: plain-text QA accuracy of a (not instruction-tuned)
 * model per language, next to the chance level, to see whether pretraining
 * taught it a language at all. The prompt is the passage followed by the
 * question, exactly the plain-text form pretraining documents use (the
 * model writes the separator itself), and an
 * answer counts when the gold answer is contained in the first sentence the
 * model writes (the study's "gold answer contained in the output" score).
 */
import { DataError } from "../util/errors.js";

/** The SQuAD-like file `xalign synth build` writes (qa/xquad.<lang>.json). */
export interface SynthQaSet {
  language: string;
  chance: number;
  data: {
    title: string;
    paragraphs: {
      context: string;
      qas: {
        id: string;
        question: string;
        answers: { text: string; answer_start: number }[];
        chance?: number;
        /** Counterfactual sets: the answer the world's own facts give (what a model answering from memory says). */
        memorised?: string;
      }[];
    }[];
  }[];
}

export interface ProbeResult {
  language: string;
  questions: number;
  correct: number;
  accuracy: number;
  /** Share whose first sentence is exactly the gold answer. */
  exact: number;
  /**
   * Counterfactual sets only: share of the questions whose world answer differs from the passage's that
   * were answered with the world's (memorised) value.
   */
  memorised?: number;
  /** The set's chance level: the expected score of a type-correct guess from the passage. */
  chance: number;
}

export interface ProbeOptions {
  /** Prompts per answer() call (default 32). */
  batchSize?: number;
  /** Use at most this many questions per set. */
  limit?: number;
}

/**
 * The plain-text probe prompt: passage, separator, question. No separator
 * follows the question: in pretraining text the answer's first token carries
 * its own leading space ("? ▁Zulel"), so a prompt ending in a space would ask
 * the model to continue from a lone "▁" token it has rarely seen (a probe that
 * did so measured 0% for a model that answers type-correctly without it).
 */
export function probePrompt(context: string, question: string, spaced: boolean): string {
  const sep = spaced ? " " : "";
  return `${context}${sep}${question}`;
}

/** The first sentence of a model's continuation (up to . ? 。 ？ ; । ؟ or a newline). */
export function firstSentence(output: string): string {
  const m = output.match(/^[^\n.?。？;।؟]*/u);
  return (m?.[0] ?? output).trim();
}

/**
 * Probes plain-text QA per language. `answer` maps prompts to continuations
 * (wire a model's greedy generation to it).
 *
 * @example
 * const sets = ["en", "zh"].map((l) => JSON.parse(readFileSync(`out/qa/xquad.${l}.json`, "utf8")));
 * const results = await competenceProbe(sets, async (prompts) => prompts.map(() => "Fumen"));
 * // [{ language: "en", accuracy: 0.1, chance: 0.31, ... }, ...]
 */
export async function competenceProbe(
  sets: readonly SynthQaSet[],
  answer: (prompts: string[]) => Promise<string[]>,
  options: ProbeOptions = {},
): Promise<ProbeResult[]> {
  const batch = options.batchSize ?? 32;
  const results: ProbeResult[] = [];
  for (const set of sets) {
    if (!set || !Array.isArray(set.data)) {
      throw new DataError("XA_SYNTH_QA", "a QA set has no data array", {
        hint: "pass the parsed qa/xquad.<lang>.json files of `xalign synth build`",
      });
    }
    const spaced = !/\p{Script=Han}/u.test(set.data[0]?.paragraphs[0]?.context ?? "");
    const items: { prompt: string; gold: string; memorised: string | undefined }[] = [];
    for (const doc of set.data) {
      for (const p of doc.paragraphs) {
        for (const q of p.qas) {
          const gold = q.answers[0]?.text ?? "";
          const memorised = q.memorised !== undefined && q.memorised !== gold ? q.memorised : undefined;
          items.push({ prompt: probePrompt(p.context, q.question, spaced), gold, memorised });
        }
      }
    }
    const used = options.limit !== undefined ? items.slice(0, options.limit) : items;
    let correct = 0;
    let exact = 0;
    let recalled = 0;
    let recallable = 0;
    for (let i = 0; i < used.length; i += batch) {
      const chunk = used.slice(i, i + batch);
      const outputs = await answer(chunk.map((c) => c.prompt));
      if (outputs.length !== chunk.length) {
        throw new DataError("XA_SYNTH_PROBE", `answer() returned ${outputs.length} outputs for ${chunk.length} prompts`, {
          hint: "return one continuation per prompt",
        });
      }
      chunk.forEach((c, k) => {
        const said = firstSentence(outputs[k] ?? "");
        if (c.gold !== "" && said.includes(c.gold)) correct++;
        if (c.gold !== "" && said === c.gold) exact++;
        if (c.memorised !== undefined) {
          recallable++;
          if (said.includes(c.memorised)) recalled++;
        }
      });
    }
    results.push({
      language: set.language,
      questions: used.length,
      correct,
      accuracy: used.length ? correct / used.length : 0,
      exact: used.length ? exact / used.length : 0,
      ...(recallable > 0 ? { memorised: recalled / recallable } : {}),
      chance: set.chance,
    });
  }
  return results;
}
