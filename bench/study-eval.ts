/**
 * A study arm's evaluation time (issue 19): the evaluations of one notebook-03
 * arm (QA in English and the language, en→X translation; the study's prompts,
 * metrics and budgets) on one tuned model, timed per generation setting in
 * rounds that alternate the order:
 *
 * - batched native: the study's default (eval.batchSize prompts per
 *   generate() call, native decoding);
 * - batched per-op: the same batches with `native: false`;
 * - one-at-a-time per-op: batch 1, `native: false` (the harness before
 *   batching and native decoding).
 *
 * The model is the cached base model of the mode (Study.prepare; with
 * XALIGN_CACHE pointing at a copy of a cache, nothing is built: the script
 * stops if an artifact is missing), tuned once on the arm's data as notebook
 * 03 does (`--arm target`: Alpaca en + Alpaca X + en→X pairs with X on the
 * target side). Every setting's predictions and hypotheses are compared with
 * the batched native ones (mismatches printed; 0 expected). Seconds are wall
 * time of Study.evaluateArm, CPU seconds this process's user + system time,
 * after one untimed warm-up evaluation per setting. `--tuned DIR` keeps the
 * tuned model there (a later run with the same DIR loads it instead of tuning).
 *
 *   XALIGN_CACHE=/tmp/cache node dist/bench/study-eval.js [--mode quick] [--lang vi] [--arm target] [--rounds 3] [--seed 0] [--tuned DIR]
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type LlamaModel, loadCheckpoint, saveCheckpoint } from "../src/model/index.js";
import { Study, type StudyMode, studySettings } from "../src/study/index.js";
import type { ArmEvaluation } from "../src/study/study.js";

const { values: opts } = parseArgs({
  options: {
    mode: { type: "string", default: "quick" },
    lang: { type: "string", default: "vi" },
    arm: { type: "string", default: "target" },
    rounds: { type: "string", default: "3" },
    seed: { type: "string", default: "0" },
    backend: { type: "string", default: "wasm" },
    tuned: { type: "string" },
  },
});
const lang = opts.lang;
const rounds = Number(opts.rounds);
const seed = Number(opts.seed);
const settings = studySettings(opts.mode as StudyMode, { backend: opts.backend as "wasm" });
const study = await Study.prepare(settings, (message) => {
  console.log(message);
  if (/building/.test(message)) throw new Error(`study-eval: ${message}: the bench only reads a cache (see XALIGN_CACHE)`);
});
console.log(`${study.engine.backend} on ${study.engine.device}; base model ${study.baseDir}`);

const n = settings.tune.examplesPerSource;
const base = [...(await study.alpaca("en", n)), ...(await study.alpaca(lang, n))];
const side = opts.arm;
const examples =
  side === "none"
    ? base
    : [...base, ...(await study.translationExamples(lang, side === "both" ? Math.floor(n / 2) : n, side as "target" | "source" | "both"))];
const outDir = mkdtempSync(join(tmpdir(), "xalign-study-eval-"));
let model: LlamaModel;
if (opts.tuned && existsSync(join(opts.tuned, "config.json"))) {
  model = await loadCheckpoint(opts.tuned);
  console.log(`the tuned model from ${opts.tuned}`);
} else {
  const tuneStart = performance.now();
  const tuned = await study.tune(examples, { seed, label: `${lang}:${side}`, outDir, progress: false });
  model = tuned.model;
  console.log(
    `tuned ${lang}:${side} (seed ${seed}) on ${tuned.examples} examples: ${tuned.result.steps} steps, final loss ` +
      `${tuned.result.finalLoss.toFixed(4)}, ${((performance.now() - tuneStart) / 1000).toFixed(0)} s`,
  );
  if (opts.tuned) {
    mkdirSync(opts.tuned, { recursive: true });
    await saveCheckpoint(model, opts.tuned);
  }
}

const arm = { qaLanguages: ["en", lang], translationLanguages: [lang] };
const defaultBatch = settings.eval.batchSize;
const variants = [
  { name: "batched native", batchSize: defaultBatch, native: true },
  { name: "batched per-op", batchSize: defaultBatch, native: false },
  { name: "one-at-a-time per-op", batchSize: 1, native: false },
];
const prompts = 2 * settings.eval.qaPerLanguage + settings.eval.translationsPerLanguage; /* upper bound: the sets may hold fewer */
console.log(
  `node ${process.version}, ${new Date().toISOString()}, mode ${settings.mode}, ${rounds} rounds; evaluation: QA en and ${lang} ` +
    `(${settings.eval.qaPerLanguage} each, ${settings.eval.maxNewTokens} new tokens), en→${lang} translation ` +
    `(${settings.eval.translationsPerLanguage}, ${2 * settings.eval.maxNewTokens} new tokens), up to ${prompts} prompts; batch ${defaultBatch}`,
);

/** The texts an evaluation generated, in order: QA predictions per language, then translation hypotheses. */
const texts = (e: ArmEvaluation): string[] => [
  ...Object.values(e.qa).flatMap((q) => q.predictions.map((p) => p.prediction)),
  ...Object.values(e.translation).flatMap((t) => t.hypotheses),
];

// Warm-up, untimed: each setting once (the QA sets and files read, the kernels compiled, the native scratch mapped).
for (const v of variants) {
  settings.eval.batchSize = v.batchSize;
  settings.eval.native = v.native;
  await study.evaluateArm(model, arm);
}

const seconds = new Map<string, number[]>();
const cpuSeconds = new Map<string, number[]>();
const mismatches = new Map<string, number>();
let reference: string[] | undefined;
const pending: [string, string[]][] = [];
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? variants : [...variants].reverse();
  for (const v of order) {
    settings.eval.batchSize = v.batchSize;
    settings.eval.native = v.native;
    const cpu = process.cpuUsage();
    const e = await study.evaluateArm(model, arm);
    const used = process.cpuUsage(cpu);
    const c = (used.user + used.system) / 1e6;
    (seconds.get(v.name) ?? seconds.set(v.name, []).get(v.name))?.push(e.seconds);
    (cpuSeconds.get(v.name) ?? cpuSeconds.set(v.name, []).get(v.name))?.push(c);
    const got = texts(e);
    if (v.name === "batched native" && !reference) reference = got;
    pending.push([v.name, got]);
    console.log(
      JSON.stringify({
        bench: "study-eval",
        variant: v.name,
        round: r + 1,
        seconds: Number(e.seconds.toFixed(2)),
        cpuSeconds: Number(c.toFixed(2)),
        texts: got.length,
      }),
    );
  }
  for (const [name, got] of pending.splice(0)) {
    const want = reference as string[];
    let bad = Math.abs(got.length - want.length);
    for (let i = 0; i < Math.min(got.length, want.length); i++) if (got[i] !== want[i]) bad++;
    mismatches.set(name, (mismatches.get(name) ?? 0) + bad);
  }
}
settings.eval.batchSize = defaultBatch;
delete settings.eval.native;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const baseline = median(seconds.get("one-at-a-time per-op") ?? []);
const baselineCpu = median(cpuSeconds.get("one-at-a-time per-op") ?? []);
console.log(`\nevaluation of one ${lang}:${side} arm, median over ${rounds} rounds`);
console.log("| setting | batch | eval s | CPU s | one-at-a-time per-op / this (wall) | (CPU) | texts differing from batched native |");
console.log("|---|---|---|---|---|---|---|");
for (const v of variants) {
  const s = median(seconds.get(v.name) ?? []);
  const c = median(cpuSeconds.get(v.name) ?? []);
  console.log(
    `| ${v.name} | ${v.batchSize} | ${s.toFixed(2)} | ${c.toFixed(2)} | ${(baseline / s).toFixed(2)}x | ${(baselineCpu / c).toFixed(2)}x | ` +
      `${mismatches.get(v.name) ?? 0} of ${(reference?.length ?? 0) * rounds} |`,
  );
}
await study.release(model);
rmSync(outDir, { recursive: true, force: true });
