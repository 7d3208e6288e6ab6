/** `xalign synth build`: writes a synthetic world's data sets. */

import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type BackendName, initEngine } from "../engine/index.js";
import { loadCheckpoint } from "../model/checkpoint.js";
import { greedyComplete } from "../study/complete.js";
import { answerPieces, copyProbe } from "../study/probes.js";
import {
  buildSynthWorld,
  competenceProbe,
  PRESET_GROUPS,
  PRESET_LANGUAGES,
  type ProbeResult,
  parseMix,
  parseSizes,
  presetBpeSharing,
  presetSimilarity,
  type SynthQaSet,
  similarityTable,
} from "../synth/index.js";
import { loadTokenizer } from "../tokenizer/index.js";
import { ConfigError } from "../util/errors.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign synth build --preset PRESET --out DIR [--seed N] [--sizes k=v,...] [--mix lang=share,...] [--epochs N]
       xalign synth probe --model DIR --world DIR [--languages en,vi,...] [--limit N] [--backend B]
                          (plain-text QA accuracy of a pretrained model per language, next to chance)
       xalign synth table [--preset PRESET] [--seed N] [--bpe]   (the measured similarity table, markdown;
                          --bpe adds the shared-token rate under a 4k BPE trained on the same sentences)

Generates a synthetic multilingual world and writes, for each language of the
preset: parallel train pairs (parallel/en-X/train.{en,X}), Flores-like held-out
sets (flores/{dev,devtest}/X.{dev,devtest}), Alpaca-like instructions
(instructions/alpaca.X.json), XQuAD-like QA with its chance level
(qa/xquad.X.json), the imbalanced pretraining corpus (pretrain/corpus.txt and
corpus.langs) and manifest.json. The same seed gives byte-identical files.

  --preset   ${Object.keys(PRESET_GROUPS).join(", ")}, a language (${Object.keys(PRESET_LANGUAGES).join(", ")}) or codes joined by commas
  --seed     world seed (default 1)
  --sizes    people, heldOutPeople, places, parallel, dev, devtest, instructions, qa, pretrain
             e.g. --sizes parallel=2000,qa=100
  --mix      pretraining shares, e.g. en=0.9 (unnamed languages split the rest; default en=0.86)
  --epochs   instruction sets to write, each sampled fresh (default 1; epoch k goes to instructions/epoch-k/)
  --qa-share        share of pretraining documents followed by questions and answers (default 0.3)
  --fresh-share     share of those stating freshly drawn facts of their people: read, not recalled (default 0)
  --questions       questions after each QA pretraining document, at most (default 2)
  --counterfactual  counterfactual QA passages per language (train names, fresh facts) for \`synth probe\` (default 0)
  --quiet    no progress lines`;

/** `xalign synth table --preset P [--seed N]`: the measured similarity table, as in datasets/README.md. */
async function table(argv: string[]): Promise<number> {
  const { values } = parseCommand(
    "synth table",
    argv,
    { preset: { type: "string" }, seed: { type: "string" }, bpe: { type: "boolean" } },
    false,
  );
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0)
    throw new ConfigError("XA_CLI_ARGS", `--seed ${values.seed} is not a non-negative integer`, { field: "seed" });
  const preset = typeof values.preset === "string" ? values.preset : "paper";
  console.log(similarityTable(presetSimilarity(preset, seed), values.bpe ? await presetBpeSharing(preset, seed) : undefined));
  return 0;
}

/**
 * `xalign synth probe`: has a pretrained model learned each language at all?
 * Plain-text QA (passage, then question) on the world's XQuAD-like sets,
 * greedy answers, scored by containment, next to each set's chance level.
 */
async function probe(argv: string[]): Promise<number> {
  const { values } = parseCommand(
    "synth probe",
    argv,
    {
      model: { type: "string" },
      world: { type: "string" },
      languages: { type: "string" },
      limit: { type: "string" },
      backend: { type: "string" },
    },
    false,
  );
  if (typeof values.model !== "string" || typeof values.world !== "string") {
    throw new ConfigError("XA_CLI_ARGS", "--model DIR and --world DIR are required", {
      hint: "--model is a Hugging Face folder with a tokenizer; --world is an `xalign synth build` output",
    });
  }
  const world = values.world;
  await initEngine(typeof values.backend === "string" ? { backend: values.backend as BackendName } : {});
  const model = await loadCheckpoint(values.model);
  const tokenizer = await loadTokenizer(values.model);
  const manifest = JSON.parse(await readFile(join(world, "manifest.json"), "utf8")) as { languages: { code: string }[] };
  const langs = typeof values.languages === "string" ? values.languages.split(",") : manifest.languages.map((l) => l.code);
  const sets = await Promise.all(
    langs.map(async (l) => JSON.parse(await readFile(join(world, "qa", `xquad.${l}.json`), "utf8")) as SynthQaSet),
  );
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  const results = await competenceProbe(sets, (prompts) => greedyComplete(model, tokenizer, prompts, { maxNewTokens: 16, batchSize: 32 }), {
    limit,
  });
  // Reading probes: counterfactual passages (train names, fresh facts: read, or answer from memory?) and copying.
  const cfFile = join(world, "qa", "counterfactual.en.json");
  const counterfactual = existsSync(cfFile)
    ? (
        await competenceProbe(
          [JSON.parse(await readFile(cfFile, "utf8")) as SynthQaSet],
          (prompts) => greedyComplete(model, tokenizer, prompts, { maxNewTokens: 16, batchSize: 32 }),
          { limit },
        )
      )[0]
    : undefined;
  const en = JSON.parse(await readFile(join(world, "qa", "xquad.en.json"), "utf8")) as SynthQaSet;
  const pieces = await answerPieces(en, tokenizer);
  const copy = copyProbe(model, model.config.bos_token_id, pieces, { spans: 64, seed: 7 });
  model.dispose();
  const pct = (x: number | undefined, w: number) => (x === undefined ? "" : (100 * x).toFixed(1)).padStart(w);
  console.log("set                  questions  contains %  exact %  memorised %  chance %");
  const line = (name: string, r: ProbeResult) =>
    console.log(
      `${name.padEnd(19)}  ${String(r.questions).padStart(9)}  ${pct(r.accuracy, 10)}  ${pct(r.exact, 7)}  ${pct(r.memorised, 11)}  ${pct(r.chance, 8)}`,
    );
  for (const r of results) line(r.language, r);
  if (counterfactual) line("en counterfactual", counterfactual);
  console.log(`copy probe (top-1 on a repeated span of names and values): ${(100 * copy).toFixed(1)}%`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === "table") return table(rest);
  if (sub === "probe") return probe(rest);
  if (sub !== "build") throw new ConfigError("XA_CLI_ARGS", `unknown synth subcommand "${sub}"`, { hint: "run `xalign synth --help`" });
  const { values } = parseCommand(
    "synth build",
    rest,
    {
      preset: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      sizes: { type: "string" },
      mix: { type: "string" },
      epochs: { type: "string" },
      "qa-share": { type: "string" },
      "fresh-share": { type: "string" },
      questions: { type: "string" },
      counterfactual: { type: "string" },
      quiet: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    false,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.preset !== "string") throw new ConfigError("XA_CLI_ARGS", "--preset is required", { hint: "e.g. --preset paper" });
  if (typeof values.out !== "string") throw new ConfigError("XA_CLI_ARGS", "--out is required", { hint: "e.g. --out runs/synth" });
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0)
    throw new ConfigError("XA_CLI_ARGS", `--seed ${values.seed} is not a non-negative integer`, { field: "seed" });
  const started = Date.now();
  const manifest = await buildSynthWorld(values.out, {
    preset: values.preset,
    seed,
    sizes: typeof values.sizes === "string" ? parseSizes(values.sizes) : {},
    mix: typeof values.mix === "string" ? parseMix(values.mix) : {},
    instructionEpochs: values.epochs === undefined ? 1 : Number(values.epochs),
    ...(values["qa-share"] !== undefined ? { pretrainQaShare: Number(values["qa-share"]) } : {}),
    ...(values["fresh-share"] !== undefined ? { pretrainFreshShare: Number(values["fresh-share"]) } : {}),
    ...(values.questions !== undefined ? { pretrainQuestions: Number(values.questions) } : {}),
    ...(values.counterfactual !== undefined ? { counterfactual: Number(values.counterfactual) } : {}),
    onProgress: values.quiet ? undefined : (label, done, total) => process.stderr.write(`[${done}/${total}] ${label}\n`),
  });
  const bytes = manifest.files.reduce((s, f) => s + f.bytes, 0);
  console.log(
    `wrote ${manifest.files.length + 1} files (${(bytes / 1e6).toFixed(1)} MB) to ${values.out} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  console.log("language  shared-token rate  crossing rate  QA chance");
  for (const s of manifest.similarity) {
    console.log(
      `${s.code.padEnd(9)} ${s.sharedTokenRate.toFixed(3).padStart(17)}  ${s.crossingRate.toFixed(3).padStart(13)}  ${(manifest.qaChance[s.code] ?? 0).toFixed(3).padStart(9)}`,
    );
  }
  return 0;
}
