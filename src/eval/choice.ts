/**
 * Multiple-choice accuracy for generated answers: the first stand-alone
 * option label in the output is the model's choice.
 */
import { AnalysisError } from "../util/errors.js";

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The first option label that stands alone in `output` (not inside a word),
 * or undefined.
 *
 * @example
 * extractChoice("The answer is (B).", ["A", "B", "C", "D"]); // "B"
 * extractChoice("Because...", ["A", "B"]); // undefined
 */
export function extractChoice(output: string, labels: readonly string[] = ["A", "B", "C", "D"]): string | undefined {
  if (labels.length === 0) throw new AnalysisError("XA_EVAL_CHOICE_LABELS", "no option labels given", { field: "labels" });
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(${labels.map(escapeRegExp).join("|")})(?![\\p{L}\\p{N}])`, "u");
  return pattern.exec(output)?.[1];
}

/**
 * Accuracy (× 100) of generated answers against gold labels.
 *
 * @example
 * choiceAccuracy(["A", "I think C"], ["A", "B"]); // 50
 */
export function choiceAccuracy(
  outputs: readonly string[],
  golds: readonly string[],
  labels: readonly string[] = ["A", "B", "C", "D"],
): number {
  if (outputs.length === 0) throw new AnalysisError("XA_EVAL_EMPTY", "no outputs to score", { field: "outputs" });
  if (outputs.length !== golds.length) {
    throw new AnalysisError("XA_EVAL_LENGTH_MISMATCH", `${outputs.length} outputs but ${golds.length} gold labels`, { field: "golds" });
  }
  let correct = 0;
  outputs.forEach((o, i) => {
    if (extractChoice(o, labels) === golds[i]) correct++;
  });
  return (100 * correct) / outputs.length;
}
