/**
 * The committed notebooks are sources, not executed copies: valid nbformat 4.5 (every cell has a unique id of the
 * schema's form) with no outputs, no execution counts and no injected-parameters cell. An executed copy written
 * over a source (`xalign run --inplace`, or a run before `--out` was required) fails here before it is committed.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot, tempDir } from "../helpers.js";

interface RawCell {
  cell_type: string;
  id?: string;
  outputs?: unknown[];
  execution_count?: number | null;
  metadata?: { tags?: string[] };
}

/** What keeps each notebook in `dir` from being a clean nbformat 4.5 source, as "file cell N: problem" lines. */
export function sourceProblems(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)
    .filter((n) => n.endsWith(".ipynb"))
    .sort()) {
    const nb = JSON.parse(readFileSync(join(dir, name), "utf8")) as { nbformat: number; nbformat_minor: number; cells: RawCell[] };
    if (nb.nbformat !== 4 || nb.nbformat_minor < 5) out.push(`${name}: nbformat ${nb.nbformat}.${nb.nbformat_minor}, not 4.5+`);
    const seen = new Set<string>();
    nb.cells.forEach((cell, i) => {
      const at = `${name} cell ${i + 1}`;
      if (cell.id === undefined) out.push(`${at}: no id`);
      else if (!/^[a-zA-Z0-9-_]{1,64}$/.test(cell.id)) out.push(`${at}: id "${cell.id}" is not of the schema's form`);
      else if (seen.has(cell.id)) out.push(`${at}: id "${cell.id}" repeats`);
      if (cell.id !== undefined) seen.add(cell.id);
      if (cell.metadata?.tags?.includes("injected-parameters")) out.push(`${at}: an injected-parameters cell`);
      if (cell.cell_type === "code" && (cell.outputs?.length ?? 0) > 0) out.push(`${at}: has outputs`);
      if (cell.cell_type === "code" && cell.execution_count != null) out.push(`${at}: has an execution count`);
    });
  }
  return out;
}

describe("committed notebooks", () => {
  it("are clean nbformat 4.5 sources (ids, no outputs, no injected parameters)", () => {
    assert.deepEqual(sourceProblems(join(repoRoot(), "notebooks")), []);
  });

  it("the check names each problem of an executed copy", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const executed = {
        nbformat: 4,
        nbformat_minor: 5,
        metadata: {},
        cells: [
          { cell_type: "markdown", metadata: {}, source: "# a" },
          { cell_type: "code", id: "p", metadata: { tags: ["injected-parameters"] }, source: "", outputs: [], execution_count: 1 },
          { cell_type: "code", id: "p", metadata: {}, source: "1", outputs: [{ output_type: "stream" }], execution_count: null },
          { cell_type: "code", id: "bad id", metadata: {}, source: "2", outputs: [], execution_count: null },
        ],
      };
      await writeFile(join(dir, "nb.ipynb"), JSON.stringify(executed));
      assert.deepEqual(sourceProblems(dir), [
        "nb.ipynb cell 1: no id",
        "nb.ipynb cell 2: an injected-parameters cell",
        "nb.ipynb cell 2: has an execution count",
        'nb.ipynb cell 3: id "p" repeats',
        "nb.ipynb cell 3: has outputs",
        'nb.ipynb cell 4: id "bad id" is not of the schema\'s form',
      ]);
    } finally {
      await cleanup();
    }
  });
});
