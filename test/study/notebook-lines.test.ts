/**
 * Issue 21: code cells a student can read. No code line in notebooks/*.ipynb
 * may be longer than 100 characters; long expressions go behind named
 * helpers in src/study (present.ts: coitExamples, runArms, runScaling, relativeGains,
 * meanOverLanguages, armCell, competenceNote, tuneSummary, formatNumber,
 * formatInterval, collect; compare.ts: formatRelativeChange; record.ts:
 * RunRecord.metricsFrom, findingsView, dataRoot).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "../helpers.js";

export const MAX_COLUMNS = 100;

interface LongLine {
  notebook: string;
  cell: number;
  line: number;
  columns: number;
}

/** Code lines over `max` columns (counted in characters, not UTF-16 units) in the notebooks folder. */
export function longCodeLines(dir = join(repoRoot(), "notebooks"), max = MAX_COLUMNS): LongLine[] {
  const out: LongLine[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith(".ipynb"))
    .sort()) {
    const nb = JSON.parse(readFileSync(join(dir, name), "utf8")) as { cells: { cell_type: string; source: string | string[] }[] };
    nb.cells.forEach((cell, c) => {
      if (cell.cell_type !== "code") return;
      const source = Array.isArray(cell.source) ? cell.source.join("") : cell.source;
      source.split("\n").forEach((line, l) => {
        const columns = [...line].length;
        if (columns > max) out.push({ notebook: name, cell: c + 1, line: l + 1, columns });
      });
    });
  }
  return out;
}

const long = longCodeLines();

describe("notebook code cells", () => {
  it("finds long lines (the check itself)", () => {
    assert.ok(Array.isArray(long));
    assert.deepEqual(longCodeLines(join(repoRoot(), "test", "fixtures", "notebooks"), 10_000), []);
  });

  it(`no code line in notebooks/*.ipynb is longer than ${MAX_COLUMNS} characters`, () => {
    assert.deepEqual(
      long.map((l) => `${l.notebook} cell ${l.cell} line ${l.line}: ${l.columns} characters`),
      [],
    );
  });
});
