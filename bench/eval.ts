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

interface Timing {
  label: string;
  wallMs: number;
  cpuMs: number;
}

/** Median wall and CPU time after one warm-up (CPU time is less disturbed by other processes on a shared machine). */
function time(label: string, fn: () => unknown, repeats = 3): Timing {
  fn();
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    walls.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  return { label, wallMs: median(walls), cpuMs: median(cpus) };
}

const { hyps, refs } = syntheticCorpus(segments);
const tokens = hyps.reduce((n, h) => n + h.split(" ").length, 0);
const bleu = new BLEU();
const score = bleu.corpusScore(hyps, [refs]);
const rows: Timing[] = [
  time("baseline: whitespace split + one Map lookup per token (hyps + refs)", () => {
    const vocab = new Map<string, number>();
    for (const list of [hyps, refs]) {
      for (const line of list) for (const t of line.split(" ")) if (vocab.get(t) === undefined) vocab.set(t, vocab.size);
    }
  }),
  time("13a tokenisation only (hyps + refs)", () => {
    for (const h of hyps) tokenize13a(h);
    for (const r of refs) tokenize13a(r);
  }),
  time("corpus BLEU, 13a (tokenise + count + score)", () => bleu.corpusScore(hyps, [refs])),
  time("corpus BLEU, tokenize none", () => new BLEU({ tokenize: "none" }).corpusScore(hyps, [refs])),
  time(
    "corpus chrF, first 10% of segments (for scale)",
    () => new CHRF().corpusScore(hyps.slice(0, segments / 10), [refs.slice(0, segments / 10)]),
    1,
  ),
];
const base = rows[0]!.cpuMs;
console.log(`${segments} segments, ${tokens} hypothesis words; ${score.format()}\n`);
console.log("| task | wall ms (median) | CPU ms (median) | CPU × baseline |");
console.log("| --- | ---: | ---: | ---: |");
for (const r of rows) console.log(`| ${r.label} | ${r.wallMs.toFixed(0)} | ${r.cpuMs.toFixed(0)} | ${(r.cpuMs / base).toFixed(2)} |`);
