/**
 * Exports a synthetic world's pretraining documents and English QA probes exactly as our stack sees them, for the
 * independent PyTorch reference of issue 16 (bench/reading_reference.py, deviation 11 in
 * notebooks/experiments/016-reading-preregistration.md): the documents tokenised by the world's tokenizer (BOS …
 * EOS, one per corpus line) as int32 docs.bin with their lengths in lens.bin, the held-out and counterfactual
 * English probes in our probe's prompt form as JSON lines ({ ids, gold }), and meta.json (vocabulary, special ids).
 *
 *   npx tsx bench/export-world.ts /tmp/qaexp/world-docs180000-qa0.5-fresh1-q4 \
 *     /tmp/qaexp/world-docs180000-qa0.5-fresh1-q4/tokenizer-punct /tmp/proto/x4
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { probePrompt, type SynthQaSet } from "../src/synth/probe.js";
import { loadTokenizer } from "../src/tokenizer/index.js";
import { trainingTokenizer } from "../src/train/experiment.js";
import { readTextLines, tokenDocuments } from "../src/train/sequences.js";

const [world, tokDir, out] = process.argv.slice(2);
if (!world || !tokDir || !out) {
  console.error("usage: export-world.ts WORLD_DIR TOKENIZER_DIR OUT_DIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const tokenizer = await loadTokenizer(tokDir);
const tok = trainingTokenizer(tokenizer);
const docs = await tokenDocuments(await readTextLines([join(world, "pretrain", "corpus.txt")]), tok);
const lens = Int32Array.from(docs.map((d) => d.length));
const flat = new Int32Array(lens.reduce((a, b) => a + b, 0));
let at = 0;
for (const d of docs) {
  flat.set(d, at);
  at += d.length;
}
writeFileSync(join(out, "docs.bin"), Buffer.from(flat.buffer));
writeFileSync(join(out, "lens.bin"), Buffer.from(lens.buffer));
for (const name of ["xquad.en.json", "counterfactual.en.json"]) {
  const set = JSON.parse(readFileSync(join(world, "qa", name), "utf8")) as SynthQaSet;
  const items = set.data.flatMap((d) =>
    d.paragraphs.flatMap((p) => p.qas.map((q) => ({ prompt: probePrompt(p.context, q.question, true), gold: q.answers[0]!.text }))),
  );
  const enc = await tokenizer.encodeBatch(
    items.map((i) => i.prompt),
    { addBos: false, addEos: false },
  );
  const lines = items.map((it, i) => JSON.stringify({ ids: [tok.bosId, ...(enc[i] as number[])], gold: it.gold }));
  writeFileSync(join(out, name.replace(".json", ".jsonl")), lines.join("\n"));
}
const vocab = (JSON.parse(readFileSync(join(tokDir, "tokenizer.json"), "utf8")) as { model: { vocab: unknown } }).model.vocab;
writeFileSync(
  join(out, "meta.json"),
  JSON.stringify({ vocab, bos: tok.bosId, eos: tok.eosId, pad: tok.padId, docs: docs.length, tokens: flat.length }),
);
console.log(`docs ${docs.length} tokens ${flat.length} bos ${tok.bosId} eos ${tok.eosId} pad ${tok.padId}`);
