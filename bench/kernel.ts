/**
 * Kernel speed: start to ready (kernel_info_reply), the first cell (which
 * builds the TypeScript program), and a `1 + 1` round trip. Baselines from
 * the same run: a bare `node -e 0` start, and a kernel_info round trip (no
 * compilation), so figures from a shared machine can be read as ratios.
 *
 * Run: node --import tsx bench/kernel.ts   (or node dist/bench/kernel.js after a build)
 */
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import { kernelArgv } from "../kernel/spec.js";
import { KernelClient } from "../src/runner/client.js";

const STARTS = Number(process.env.XALIGN_BENCH_STARTS ?? 3);
const ROUND_TRIPS = Number(process.env.XALIGN_BENCH_ROUND_TRIPS ?? 30);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timed<T>(f: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const value = await f();
  return [performance.now() - t, value];
}

const nodeStart: number[] = [];
for (let i = 0; i < STARTS; i++) {
  const t = performance.now();
  execFileSync(process.execPath, ["-e", "0"]);
  nodeStart.push(performance.now() - t);
}

const ready: number[] = [];
const firstCell: number[] = [];
let roundTrips: number[] = [];
let infoTrips: number[] = [];
for (let i = 0; i < STARTS; i++) {
  const started = performance.now();
  const client = await KernelClient.launch({ argv: kernelArgv(), cwd: process.cwd() });
  try {
    await client.waitReady(60_000);
    ready.push(performance.now() - started);
    const [first] = await timed(() => client.execute("1 + 1"));
    firstCell.push(first);
    if (i === STARTS - 1) {
      for (let j = 0; j < ROUND_TRIPS; j++) {
        const [ms, outcome] = await timed(() => client.execute("1 + 1"));
        if ((outcome.reply.content as { status?: string }).status !== "ok")
          throw new Error(`1 + 1 failed: ${JSON.stringify(outcome.reply.content)}`);
        roundTrips.push(ms);
        infoTrips.push((await timed(() => client.request("shell", "kernel_info_request", {})))[0]);
      }
    }
  } finally {
    await client.shutdown();
  }
}
roundTrips = roundTrips.slice(0);
infoTrips = infoTrips.slice(0);

const mode = kernelArgv().includes("--import") ? "kernel from src via tsx" : "kernel from dist";
const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
console.log(`Kernel benchmark (${mode}; ${cpus()[0]?.model ?? "cpu"} x${cpus().length}, Node ${process.version})\n`);
console.log("| measure | median | min | max | baseline (same run) | ratio | goal |");
console.log("|---|---|---|---|---|---|---|");
const row = (name: string, xs: number[], base: number[], baseName: string, goal: string) =>
  console.log(
    `| ${name} | ${fmt(median(xs))} | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} | ${baseName} ${fmt(median(base))} | ${(median(xs) / median(base)).toFixed(1)}x | ${goal} |`,
  );
row(`start to ready (kernel_info_reply), n=${STARTS}`, ready, nodeStart, "`node -e 0`", "< 2 s");
row(`first cell \`1 + 1\` (builds the TS program), n=${STARTS}`, firstCell, nodeStart, "`node -e 0`", "-");
row(`\`1 + 1\` round trip, n=${ROUND_TRIPS}`, roundTrips, infoTrips, "kernel_info round trip", "< 100 ms");
