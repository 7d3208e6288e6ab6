/**
 * Synthetic world speed: sentences generated and realised per second, per
 * language, on one core (the issue asks for at least 100,000/s). Each row
 * times generating a sentence structure and realising it in that language;
 * "structure only" is the baseline measured in the same run.
 */
import { performance } from "node:perf_hooks";
import { BASE_SPEC, deriveLanguage, Grammar, generateWorld, parallelSentence, presetLanguages, Realizer } from "../src/synth/index.js";
import { Rng } from "../src/util/rng.js";

const N = Number(process.env.SYNTH_BENCH_N ?? 200000);
const REPEATS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function rate(fn: (rng: Rng) => void): number {
  const runs: number[] = [];
  fn(new Rng(99)); // warm-up
  for (let r = 0; r < REPEATS; r++) {
    const rng = new Rng(r);
    const t0 = performance.now();
    fn(rng);
    runs.push(N / ((performance.now() - t0) / 1000));
  }
  return median(runs);
}

const world = generateWorld(new Rng(1).fork("world"));
const g = new Grammar(world);
let sink = 0;
const baseline = rate((rng) => {
  for (let i = 0; i < N; i++) sink += parallelSentence(g, rng).marks.length;
});
const rows: [string, number][] = [];
for (const spec of [BASE_SPEC, ...presetLanguages("paper")]) {
  const r = new Realizer(deriveLanguage(spec), world.names);
  rows.push([
    spec.code,
    rate((rng) => {
      for (let i = 0; i < N; i++) sink += r.sentence(parallelSentence(g, rng).clause).text.length;
    }),
  ]);
}
console.log(`| language | sentences/s (generate + realise) | vs structure only |`);
console.log(`|---|---:|---:|`);
console.log(`| (structure only) | ${Math.round(baseline).toLocaleString("en")} | 1.00 |`);
for (const [code, r] of rows) console.log(`| ${code} | ${Math.round(r).toLocaleString("en")} | ${(r / baseline).toFixed(2)} |`);
console.log(`\n${N.toLocaleString("en")} sentences per run, median of ${REPEATS}; node ${process.version}; checksum ${sink % 997}`);
