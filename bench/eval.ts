/**
 * Evaluation benchmark: corpus BLEU (13a, the default) and chrF over a
 * synthetic 100k-segment test set, single-threaded. The target is corpus BLEU
 * over 100,000 sentence pairs in under 2 s on one core. Prints a markdown table.
 *
 *   node --import tsx bench/eval.ts [segments]
 */
import { performance } from "node:perf_hooks";
import { BLEU, CHRF, tokenize13a } from "../src/eval/index.js";
import { Rng } from "../src/util/rng.js";

const segments = Number(process.argv[2] ?? 100_000);

function syntheticCorpus(n: number): { hyps: string[]; refs: string[] } {
  const rng = new Rng("bench-eval");
  const vocab = Array.from({ length: 20_000 }, (_, i) => `w${i.toString(36)}`);
  const punct = [",", ".", "!", "?", ";", "(x)", "1,000", "3.5", "U.S.", "don't", "co-op"];
  const word = () => (rng.float() < 0.1 ? rng.choice(punct) : vocab[Math.floor(vocab.length * rng.float() ** 3)]!);
  const hyps: string[] = [];
  const refs: string[] = [];
  for (let i = 0; i < n; i++) {
    const ref = Array.from({ length: 10 + rng.int(30) }, word);
    const hyp = ref.map((w) => (rng.float() < 0.3 ? word() : w)).filter(() => rng.float() > 0.05);
    refs.push(`${ref.join(" ")}.`);
    hyps.push(`${hyp.join(" ")}.`);
  }
  return { hyps, refs };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(label: string, fn: () => unknown, repeats = 3): [string, number] {
  fn(); // warm-up
  const runs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
  }
  return [label, median(runs)];
}

const { hyps, refs } = syntheticCorpus(segments);
const tokens = hyps.reduce((n, h) => n + h.split(" ").length, 0);
const bleu = new BLEU();
const score = bleu.corpusScore(hyps, [refs]);
const rows: Array<[string, number]> = [
  time("13a tokenisation only (hyps + refs)", () => {
    for (const h of hyps) tokenize13a(h);
    for (const r of refs) tokenize13a(r);
  }),
  time("corpus BLEU, 13a (tokenise + count + score)", () => bleu.corpusScore(hyps, [refs])),
  time("corpus BLEU, tokenize none", () => new BLEU({ tokenize: "none" }).corpusScore(hyps, [refs])),
  time("corpus chrF", () => new CHRF().corpusScore(hyps, [refs]), 1),
];
console.log(`${segments} segments, ${tokens} hypothesis words; ${score.format()}\n`);
console.log("| task | median ms | segments/s |");
console.log("| --- | ---: | ---: |");
for (const [label, ms] of rows)
  console.log(`| ${label} | ${ms.toFixed(0)} | ${Math.round((segments / ms) * 1000).toLocaleString("en-US")} |`);
