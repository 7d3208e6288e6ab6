/**
 * `xalign eval`: sacreBLEU-style scoring of text files, and per-language
 * score tables of a predictions.jsonl written by the generation harness.
 */
import { readFile } from "node:fs/promises";
import {
  BLEU,
  type BleuTokenizerName,
  CHRF,
  type MetricScore,
  readPredictions,
  scoreByLanguage,
  scoreWithConfidence,
} from "../eval/index.js";
import type { MetricName } from "../eval/scores.js";
import { Table } from "../plot/table.js";
import { ConfigError, DataError } from "../util/errors.js";
import { parseCommand } from "./args.js";

const HELP = `Usage:
  xalign eval text --hyp FILE --ref FILE [--ref FILE ...] [--metrics bleu,chrf,chrf++]
                   [--tokenize 13a|intl|zh|char|none] [--lowercase] [--smooth exp|floor|add-k|none]
                   [--bootstrap N] [--width 2] [--json]
  xalign eval predictions FILE [--metrics bleu,chrf|contains,em,f1|...] [--json]

text: scores a hypothesis file against one or more reference files (one
segment per line), printing sacreBLEU 2.6.0-compatible lines with signatures;
--bootstrap adds a 95% interval (μ ± half-width).
predictions: scores a predictions.jsonl (id, prompt, reference, prediction,
lang) per language; metrics: bleu, chrf, chrf++, em, f1, contains, rouge1,
rouge2, rougeL.`;

async function readLines(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new DataError("XA_EVAL_FILE", `cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, {
      file: path,
    });
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
}

function metricList(value: string | undefined, fallback: string[]): string[] {
  return (value ?? fallback.join(","))
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean);
}

async function runText(argv: string[]): Promise<number> {
  const { values } = parseCommand(
    "eval",
    argv,
    {
      hyp: { type: "string" },
      ref: { type: "string", multiple: true },
      metrics: { type: "string" },
      tokenize: { type: "string" },
      lowercase: { type: "boolean" },
      smooth: { type: "string" },
      bootstrap: { type: "string" },
      width: { type: "string" },
      json: { type: "boolean" },
    },
    false,
  );
  const refsPaths = (values.ref as string[] | undefined) ?? [];
  if (typeof values.hyp !== "string" || refsPaths.length === 0) {
    throw new ConfigError("XA_CLI_ARGS", "eval text needs --hyp FILE and at least one --ref FILE", { hint: "run `xalign eval --help`" });
  }
  const hyps = await readLines(values.hyp);
  const refs = await Promise.all(refsPaths.map(readLines));
  refs.forEach((r, k) => {
    if (r.length !== hyps.length) {
      throw new DataError("XA_EVAL_LINE_COUNT", `${refsPaths[k]} has ${r.length} lines but ${values.hyp} has ${hyps.length}`, {
        file: refsPaths[k]!,
        hint: "hypotheses and references must be line-parallel",
      });
    }
  });
  const lowercase = values.lowercase === true;
  const width = values.width ? Number(values.width) : 2;
  const samples = values.bootstrap ? Number(values.bootstrap) : 0;
  const results = [];
  for (const name of metricList(values.metrics as string | undefined, ["bleu", "chrf"])) {
    const metric =
      name === "bleu"
        ? new BLEU({
            lowercase,
            tokenize: (values.tokenize as BleuTokenizerName | undefined) ?? "13a",
            ...(values.smooth ? { smoothMethod: values.smooth as "exp" } : {}),
          })
        : name === "chrf" || name === "chrf++"
          ? new CHRF({ lowercase, wordOrder: name === "chrf++" ? 2 : 0 })
          : undefined;
    if (!metric)
      throw new ConfigError("XA_CLI_ARGS", `unknown metric "${name}" for eval text`, {
        field: "--metrics",
        hint: "use bleu, chrf, chrf++",
      });
    const score = samples > 0 ? scoreWithConfidence<MetricScore>(metric, hyps, refs, { samples }) : metric.corpusScore(hyps, refs);
    results.push(score);
  }
  if (values.json) {
    const out = results.map((s) => ({
      name: s.name,
      score: Number(s.format({ width, scoreOnly: true }).split(" ")[0]),
      signature: s.signature?.format(),
      ...(s.confidence ? { confidence: s.confidence } : {}),
      line: s.format({ width }),
    }));
    console.log(JSON.stringify(out.length === 1 ? out[0] : out, null, 1));
  } else {
    for (const s of results) console.log(s.format({ width }));
  }
  return 0;
}

async function runPredictions(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("eval", argv, { metrics: { type: "string" }, json: { type: "boolean" } });
  const file = positionals[0];
  if (!file) throw new ConfigError("XA_CLI_ARGS", "eval predictions needs a predictions.jsonl path", { hint: "run `xalign eval --help`" });
  const records = await readPredictions(file);
  const metrics = metricList(values.metrics as string | undefined, ["bleu", "chrf"]) as MetricName[];
  const scores = scoreByLanguage(records, { metrics });
  if (values.json) console.log(JSON.stringify(scores.table, null, 1));
  else console.log(Table.fromScores(scores, { caption: `${file} (${records.length} predictions)` }).toString());
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv;
  if (mode === undefined || mode === "--help" || mode === "-h") {
    console.log(HELP);
    return mode === undefined ? 2 : 0;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(HELP);
    return 0;
  }
  if (mode === "text") return runText(rest);
  if (mode === "predictions") return runPredictions(rest);
  console.error(`xalign eval: unknown mode "${mode}"\n\n${HELP}`);
  return 2;
}
