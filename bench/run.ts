/**
 * `npm run bench`: training tokens/s and peak memory of the trainer's loop on
 * both benchmark models of the foundation issue (tiny and larger), each beside
 * PyTorch (CPU, OpenBLAS, OMP_WAIT_POLICY=PASSIVE, same thread count) measured
 * in the same run, with the ratio. A thin front for bench/train.ts; pass its
 * options through (e.g. `npm run bench -- --threads 2 --steps 6`).
 *
 *   node dist/bench/run.js [--models tiny,larger] [--modes full] [--threads 1] [--steps N] [--rounds 3]
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { initEngine } from "../src/engine/index.js";

const args = process.argv.slice(2);
const has = (flag: string): boolean => args.includes(flag);
const defaults = [
  ...(has("--models") ? [] : ["--models", "tiny,larger"]),
  ...(has("--modes") ? [] : ["--modes", "full"]),
  ...(has("--steps") ? [] : ["--steps", "6"]),
  ...(has("--rounds") ? [] : ["--rounds", "3"]),
];
const threadsAt = args.indexOf("--threads");
const engine = await initEngine({ backend: "wasm", threads: threadsAt >= 0 ? Number(args[threadsAt + 1]) : 1 });
console.log(`engine: ${engine.device} — ${engine.reason}`);
console.log(`node ${process.version}, ${new Date().toISOString()}`);
const self = fileURLToPath(import.meta.url);
const train = fileURLToPath(new URL(self.endsWith(".ts") ? "./train.ts" : "./train.js", import.meta.url));
const runner = self.endsWith(".ts") ? [process.execPath, "--import", "tsx", train] : [process.execPath, train];
const r = spawnSync(runner[0] as string, [...runner.slice(1), ...defaults, ...args], { stdio: "inherit" });
process.exit(r.status ?? 1);
