/**
 * The folders of src/ and kernel/ form layers: a folder may import only from
 * folders in lower layers (and from itself). Reads every import, export-from
 * and dynamic import() of src/**.ts and kernel/**.ts, type-only ones included.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "./helpers.js";

/**
 * Lowest first. A unit is a top folder of src/ (`src/data`), `kernel`, or a
 * file directly in src/ (`src/index.ts`). Units in one layer may not import
 * each other. Each folder's README.md says the same in words.
 */
const LAYERS: string[][] = [
  ["src/util", "src/version.ts"],
  // display helpers (display, Progress, interrupts) that library code and the kernel use
  ["src/notebook"],
  ["kernel"],
  // the headless notebook runner: starts the kernel and speaks to it
  ["src/runner"],
  // the public `notebook` namespace: display helpers and runner together
  ["src/notebook-namespace.ts"],
  ["src/analysis", "src/config", "src/data", "src/engine", "src/eval", "src/tokenizer"],
  ["src/model", "src/plot", "src/synth"],
  ["src/train"],
  ["src/launch"],
  ["src/study"],
  ["src/cli"],
  ["src/index.ts"],
];

interface Violation {
  file: string;
  specifier: string;
  from: string;
  to: string;
}

/** The unit a repository-relative path belongs to: `src/<folder>`, `src/<file>.ts` or `kernel`. */
function unitOf(path: string): string | undefined {
  const parts = path.split("/");
  if (parts[0] === "kernel") return "kernel";
  if (parts[0] !== "src" || parts.length < 2) return undefined;
  return `src/${parts[1]}`;
}

/** The relative specifiers a TypeScript source imports: `from "..."`, `import "..."`, `import("...")`. */
function relativeImports(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\b(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) found.push(m[1] as string);
  return found;
}

/** Imports of `files` (repository-relative path -> text) that go to the same or a higher layer than their own. */
function layerViolations(files: Map<string, string>, layers: string[][] = LAYERS): Violation[] {
  const layerOf = new Map<string, number>();
  layers.forEach((units, i) => {
    for (const u of units) layerOf.set(u, i);
  });
  const out: Violation[] = [];
  for (const [file, text] of files) {
    const from = unitOf(file);
    if (from === undefined) continue;
    for (const specifier of relativeImports(text)) {
      const target = posix.normalize(posix.join(posix.dirname(file), specifier.replace(/\.js$/, ".ts")));
      const to = unitOf(target);
      if (to === undefined || to === from) continue;
      const a = layerOf.get(from);
      const b = layerOf.get(to);
      if (a === undefined || b === undefined || b >= a) out.push({ file, specifier, from, to });
    }
  }
  return out;
}

function sources(root: string, dir: string, out: Map<string, string>): void {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules" && entry.name !== "build") sources(root, path, out);
    } else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) {
      out.set(path, readFileSync(join(root, path), "utf8"));
    }
  }
}

describe("layers of src/ and kernel/", () => {
  const root = repoRoot();
  const files = new Map<string, string>();
  sources(root, "src", files);
  sources(root, "kernel", files);

  it("the check finds an import of a higher layer, of a peer, and of an unlisted folder", () => {
    const fake = new Map([
      ["src/notebook/run.ts", 'import { kernelArgv } from "../../kernel/spec.js";\n'],
      ["src/data/a.ts", 'export { x } from "../eval/index.js";\n'],
      ["src/util/b.ts", 'const m = await import("../newfolder/x.js");\n'],
      ["src/train/c.ts", 'import type { T } from "../model/index.js";\nimport "./d.js";\n'],
    ]);
    assert.deepEqual(
      layerViolations(fake).map((v) => `${v.from} -> ${v.to}`),
      ["src/notebook -> kernel", "src/data -> src/eval", "src/util -> src/newfolder"],
    );
  });

  it("reads the imports of every source file", () => {
    assert.ok(files.size > 100, `only ${files.size} files read`);
    const imports = [...files.values()].reduce((n, text) => n + relativeImports(text).length, 0);
    assert.ok(imports > 300, `only ${imports} relative imports found`);
  });

  it("every folder and top file is in a layer", () => {
    const listed = new Set(LAYERS.flat());
    const units = new Set([...files.keys()].map((f) => unitOf(f) as string));
    const unlisted = [...units].filter((u) => !listed.has(u));
    assert.deepEqual(unlisted, [], `add ${unlisted.join(", ")} to LAYERS in test/layers.test.ts (and say so in its README.md)`);
  });

  it("no folder imports a folder of its own or a higher layer", () => {
    const bad = layerViolations(files);
    assert.deepEqual(
      bad.map((v) => `${v.file} imports ${v.specifier} (${v.from} may not import ${v.to})`),
      [],
      "the layers, lowest first, are in test/layers.test.ts",
    );
  });

  it("every folder of src/ and kernel/ opens with a README.md", () => {
    const folders = [
      "kernel",
      ...readdirSync(join(root, "src"), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => `src/${e.name}`),
    ];
    const missing = folders.filter((f) => !existsSync(join(root, f, "README.md")));
    assert.deepEqual(missing, []);
  });
});
