/**
 * Decoding benchmark (issue 19): batch-1 greedy tokens/s on the TinyStories-15M
 * shape (dim 288, hidden 768, 6 layers, 6 heads, vocab 32000, tied head) with
 * random weights, for xalign's native decode step and for the per-op TF.js
 * path (generate(..., { native: false })), at each thread count, in rounds
 * that alternate the two. When llama2.c's run.c is at hand (../shared/peers/
 * llama2.c, or --llama2c DIR) and gcc can build it, the same weights are
 * exported in its checkpoint format (wq/wk rows permuted from Hugging Face's
 * rotate-half layout to run.c's interleaved pairs) and run.c is timed in the
 * same rounds (one thread: `gcc -Ofast -march=native`; more: the same with
 * -fopenmp, OMP_NUM_THREADS and OMP_WAIT_POLICY=PASSIVE), with the ratios
 * printed. xalign's threads are the BLAS threads of the addon (the engine's
 * thread count), which its matrix-vector products use. The script also
 * says whether the three produced the same greedy text.
 *
 * xalign's tokens/s is new tokens over the whole generate() call (prefill of
 * the BOS prompt included); run.c reports its own, over every step after the
 * first.
 *
 *   node dist/bench/decode.js [--tokens 128] [--rounds 3] [--threads 1,2] [--llama2c DIR]
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { initEngine, nativeStatus, tf } from "../src/engine/index.js";
import { STORIES_15M } from "../src/model/benchmarks.js";
import { CONFIG_DEFAULTS, generate, type LlamaConfig, LlamaModel, NativeDecoder, toHfLayout } from "../src/model/index.js";
import { Rng } from "../src/util/rng.js";
import { repoRoot } from "../test/helpers.js";

const { values: opts } = parseArgs({
  options: {
    tokens: { type: "string", default: "128" },
    rounds: { type: "string", default: "3" },
    threads: { type: "string", default: "1,2" },
    llama2c: { type: "string", default: join(repoRoot(), "..", "shared", "peers", "llama2.c") },
  },
});
const newTokens = Number(opts.tokens);
const rounds = Number(opts.rounds);
const threadCounts = opts.threads.split(",").map(Number);

/** TinyStories-15M (llama2.c's stories15M): the shape run.c's README measures. */
const cfg: LlamaConfig = { ...CONFIG_DEFAULTS, ...STORIES_15M };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** A weight in Hugging Face layout ([out, in] for projections) as a Float32Array. */
function hfData(model: LlamaModel, name: string): Float32Array {
  return tf.tidy(() => toHfLayout(name, model.weight(name)).dataSync() as Float32Array);
}

/**
 * Rows of a q/k projection [heads * hd, in] from HF's rotate-half order (row h*hd + c*hd/2 + j) to run.c's
 * interleaved pairs (row h*hd + 2j + c), as llama2.c's export.py permute_reverse does.
 */
function interleaveRows(w: Float32Array, heads: number, hd: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = hd / 2;
  for (let h = 0; h < heads; h++)
    for (let c = 0; c < 2; c++)
      for (let j = 0; j < half; j++)
        out.set(w.subarray((h * hd + c * half + j) * cols, (h * hd + c * half + j + 1) * cols), (h * hd + 2 * j + c) * cols);
  return out;
}

/** The model in run.c's legacy checkpoint format (see ../shared/peers/llama2.c/README.md). */
function exportRunC(model: LlamaModel, file: string): void {
  const c = model.config;
  const hd = c.hidden_size / c.num_attention_heads;
  const layers = Array.from({ length: c.num_hidden_layers }, (_, l) => `model.layers.${l}`);
  const parts: Float32Array[] = [hfData(model, "model.embed_tokens.weight")];
  const perLayer = (suffix: string, map: (w: Float32Array) => Float32Array = (w) => w) => {
    for (const p of layers) parts.push(map(hfData(model, `${p}.${suffix}`)));
  };
  perLayer("input_layernorm.weight");
  perLayer("self_attn.q_proj.weight", (w) => interleaveRows(w, c.num_attention_heads, hd, c.hidden_size));
  perLayer("self_attn.k_proj.weight", (w) => interleaveRows(w, c.num_key_value_heads, hd, c.hidden_size));
  perLayer("self_attn.v_proj.weight");
  perLayer("self_attn.o_proj.weight");
  perLayer("post_attention_layernorm.weight");
  perLayer("mlp.gate_proj.weight");
  perLayer("mlp.down_proj.weight");
  perLayer("mlp.up_proj.weight");
  parts.push(hfData(model, "model.norm.weight"));
  parts.push(new Float32Array(c.max_position_embeddings * hd)); // freq_cis real and imaginary halves, unused by run.c
  if (!c.tie_word_embeddings) parts.push(hfData(model, "lm_head.weight"));
  const header = new Int32Array([
    c.hidden_size,
    c.intermediate_size,
    c.num_hidden_layers,
    c.num_attention_heads,
    c.num_key_value_heads,
    c.tie_word_embeddings ? c.vocab_size : -c.vocab_size,
    c.max_position_embeddings,
  ]);
  const bytes = [Buffer.from(header.buffer), ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))];
  writeFileSync(file, Buffer.concat(bytes));
}

/** run.c's tokenizer.bin pieces, to print our token ids the way run.c prints its own. */
function readPieces(file: string, vocab: number): string[] {
  const buf = readFileSync(file);
  const pieces: string[] = [];
  let at = 4; // max_token_length
  for (let i = 0; i < vocab; i++) {
    const len = buf.readInt32LE(at + 4);
    pieces.push(buf.subarray(at + 8, at + 8 + len).toString("latin1"));
    at += 8 + len;
  }
  return pieces;
}

/** run.c's decode + safe_printf: a leading space dropped after BOS, <0xXX> as a byte, unprintable bytes skipped. */
function runCText(pieces: string[], ids: number[]): string {
  let out = "";
  let prev = 1;
  for (const id of ids) {
    let piece = pieces[id] as string;
    if (prev === 1 && piece.startsWith(" ")) piece = piece.slice(1);
    const byte = /^<0x([0-9A-F]{2})>$/.exec(piece);
    if (byte) piece = String.fromCharCode(Number.parseInt(byte[1] as string, 16));
    if (piece.length === 1) {
      const code = piece.charCodeAt(0);
      if (!(code >= 32 && code < 127) && !/\s/.test(piece)) piece = "";
    }
    out += piece;
    prev = id;
  }
  return out;
}

interface RunC {
  binary(threads: number): string;
  model: string;
  tokenizer: string;
  pieces: string[];
  dir: string;
}

/** Builds run.c (one-thread and OpenMP binaries) and exports the model, or says why it cannot. */
function prepareRunC(model: LlamaModel): RunC | string {
  const src = join(opts.llama2c, "run.c");
  const tokenizer = join(opts.llama2c, "tokenizer.bin");
  if (!existsSync(src) || !existsSync(tokenizer)) return `no run.c and tokenizer.bin in ${opts.llama2c} (--llama2c DIR)`;
  const dir = mkdtempSync(join(tmpdir(), "xalign-decode-bench-"));
  const build = (out: string, extra: string[]) =>
    spawnSync("gcc", ["-Ofast", "-march=native", ...extra, "-o", join(dir, out), src, "-lm"], { encoding: "utf8" });
  const plain = build("run", []);
  if (plain.status !== 0) return `gcc could not build run.c: ${(plain.stderr || String(plain.error)).split("\n")[0]}`;
  const omp = build("runomp", ["-fopenmp"]);
  const model_ = join(dir, "model.bin");
  exportRunC(model, model_);
  return {
    binary: (threads) => join(dir, threads > 1 && omp.status === 0 ? "runomp" : "run"),
    model: model_,
    tokenizer,
    pieces: readPieces(tokenizer, cfg.vocab_size),
    dir,
  };
}

/** run.c's own tokens/s and its text: `-n N` runs N steps from BOS, printing N tokens. */
function timeRunC(runC: RunC, threads: number): { tokensPerS: number; text: string } {
  const r = spawnSync(runC.binary(threads), [runC.model, "-z", runC.tokenizer, "-t", "0", "-n", String(newTokens)], {
    encoding: "utf8",
    // PASSIVE: idle OpenMP threads sleep instead of spinning, which on a loaded machine starves everything.
    env: { ...process.env, OMP_NUM_THREADS: String(threads), OMP_WAIT_POLICY: "PASSIVE" },
  });
  const m = /achieved tok\/s: ([\d.]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`run.c failed: ${r.stderr || r.error}`);
  return { tokensPerS: Number(m[1]), text: r.stdout.replace(/\n$/, "") };
}

async function timeXalign(model: LlamaModel, native: boolean): Promise<{ tokensPerS: number; tokens: number[] }> {
  const start = performance.now();
  const out = await generate(model, [[1]], { maxNewTokens: newTokens, eosTokenId: [], native });
  const seconds = (performance.now() - start) / 1000;
  return { tokensPerS: newTokens / seconds, tokens: out.tokens[0] as number[] };
}

const engine = await initEngine({ backend: "wasm", threads: 1 });
const addon = nativeStatus().addon;
console.log(`engine: ${engine.device} — ${engine.reason}`);
console.log(`node ${process.version}, ${new Date().toISOString()}, ${newTokens} new tokens after BOS, ${rounds} rounds`);
const model = LlamaModel.init(cfg, new Rng(1));
const why = NativeDecoder.unsupported(model);
if (why || !addon) {
  console.log(`native decoding is unavailable: ${why ?? "no addon"}; nothing to compare`);
  process.exit(1);
}
const runC = prepareRunC(model);
if (typeof runC === "string") console.log(`run.c: skipped (${runC})`);
// Warm-up: the inference plan, the wasm kernels, the native session's first allocation.
await generate(model, [[1]], { maxNewTokens: 4, eosTokenId: [] });
await generate(model, [[1]], { maxNewTokens: 4, eosTokenId: [], native: false });

const same = { perOp: true, runC: true };
const rows: string[] = [];
for (const threads of threadCounts) {
  addon.setThreads(threads);
  addon.setElementwiseThreads(threads);
  const native: number[] = [];
  const perOp: number[] = [];
  const runc: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate the order each round, so a drift in the machine's load does not favour one side.
    const order = r % 2 === 0 ? ["native", "perOp", "runC"] : ["runC", "perOp", "native"];
    let nativeTokens: number[] = [];
    let runCText: string | undefined;
    for (const which of order) {
      if (which === "native") {
        const res = await timeXalign(model, true);
        native.push(res.tokensPerS);
        nativeTokens = res.tokens;
      } else if (which === "perOp") {
        const res = await timeXalign(model, false);
        perOp.push(res.tokensPerS);
        if (nativeTokens.length && res.tokens.join() !== nativeTokens.join()) same.perOp = false;
        if (!nativeTokens.length) nativeTokens = res.tokens;
      } else if (typeof runC !== "string") {
        const res = timeRunC(runC, threads);
        runc.push(res.tokensPerS);
        runCText = res.text;
      }
    }
    if (typeof runC !== "string" && runCText !== undefined && runCText !== runCTextOf(nativeTokens)) {
      if (same.runC) console.log(`run.c text:  ${JSON.stringify(runCText)}\nxalign text: ${JSON.stringify(runCTextOf(nativeTokens))}`);
      same.runC = false;
    }
    const fmt = (xs: number[]) => (xs.length ? (xs.at(-1) as number).toFixed(1) : "-");
    console.log(`threads ${threads} round ${r + 1}: native ${fmt(native)}  per-op ${fmt(perOp)}  run.c ${fmt(runc)} tokens/s`);
  }
  const n = median(native);
  const p = median(perOp);
  const c = runc.length ? median(runc) : undefined;
  rows.push(
    `| ${threads} | ${n.toFixed(1)} | ${p.toFixed(1)} | ${c === undefined ? "-" : c.toFixed(1)} | ${(n / p).toFixed(2)}x | ` +
      `${c === undefined ? "-" : `${(n / c).toFixed(2)}x`} | ${c === undefined ? "-" : `${(p / c).toFixed(2)}x`} |`,
  );
}

function runCTextOf(ids: number[]): string {
  return typeof runC === "string" ? "" : runCText(runC.pieces, ids);
}

console.log("\nmedian tokens/s (batch 1, greedy, TinyStories-15M shape, random weights)");
console.log("| threads | xalign native | xalign per-op | run.c | native / per-op | native / run.c | per-op / run.c |");
console.log("|---|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
console.log(`\nnative and per-op greedy tokens identical: ${same.perOp ? "yes" : "NO"}`);
if (typeof runC !== "string") {
  console.log(`run.c's greedy text identical to xalign's: ${same.runC ? "yes" : "NO"}`);
  rmSync(runC.dir, { recursive: true, force: true });
}
model.dispose();
