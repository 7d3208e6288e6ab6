import { AnalysisError } from "../util/errors.js";
import type { ReferenceStreams } from "./score.js";

/** References regrouped per segment, with sacreBLEU's `nrefs` for the signature. */
export interface SegmentReferences {
  perSegment: string[][];
  nrefs: number | "var";
}

/**
 * Checks hypotheses against reference streams (same length, strings) and
 * regroups references per segment, dropping null entries as sacreBLEU does.
 */
export function collectReferences(metric: string, hypotheses: readonly string[], references: ReferenceStreams): SegmentReferences {
  if (!Array.isArray(hypotheses) || hypotheses.length === 0) {
    throw new AnalysisError("XA_EVAL_EMPTY", `${metric}: no hypotheses to score`, {
      field: "hypotheses",
      hint: "pass at least one segment",
    });
  }
  if (!Array.isArray(references) || references.length === 0 || !references.every((stream) => Array.isArray(stream))) {
    throw new AnalysisError("XA_EVAL_REFERENCES", `${metric}: references must be a list of reference streams (string[][])`, {
      field: "references",
      hint: "wrap a single reference set as [refs]: refs[k][i] is reference k of segment i",
    });
  }
  hypotheses.forEach((h, i) => {
    if (typeof h !== "string") {
      throw new AnalysisError("XA_EVAL_TYPE", `${metric}: hypothesis ${i} is ${h === null ? "null" : typeof h}, not a string`, {
        field: `hypotheses[${i}]`,
        hint: "use an empty string for a missing output",
      });
    }
  });
  references.forEach((stream, k) => {
    if (stream.length !== hypotheses.length) {
      throw new AnalysisError(
        "XA_EVAL_LENGTH_MISMATCH",
        `${metric}: reference stream ${k} has ${stream.length} segments but there are ${hypotheses.length} hypotheses`,
        { field: `references[${k}]`, hint: "every reference stream must be parallel to the hypotheses" },
      );
    }
  });
  const perSegment: string[][] = [];
  const counts = new Set<number>();
  for (let i = 0; i < hypotheses.length; i++) {
    const refs: string[] = [];
    for (let k = 0; k < references.length; k++) {
      const r = references[k]![i];
      if (r === null || r === undefined) continue;
      if (typeof r !== "string") {
        throw new AnalysisError("XA_EVAL_TYPE", `${metric}: reference ${k} of segment ${i} is ${typeof r}, not a string`, {
          field: `references[${k}][${i}]`,
        });
      }
      refs.push(r);
    }
    if (refs.length === 0) {
      throw new AnalysisError("XA_EVAL_NO_REFERENCE", `${metric}: segment ${i} has no reference (every stream is null there)`, {
        field: `references[*][${i}]`,
        hint: "drop the segment or give it at least one reference",
      });
    }
    counts.add(refs.length);
    perSegment.push(refs);
  }
  const nrefs = counts.size === 1 ? [...counts][0]! : "var";
  return { perSegment, nrefs };
}
