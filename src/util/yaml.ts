/** Where a YAML syntax error is: the parser's offset as 1-based line and column. */
import type { LineCounter, YAMLError } from "yaml";

/**
 * Line and column of a YAML parse error. The parser runs with prettyErrors
 * off (its messages then carry no code frame), so `linePos` is unset and the
 * position comes from the error's offset through the LineCounter.
 */
export function yamlErrorPosition(error: Pick<YAMLError, "pos" | "linePos">, lines: LineCounter): { line?: number; column?: number } {
  const known = error.linePos?.[0];
  if (known) return { line: known.line, column: known.col };
  const offset = error.pos?.[0];
  if (offset === undefined) return {};
  const { line, col } = lines.linePos(offset);
  return line > 0 ? { line, column: col } : {};
}
