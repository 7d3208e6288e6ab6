/**
 * Learning curves of issue 16's reading runs: held-out English QA (contains) against pretraining tokens, one line
 * per run of notebooks/experiments/016-results.jsonl that the table in notebooks/README.md names, next to the
 * chance of a type-correct guess. Writes a static SVG (drawn by our plot module, readable on GitHub) beside the
 * results; `--html` also writes the interactive plotly page.
 *
 *   npx tsx bench/qa-curves.ts [--html]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type LineSeries, lineChart } from "../src/plot/index.js";
import { installationRoot } from "../src/util/fs.js";

interface Row {
  run: string;
  tokens: number;
  en: { contains: number; chance: number };
}

/** Table label of a run (first rule that matches), or undefined for runs the figure leaves out. */
const LABELS: [RegExp, string, string?][] = [
  [/^X11 reference/, "X11 reference (PyTorch, X4's world)"],
  [/^X19 control/, "X19 control (PyTorch, canon A, X12's world)"],
  [/^X19 reference/, "X19 reference (PyTorch, canon A-D, X12's world)"],
  // Options follow "fnames" in a run's name, so these come before X12's rule.
  [/fnames-lr0\.003-perrow1-wd0\.1-b20\.95-nodecay/, "X21 (X12 with the reference's settings)"],
  [/fnames-lr0\.003-perrow1$/, "X23p (X12, one document per row)"],
  [/fnames-lr0\.003-wd0\.1-b20\.95-nodecaynorm\+canon$/, "X23o (X12, the reference's optimizer)"],
  [/^layers4-.*fnames/, "X16 (X12, 4 layers)"],
  [/canon0-.*fnames/, "X14 (X12, no convolution)", "#17becf"],
  [/canon8-.*fnames/, "X18 (X12, convolution width 8)"],
  [/qrandom-fnames/, "X15 (X12, random order)"],
  [/qa0\.8-.*fnames/, "X13 (X12, 80% QA)"],
  [/tok8000000-.*fnames/, "X12 on the 8M schedule"],
  [/tok4000000-.*fnames/, "X12 (invented people)"],
  [/isolated-punct-seed\d-tok16000000/, "X7 (X4, 16M schedule)"],
  [/^canon4-doc-isolated-punct-seed\d-tok4000000-docs180000-qa0\.5-fresh1-q4-lr0\.003$/, "X4 (the published base's recipe)"],
];

const root = installationRoot();
const file = join(root, "notebooks", "experiments", "016-results.jsonl");
const rows = readFileSync(file, "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as Row);
const runs = new Map<string, { label: string; color?: string; points: [number, number][] }>();
for (const r of rows) {
  const rule = LABELS.find(([re]) => re.test(r.run));
  if (!rule) continue;
  const [, label, color] = rule;
  const entry = runs.get(r.run) ?? { label, ...(color ? { color } : {}), points: [] };
  entry.points.push([r.tokens / 1e6, r.en.contains]);
  runs.set(r.run, entry);
}
// One colour and legend entry per table row; its seeds are lines of that colour.
const series: LineSeries[] = [...runs.values()].map(({ label, color, points }) => {
  points.sort((a, b) => a[0] - b[0]);
  return { name: label, group: label, ...(color ? { color } : {}), x: points.map((p) => p[0]), y: points.map((p) => p[1]) };
});
const chance = rows.find((r) => r.en.chance)?.en.chance ?? 0;
const maxTokens = Math.max(...series.flatMap((s) => [...s.x]));
series.push({ name: "chance (type-correct guess)", x: [0, maxTokens], y: [chance, chance], dash: "dot", color: "#888888" });
series.push({ name: "issue 16's target", x: [0, maxTokens], y: [0.6, 0.6], dash: "dash", color: "#444444" });
const figure = lineChart({
  series,
  title: "Held-out English QA while pretraining (contains; 200 questions)",
  xTitle: "pretraining tokens (millions)",
  yTitle: "held-out QA contains",
  height: 480,
});
const out = join(root, "notebooks", "experiments", "016-curves");
writeFileSync(`${out}.svg`, figure.toSvg());
if (process.argv.includes("--html")) await figure.saveHtml(`${out}.html`);
console.log(`${runs.size} runs -> ${out}.svg`);
