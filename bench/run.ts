/**
 * `npm run bench`, in order:
 * - train: training tokens/s and peak memory of the trainer's loop on both benchmark models of the
 *   foundation issue (tiny and larger), each beside PyTorch (CPU, OpenBLAS, OMP_WAIT_POLICY=PASSIVE, same
 *   thread count) measured in the same run, with the ratio (bench/train.ts; the options below pass to it);
 * - decode: batch-1 greedy decoding beside llama2.c's run.c at 1 and 2 threads (bench/decode.ts);
 * - eval: batched evaluation throughput against the one-at-a-time harness at batch 8/32/128, and prefill
 *   (bench/eval-throughput.ts).
 * `--only train,decode,eval` picks some (e.g. `npm run bench -- --only decode`).
 *
 *   node dist/bench/run.js [--only train,decode,eval] [--models tiny,larger] [--modes full] [--threads 1] [--steps N] [--rounds 3]
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { initEngine } from "../src/engine/index.js";

const argv = process.argv.slice(2);
const onlyAt = argv.indexOf("--only");
const only = new Set((onlyAt >= 0 ? (argv[onlyAt + 1] ?? "") : "train,decode,eval").split(","));
for (const part of only) {
  if (!["train", "decode", "eval"].includes(part)) {
    console.error(`bench: unknown part "${part}" after --only: use train, decode or eval (comma-separated)`);
    process.exit(2);
  }
}
const args = onlyAt >= 0 ? [...argv.slice(0, onlyAt), ...argv.slice(onlyAt + 2)] : argv;
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
/** Runs bench/<name> (the .ts beside this file under tsx, else the compiled .js) with `options`; its exit status. */
const part = (name: string, options: string[]): number => {
  const file = fileURLToPath(new URL(self.endsWith(".ts") ? `./${name}.ts` : `./${name}.js`, import.meta.url));
  const command = self.endsWith(".ts") ? ["--import", "tsx", file] : [file];
  console.log(`\n## bench/${name}`);
  return spawnSync(process.execPath, [...command, ...options], { stdio: "inherit" }).status ?? 1;
};
// Every chosen part runs; the first failure's status is the exit status.
const statuses = [
  only.has("train") ? part("train", [...defaults, ...args]) : 0,
  only.has("decode") ? part("decode", []) : 0,
  only.has("eval") ? part("eval-throughput", []) : 0,
];
process.exit(statuses.find((s) => s !== 0) ?? 0);
