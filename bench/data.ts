/**
 * Data toolkit throughput: read a Moses pair of files, clean (length, ratio,
 * script filters) and build translation instructions, on one core.
 * Each configuration runs in a fresh child process so its peak RSS is its own;
 * the baseline (reading lines only) runs in the same way. Throughput is
 * reported per wall-clock second and per CPU-second of the process (on a
 * shared, oversubscribed machine the second is the one-core figure; GC
 * threads count too, so it errs low), and as a ratio to the baseline.
 *
 *   node --import tsx bench/data.ts            (or node dist/bench/data.js)
 *   node --import tsx bench/data.ts --sizes 200000,1000000 --repeats 3
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  buildTranslationInstructions,
  cleanPairs,
  type InstructionExample,
  PairCleaner,
  readLineBatches,
  readMosesPairBatches,
  readMosesPairs,
  TranslationInstructionBuilder,
} from "../src/data/index.js";
import { Rng } from "../src/util/rng.js";

type Mode = "read-lines" | "pipeline" | "pipeline+dedupe" | "pipeline (per-pair generators)";
const MODES: Mode[] = ["read-lines", "pipeline", "pipeline+dedupe", "pipeline (per-pair generators)"];

const WORDS = "the of and to in is was for on that with as by at from his he it an were are which this be or has".split(" ");
const HAN =
  "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严";

function sentences(n: number, seed: number): { en: string; zh: string } {
  const rng = new Rng(seed);
  const en: string[] = [];
  const zh: string[] = [];
  for (let i = 0; i < n; i++) {
    const words = 5 + rng.int(8);
    const e: string[] = [];
    for (let w = 0; w < words; w++) e.push(WORDS[rng.int(WORDS.length)] as string);
    en.push(`${e.join(" ")} ${i}.`);
    let z = "";
    const chars = 6 + rng.int(14);
    for (let c = 0; c < chars; c++) z += HAN[rng.int(HAN.length)];
    zh.push(`${z}${i}。`);
  }
  return { en: `${en.join("\n")}\n`, zh: `${zh.join("\n")}\n` };
}

async function runOnce(mode: Mode, en: string, zh: string): Promise<number> {
  if (mode === "read-lines") {
    let n = 0;
    for await (const b of readLineBatches(en)) n += b.lines.length;
    for await (const b of readLineBatches(zh)) n += b.lines.length;
    return n / 2;
  }
  const cleaner = new PairCleaner({
    maxLength: 256,
    maxRatio: 9,
    targetScript: "zh",
    ...(mode === "pipeline+dedupe" ? { dedupe: "normalized" as const } : {}),
  });
  const options = { srcLang: "en", tgtLang: "zh", source: "bench" };
  let n = 0;
  if (mode === "pipeline (per-pair generators)") {
    for await (const ex of buildTranslationInstructions(cleanPairs(readMosesPairs(en, zh), cleaner), options))
      if (ex.output.length > 0) n++;
    return n;
  }
  // what buildMixture does for a Moses translation source, minus holding the examples
  const builder = new TranslationInstructionBuilder(options);
  const out: InstructionExample[] = [];
  for await (const batch of readMosesPairBatches(en, zh)) {
    for (const pair of batch) if (cleaner.keep(pair.src, pair.tgt)) builder.add(pair, out);
    n += out.length;
    out.length = 0;
  }
  return n;
}

async function child(mode: Mode, en: string, zh: string, repeats: number): Promise<void> {
  const wall: number[] = [];
  const cpu: number[] = [];
  let pairs = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    pairs = await runOnce(mode, en, zh);
    const c = process.cpuUsage(c0);
    wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
    cpu.push((c.user + c.system) / 1e6);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  process.stdout.write(
    JSON.stringify({ pairs, seconds: median(wall), cpuSeconds: median(cpu), maxRssMiB: process.resourceUsage().maxRSS / 1024 }),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: "string" },
      repeats: { type: "string" },
      child: { type: "string" },
      en: { type: "string" },
      zh: { type: "string" },
    },
  });
  const repeats = Number(values.repeats ?? 3);
  if (values.child) return child(values.child as Mode, values.en as string, values.zh as string, repeats);
  const sizes = (values.sizes ?? "200000,1000000").split(",").map(Number);
  const dir = mkdtempSync(join(tmpdir(), "xalign-bench-data-"));
  const self = fileURLToPath(import.meta.url);
  const rows: string[] = [];
  try {
    for (const n of sizes) {
      const { en, zh } = sentences(n, 1);
      const enPath = join(dir, `${n}.en`);
      const zhPath = join(dir, `${n}.zh`);
      writeFileSync(enPath, en);
      writeFileSync(zhPath, zh);
      const mib = (Buffer.byteLength(en) + Buffer.byteLength(zh)) / 2 ** 20;
      let baseline = 0;
      for (const mode of MODES) {
        const out = execFileSync(
          process.execPath,
          [...process.execArgv, self, "--child", mode, "--en", enPath, "--zh", zhPath, "--repeats", String(repeats)],
          { encoding: "utf8" },
        );
        const r = JSON.parse(out) as { pairs: number; seconds: number; cpuSeconds: number; maxRssMiB: number };
        const rate = n / r.seconds;
        const cpuRate = n / r.cpuSeconds;
        if (mode === "read-lines") baseline = cpuRate;
        const fmt = (x: number) => Math.round(x).toLocaleString("en");
        rows.push(
          `| ${n.toLocaleString("en")} (${mib.toFixed(1)} MiB) | ${mode} | ${fmt(rate)} | ${fmt(cpuRate)} | ${(cpuRate / baseline).toFixed(2)} | ${r.maxRssMiB.toFixed(0)} |`,
        );
        console.error(
          `${n} ${mode}: ${fmt(rate)} pairs/s wall, ${fmt(cpuRate)} pairs per CPU-second, peak RSS ${r.maxRssMiB.toFixed(0)} MiB`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`Machine: ${cpus()[0]?.model ?? "unknown"}, Node ${process.version}; median of ${repeats} runs per child process.\n`);
  console.log("| pairs (input) | configuration | pairs/s (wall) | pairs per CPU-second | vs read-lines (CPU) | peak RSS MiB |");
  console.log("| ---: | --- | ---: | ---: | ---: | ---: |");
  for (const r of rows) console.log(r);
}

await main();
