/**
 * Batched evaluation and prefill benchmark (issue 19), on the study's quick
 * model shape (src/study/settings.ts QUICK.model: hidden 128, intermediate
 * 352, 3 layers, 4 heads, canon width 4; vocab 3000, tied head, as
 * baseModelConfig builds it) with random weights (LlamaModel.init, seeded).
 *
 * 1. Greedy generation, 24 new tokens (the study's eval), EOS off so every
 *    row runs to the end, over prompts of 40-120 random ids (BOS first; left
 *    padded by generate()): batched at each batch size, native and per-op
 *    (`native: false`), against "today's one-at-a-time harness", batch 1
 *    per-op over the same prompts. tokens/s = new tokens / wall seconds of the
 *    generate() calls (prefill included); tokens per CPU-second
 *    (this process's user + system time) too, which the machine's load moves less.
 *    The eval prompts' prefill alone (maxNewTokens 1) is timed too, which
 *    splits each generate() into prefill and decoding (medians subtracted).
 * 2. Prefill: prompts of `--prefill` random ids at batch 1 and 8, through
 *    generate(..., { maxNewTokens: 1 }), which is exactly one forward over the
 *    prompt (the loop's first step; no decode step follows), native and
 *    per-op. tokens/s = prompt tokens / seconds.
 *
 * Every measurement runs once per round; rounds alternate the order of the
 * measurements, and the table gives medians. One JSON line per measurement.
 * Correctness: each batched native (and per-op) output is compared token for
 * token with the one-at-a-time per-op output of the same prompt; the mismatch
 * counts are printed (0 expected).
 *
 *   node dist/bench/eval-throughput.js [--rounds 3] [--batches 8,32,128] [--new 24] [--prefill 256] [--threads 1]
 */
import { parseArgs } from "node:util";
import { initEngine, nativeStatus } from "../src/engine/index.js";
import { CONFIG_DEFAULTS, generate, type LlamaConfig, LlamaModel, NativeDecoder } from "../src/model/index.js";
import { studySettings } from "../src/study/settings.js";
import { Rng } from "../src/util/rng.js";

const { values: opts } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    batches: { type: "string", default: "8,32,128" },
    new: { type: "string", default: "24" },
    prefill: { type: "string", default: "256" },
    threads: { type: "string", default: "1" },
  },
});
const rounds = Number(opts.rounds);
const batches = opts.batches.split(",").map(Number);
const newTokens = Number(opts.new);
const prefillLength = Number(opts.prefill);
const threads = Number(opts.threads);
const prefillBatches = [1, 8];

const quick = studySettings("quick").model;
const cfg: LlamaConfig = {
  ...CONFIG_DEFAULTS,
  ...quick,
  num_key_value_heads: quick.num_attention_heads,
  vocab_size: 3000,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
} as LlamaConfig;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Random ids after BOS, avoiding the special ids 0-2. */
function randomPrompt(rng: Rng, length: number): number[] {
  return [cfg.bos_token_id, ...Array.from({ length: length - 1 }, () => 3 + rng.int(cfg.vocab_size - 3))];
}

const engine = await initEngine({ backend: "wasm", threads });
const addon = nativeStatus().addon;
console.log(`engine: ${engine.device} — ${engine.reason}`);
const model = LlamaModel.init(cfg, new Rng(1));
const why = NativeDecoder.unsupported(model);
if (why || !addon) {
  console.log(`native decoding is unavailable: ${why ?? "no addon"}; nothing to compare`);
  process.exit(1);
}
addon.setThreads(threads);
addon.setElementwiseThreads(threads);

const rng = new Rng(2);
const maxBatch = Math.max(...batches);
const prompts = Array.from({ length: maxBatch }, () => randomPrompt(rng, 40 + rng.int(81)));
const prefillPrompts = Array.from({ length: Math.max(...prefillBatches) }, () => randomPrompt(rng, prefillLength));
const tokensIn = (ps: number[][]) => ps.reduce((n, p) => n + p.length, 0);
console.log(
  `node ${process.version}, ${new Date().toISOString()}, threads ${threads}, ${rounds} rounds; model ${JSON.stringify(quick)}, ` +
    `vocab ${cfg.vocab_size}; ${maxBatch} prompts of ${Math.min(...prompts.map((p) => p.length))}-` +
    `${Math.max(...prompts.map((p) => p.length))} ids (${tokensIn(prompts)} in all), ${newTokens} new tokens each; ` +
    `prefill ${prefillLength} ids at batch ${prefillBatches.join(", ")}`,
);

async function run(
  ps: number[][],
  maxNewTokens: number,
  native: boolean,
): Promise<{ seconds: number; cpuSeconds: number; tokens: number[][] }> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const out = await generate(model, ps, { maxNewTokens, eosTokenId: [], native });
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, cpuSeconds: (used.user + used.system) / 1e6, tokens: out.tokens };
}

// Warm-up: the inference plan, the wasm kernels, the native session's first allocation, each batch's shapes.
for (const native of [true, false]) {
  for (const b of batches) await run(prompts.slice(0, b), 2, native);
  for (const b of prefillBatches) await run(prefillPrompts.slice(0, b), 1, native);
}

type Key = string;
const rates = new Map<Key, number[]>();
/** Tokens per CPU-second (this process's user + system time), per key: less moved by the machine's load than wall time. */
const cpuRates = new Map<Key, number[]>();
const record = (key: Key, fields: Record<string, unknown>, tokens: number, seconds: number, cpuSeconds: number) => {
  const tokensPerS = tokens / seconds;
  (rates.get(key) ?? rates.set(key, []).get(key))?.push(tokensPerS);
  (cpuRates.get(key) ?? cpuRates.set(key, []).get(key))?.push(tokens / cpuSeconds);
  console.log(
    JSON.stringify({
      bench: "eval-throughput",
      ...fields,
      tokens,
      seconds: Number(seconds.toFixed(4)),
      tokensPerS: Number(tokensPerS.toFixed(1)),
      cpuSeconds: Number(cpuSeconds.toFixed(4)),
    }),
  );
};

// Reference outputs: one-at-a-time per-op, per prompt (the same every round; compared each round).
let reference: number[][] | undefined;
/** [prompt][position] mismatches of batched outputs against the one-at-a-time ones, per measurement key. */
const mismatches = new Map<Key, { tokens: number; rows: number; firstRow?: number }>();
const compare = (key: Key, got: number[][]) => {
  if (!reference) throw new Error("compare before the reference ran");
  const m = mismatches.get(key) ?? { tokens: 0, rows: 0 };
  got.forEach((row, i) => {
    const want = reference?.[i] as number[];
    let bad = Math.abs(row.length - want.length);
    for (let j = 0; j < Math.min(row.length, want.length); j++) if (row[j] !== want[j]) bad++;
    if (bad > 0) {
      m.tokens += bad;
      m.rows++;
      m.firstRow ??= i;
    }
  });
  mismatches.set(key, m);
};

/** Batched outputs of the first round made before the reference ran (a reversed round can put it last). */
const pending: [Key, number[][]][] = [];

type Task = { name: string; go: (round: number) => Promise<void> };
const tasks: Task[] = [
  {
    name: "one-at-a-time",
    go: async (round) => {
      // Per prompt, so the rate over the first b prompts is read off the same calls.
      const seconds: number[] = [];
      const cpuSeconds: number[] = [];
      const outs: number[][] = [];
      for (const p of prompts) {
        const r = await run([p], newTokens, false);
        seconds.push(r.seconds);
        cpuSeconds.push(r.cpuSeconds);
        outs.push(r.tokens[0] as number[]);
      }
      if (!reference) reference = outs;
      else if (outs.some((o, i) => o.join() !== reference?.[i]?.join())) throw new Error("one-at-a-time outputs changed between rounds");
      for (const b of batches) {
        const s = seconds.slice(0, b).reduce((a, x) => a + x, 0);
        const c = cpuSeconds.slice(0, b).reduce((a, x) => a + x, 0);
        record(`gen one-at-a-time ${b}`, { kind: "generate", path: "per-op one-at-a-time", prompts: b, round }, b * newTokens, s, c);
      }
    },
  },
  ...batches.flatMap((b): Task[] =>
    [true, false].map((native) => ({
      name: `batch ${b} ${native ? "native" : "per-op"}`,
      go: async (round) => {
        const r = await run(prompts.slice(0, b), newTokens, native);
        const path = native ? "native" : "per-op";
        record(`gen ${path} ${b}`, { kind: "generate", path, batch: b, round }, b * newTokens, r.seconds, r.cpuSeconds);
        if (reference) compare(`gen ${path} ${b}`, r.tokens);
        else pending.push([`gen ${path} ${b}`, r.tokens]);
      },
    })),
  ),
  // The eval prompts' prefill alone (maxNewTokens 1: one forward over the padded prompts), to split the
  // generate() time above into prefill and decoding.
  ...batches.flatMap((b): Task[] =>
    [true, false].map((native) => ({
      name: `eval prefill ${b} ${native ? "native" : "per-op"}`,
      go: async (round) => {
        const r = await run(prompts.slice(0, b), 1, native);
        const path = native ? "native" : "per-op";
        const positions = b * Math.max(...prompts.slice(0, b).map((p) => p.length));
        record(`eval prefill ${path} ${b}`, { kind: "eval-prefill", path, batch: b, round }, positions, r.seconds, r.cpuSeconds);
      },
    })),
  ),
  ...prefillBatches.flatMap((b): Task[] =>
    [true, false].map((native) => ({
      name: `prefill ${b} ${native ? "native" : "per-op"}`,
      go: async (round) => {
        const r = await run(prefillPrompts.slice(0, b), 1, native);
        const path = native ? "native" : "per-op";
        record(
          `prefill ${path} ${b}`,
          { kind: "prefill", path, batch: b, seq: prefillLength, round },
          b * prefillLength,
          r.seconds,
          r.cpuSeconds,
        );
      },
    })),
  ),
];

const wall = performance.now();
for (let r = 0; r < rounds; r++) {
  // Alternate the order each round, so a drift in the machine's load does not favour one side.
  const order = r % 2 === 0 ? tasks : [...tasks].reverse();
  for (const task of order) await task.go(r + 1);
  for (const [key, tokens] of pending.splice(0)) compare(key, tokens);
}
console.log(`wall ${((performance.now() - wall) / 1000).toFixed(0)} s`);

const med = (key: Key) => median(rates.get(key) ?? [Number.NaN]);
const medCpu = (key: Key) => median(cpuRates.get(key) ?? [Number.NaN]);
console.log(`\nmedian new tokens/s, greedy, ${newTokens} new tokens, prompts of 40-120 ids, quick model shape, random weights`);
console.log(
  "| batch | native batched | per-op batched | per-op one-at-a-time | native / one-at-a-time | per-op batched / one-at-a-time | native / per-op |",
);
console.log("|---|---|---|---|---|---|---|");
for (const b of batches) {
  const n = med(`gen native ${b}`);
  const p = med(`gen per-op ${b}`);
  const o = med(`gen one-at-a-time ${b}`);
  console.log(
    `| ${b} | ${n.toFixed(0)} | ${p.toFixed(0)} | ${o.toFixed(0)} | ${(n / o).toFixed(1)}x | ${(p / o).toFixed(1)}x | ${(n / p).toFixed(2)}x |`,
  );
}
console.log("\nthe same calls in new tokens per CPU-second of this process (less moved by the machine's load)");
console.log("| batch | native batched | per-op batched | per-op one-at-a-time | native / one-at-a-time | per-op batched / one-at-a-time |");
console.log("|---|---|---|---|---|---|");
for (const b of batches) {
  const n = medCpu(`gen native ${b}`);
  const p = medCpu(`gen per-op ${b}`);
  const o = medCpu(`gen one-at-a-time ${b}`);
  console.log(`| ${b} | ${n.toFixed(0)} | ${p.toFixed(0)} | ${o.toFixed(0)} | ${(n / o).toFixed(1)}x | ${(p / o).toFixed(1)}x |`);
}
console.log("\nthe same generate() calls split: prefill of the padded eval prompts alone (maxNewTokens 1), the rest decoding");
console.log(
  "| batch | padded width | real / padded positions | native prefill ms | native decode ms | per-op prefill ms | per-op decode ms |",
);
console.log("|---|---|---|---|---|---|---|");
for (const b of batches) {
  const ps = prompts.slice(0, b);
  const width = Math.max(...ps.map((p) => p.length));
  const ms = (key: Key, tokens: number) => (tokens / med(key)) * 1000;
  const split = (path: string) => {
    const prefill = ms(`eval prefill ${path} ${b}`, b * width);
    return `${prefill.toFixed(0)} | ${(ms(`gen ${path} ${b}`, b * newTokens) - prefill).toFixed(0)}`;
  };
  console.log(`| ${b} | ${width} | ${(tokensIn(ps) / (b * width)).toFixed(2)} | ${split("native")} | ${split("per-op")} |`);
}
console.log(`\nmedian prefill tokens/s, ${prefillLength} ids per row`);
console.log("| batch | native | per-op | native / per-op |");
console.log("|---|---|---|---|");
for (const b of prefillBatches) {
  const n = med(`prefill native ${b}`);
  const p = med(`prefill per-op ${b}`);
  console.log(`| ${b} | ${n.toFixed(0)} | ${p.toFixed(0)} | ${(n / p).toFixed(2)}x |`);
}
console.log(`\nmismatches against one-at-a-time per-op (tokens / rows, summed over ${rounds} rounds):`);
for (const [key, m] of mismatches)
  console.log(`  ${key}: ${m.tokens} tokens in ${m.rows} rows${m.firstRow === undefined ? "" : ` (first: prompt ${m.firstRow})`}`);
model.dispose();
