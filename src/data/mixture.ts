/**
 * Building a mixture from a spec: read -> clean -> build each source, take
 * exact seeded counts, carve a validation split, shuffle, and cut nested
 * scale subsets. Every random choice comes from one `Rng(spec.seed)` forked
 * by a fixed label, so the same spec and seed give the same examples in the
 * same order on every run and machine.
 *
 * Memory: readers, filters and builders stream; a source's built examples are
 * held in memory so that counts and ratios can be exact (the study's mixtures
 * are at most a few hundred thousand examples per source).
 */
import { isAbsolute, resolve } from "node:path";
import { ConfigError, DataError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import {
  buildCrossLingualGeneral,
  buildGeneralInstructions,
  buildQaInstructions,
  buildTranslationInstructions,
  TranslationInstructionBuilder,
} from "./builders.js";
import { type CleanCounts, cleanPairs, PairCleaner } from "./clean.js";
import type { AlpacaRecord, InstructionExample } from "./example.js";
import { fileSize } from "./lines.js";
import { readMosesPairBatches, type SentencePair } from "./readers/aligned.js";
import { readAlpacaJson } from "./readers/alpaca.js";
import { toAlpacaRecords, toSentencePairs } from "./readers/fields.js";
import { floresFile, readFlores } from "./readers/flores.js";
import { type JsonRecord, readJsonl } from "./readers/jsonl.js";
import { readParquet } from "./readers/parquet.js";
import { type QaRecord, readSquad } from "./readers/squad.js";
import { readTsvPairs } from "./readers/tsv.js";
import { buildHintedTranslation, buildInteractiveTranslation } from "./recipes.js";
import { type ReadOptions, ReadReport } from "./report.js";
import { allocate, seededOrder, temperatureWeights } from "./sampling.js";
import type { BUILD_INPUTS, BuildName, MixtureSpec, ReaderName, SourceOf, SourceSpec, SourceYield } from "./spec.js";

export interface BuildProgress {
  source: string;
  /** 0-based index of the source, and how many there are. */
  index: number;
  sources: number;
  bytesRead: number;
  bytesTotal: number;
}

/** Default of the CLI's --max-invalid (BuildOptions.maxInvalid). */
export const DEFAULT_MAX_INVALID = 0.5;

export interface BuildOptions {
  /** Skip and count bad records instead of failing (the CLI's --skip-invalid). */
  skipInvalid?: boolean;
  /**
   * With skipInvalid: the largest share of a source's records that may be
   * skipped as invalid (default: no limit; the CLI's --max-invalid defaults
   * to DEFAULT_MAX_INVALID, 0.5). Above it the build fails: the file is
   * probably not what the spec says (a wrong path, another format).
   */
  maxInvalid?: number;
  onProgress?: (progress: BuildProgress) => void;
}

/** What happened to one source, for the manifest and the summary. */
export interface SourceSummary {
  name: string;
  reader: SourceSpec["reader"];
  build: SourceSpec["build"];
  /** Language the examples are tagged with. */
  lang: string;
  /** Absolute paths of the files read. */
  inputs: string[];
  read: { records: number; skipped: Record<string, number> };
  clean?: CleanCounts;
  /** Examples after cleaning and building. */
  available: number;
  /** Taken into the mixture (train + validation). */
  selected: number;
  validation: number;
  train: number;
}

export interface MixtureResult {
  spec: MixtureSpec;
  train: InstructionExample[];
  validation: InstructionExample[];
  /** Nested subsets of the train split, smallest first. */
  scales: { size: number; train: InstructionExample[] }[];
  sources: SourceSummary[];
  /** Per-language weights and counts when temperature sampling was used. */
  temperature?: { t: number; total: number; weights: Record<string, number>; counts: Record<string, number> };
}

interface BuiltSource {
  spec: SourceSpec;
  summary: SourceSummary;
  examples: InstructionExample[];
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

function exampleLang(s: SourceSpec): string {
  if (s.lang) return s.lang;
  if (s.src_lang && s.tgt_lang) return s.src_lang === "en" ? s.tgt_lang : s.src_lang;
  return "und";
}

/** What a reader yields (see `SourceYield` in spec.ts): pairs (in batches too, for the hot path), records or questions. */
type SourceData =
  | { kind: "pairs"; pairs: AsyncIterable<SentencePair>; batches?: AsyncIterable<SentencePair[]> }
  | { kind: "records"; records: AsyncIterable<AlpacaRecord> }
  | { kind: "qa"; questions: AsyncIterable<QaRecord> };
type DataOf<K extends SourceYield> = Extract<SourceData, { kind: K }>;

/** A reader opened on one source: the files it reads (absolute, progress follows the first) and its stream. */
interface OpenSource {
  inputs: [string, ...string[]];
  read(options: ReadOptions): SourceData;
}

/** A field the spec's checks guarantee for this source (a MixtureSpec built by hand may still lack it). */
function given<T>(value: T | undefined, s: SourceSpec, field: string): T {
  if (value === undefined) {
    throw new ConfigError("XA_DATA_SPEC", `source ${s.name} (reader ${s.reader}, build ${s.build}) needs ${field}`, {
      field: `sources.${s.name}.${field}`,
      hint: "parse the mixture with parseMixtureSpec or loadMixtureSpec, which check it",
    });
  }
  return value;
}

function oneFile(file: string, read: (file: string, options: ReadOptions) => SourceData): OpenSource {
  return { inputs: [file], read: (options) => read(file, options) };
}

/** Fields of JSON records (jsonl, parquet) as pairs when `fields` names a src, else as Alpaca records. */
function fieldData(
  s: SourceOf<"jsonl"> | SourceOf<"parquet">,
  raw: AsyncIterable<JsonRecord>,
  file: string,
  options: ReadOptions,
): SourceData {
  const unit = s.reader === "jsonl" ? "line" : "row";
  if (s.fields?.src !== undefined)
    return { kind: "pairs", pairs: toSentencePairs(raw, { src: s.fields.src, tgt: s.fields.tgt ?? "tgt" }, { ...options, file, unit }) };
  return { kind: "records", records: toAlpacaRecords(raw, { ...options, file, unit, fields: s.fields ?? {} }) };
}

type Resolve = (path: string) => string;

/** Each reader: which files a source of it reads, and how. */
const READERS: { [R in ReaderName]: (s: SourceOf<R>, at: Resolve) => OpenSource } = {
  moses: (s, at) => {
    const src = at(s.files[0]);
    const tgt = at(s.files[1]);
    return {
      inputs: [src, tgt],
      read: (options) => {
        const batches = readMosesPairBatches(src, tgt, options);
        return { kind: "pairs", pairs: flatten(batches), batches };
      },
    };
  },
  tsv: (s, at) =>
    oneFile(at(s.path), (file, options) => ({
      kind: "pairs",
      pairs: readTsvPairs(file, { ...options, srcColumn: s.src_column, tgtColumn: s.tgt_column, header: s.header }),
    })),
  flores: (s, at) => {
    const src = floresFile(at(s.path), given(s.src_lang, s, "src_lang"), s.split);
    const tgt = floresFile(at(s.path), given(s.tgt_lang, s, "tgt_lang"), s.split);
    return {
      inputs: [src, tgt],
      read: (options) => ({
        kind: "pairs",
        pairs: (async function* () {
          for await (const row of readFlores({ src, tgt }, options))
            yield { src: row.texts.src as string, tgt: row.texts.tgt as string, line: row.line };
        })(),
      }),
    };
  },
  jsonl: (s, at) => oneFile(at(s.path), (file, options) => fieldData(s, readJsonl(file, options), file, options)),
  parquet: (s, at) => oneFile(at(s.path), (file, options) => fieldData(s, readParquet(file, options), file, options)),
  alpaca: (s, at) => oneFile(at(s.path), (file, options) => ({ kind: "records", records: readAlpacaJson(file, options) })),
  squad: (s, at) =>
    oneFile(at(s.path), (file, options) => ({
      kind: "qa",
      questions: readSquad(file, { ...options, ...(s.lang ? { lang: s.lang } : {}) }),
    })),
};

/** The reader of `s` (a generic call, so that each reader gets its own source type). */
function openSource<R extends ReaderName>(reader: R, s: SourceOf<R>, at: Resolve): OpenSource {
  return READERS[reader](s, at);
}

interface BuildContext {
  spec: MixtureSpec;
  s: SourceSpec;
  lang: string;
  at: Resolve;
  options: ReadOptions;
}

/** The languages and source of a pair build (the spec requires src_lang and tgt_lang for them). */
function pairLangs(s: SourceSpec): { srcLang: string; tgtLang: string; source: string } {
  return { srcLang: given(s.src_lang, s, "src_lang"), tgtLang: given(s.tgt_lang, s, "tgt_lang"), source: s.name };
}

/** Each build: what it consumes (spec.ts's BUILD_INPUTS) and how it makes examples of it. */
const BUILDERS: {
  [B in BuildName]: {
    input: (typeof BUILD_INPUTS)[B];
    build(data: DataOf<(typeof BUILD_INPUTS)[B]>, c: BuildContext): AsyncIterable<InstructionExample>;
  };
} = {
  translation: {
    input: "pairs",
    build: ({ pairs }, { s }) => buildTranslationInstructions(pairs, { ...pairLangs(s), direction: s.direction, template: s.template }),
  },
  interactive: { input: "pairs", build: ({ pairs }, { s }) => buildInteractiveTranslation(pairs, { ...pairLangs(s), turns: s.turns }) },
  hinted: {
    input: "pairs",
    build: ({ pairs }, { s, spec }) =>
      buildHintedTranslation(pairs, { ...pairLangs(s), seed: spec.seed, ...(s.hint_mix ? { mix: s.hint_mix } : {}) }),
  },
  general: { input: "records", build: ({ records }, { s, lang }) => buildGeneralInstructions(records, { lang, source: s.name }) },
  "cross-lingual-general": {
    input: "records",
    build: ({ records }, { s, lang, at, options }) => {
      const file = at(given(s.translated, s, "translated"));
      return buildCrossLingualGeneral(records, readAlpacaJson(file, { ...options, onBytes: undefined }), {
        lang,
        source: s.name,
        file,
        ...(s.response_hint !== undefined ? { responseHint: s.response_hint } : {}),
      });
    },
  },
  qa: {
    input: "qa",
    build: ({ questions }, { s }) => buildQaInstructions(questions, { source: s.name, instructionLang: s.instruction_lang }),
  },
};

/** Runs the source's build on what its reader yields; the spec's checks make the two match. */
function buildExamples(data: SourceData, c: BuildContext): AsyncIterable<InstructionExample> {
  const builder = BUILDERS[c.s.build];
  if (builder.input === "pairs" && data.kind === "pairs") return builder.build(data, c);
  if (builder.input === "records" && data.kind === "records") return builder.build(data, c);
  if (builder.input === "qa" && data.kind === "qa") return builder.build(data, c);
  throw new ConfigError(
    "XA_DATA_SPEC",
    `source ${c.s.name}: build ${c.s.build} needs ${builder.input}, but reader ${c.s.reader} gives ${data.kind}`,
    { field: `sources.${c.s.name}.build`, hint: "parse the mixture with parseMixtureSpec or loadMixtureSpec, which check it" },
  );
}

/** Reads, cleans and builds one source into examples. */
async function buildSource(spec: MixtureSpec, s: SourceSpec, index: number, options: BuildOptions): Promise<BuiltSource> {
  const at = (p: string) => (isAbsolute(p) ? p : resolve(spec.baseDir, p));
  const report = new ReadReport();
  const source = openSource(s.reader, s, at);
  const inputs: string[] = [...source.inputs];
  if (s.translated) inputs.push(at(s.translated));
  const bytesTotal = await fileSize(source.inputs[0]);
  const readOptions = {
    skipInvalid: options.skipInvalid ?? false,
    report,
    onBytes: (bytesRead: number) => options.onProgress?.({ source: s.name, index, sources: spec.sources.length, bytesRead, bytesTotal }),
  };
  let data = source.read(readOptions);
  let cleaner: PairCleaner | undefined;
  if (s.clean) {
    const c = s.clean;
    const pairs = data.kind === "pairs";
    const targetLang = pairs ? s.tgt_lang : s.lang;
    cleaner = new PairCleaner({
      dropEmpty: c.drop_empty,
      minLength: c.min_length,
      ...(c.max_length !== undefined ? { maxLength: c.max_length } : {}),
      ...(c.max_ratio !== undefined ? { maxRatio: c.max_ratio } : {}),
      dedupe: c.dedupe,
      ...(c.script && targetLang ? { targetScript: targetLang } : {}),
      ...(c.script && pairs && s.src_lang ? { sourceScript: s.src_lang } : {}),
      minScriptFraction: c.min_script_fraction,
    });
  }
  const lang = exampleLang(s);
  if (data.kind === "pairs" && data.batches && s.build === "translation") {
    // the hot path (large parallel corpora): one await per batch, not per pair
    const builder = new TranslationInstructionBuilder({ ...pairLangs(s), direction: s.direction, template: s.template });
    const examples: InstructionExample[] = [];
    for await (const batch of data.batches) for (const p of batch) if (!cleaner || cleaner.keep(p.src, p.tgt)) builder.add(p, examples);
    return finish(examples);
  }
  // pairs are cleaned before building (so templates do not hide duplicates); other data after
  if (data.kind === "pairs" && cleaner) data = { kind: "pairs", pairs: cleanPairs(data.pairs, cleaner) };
  let built = buildExamples(data, { spec, s, lang, at, options: readOptions });
  if (data.kind !== "pairs" && cleaner) {
    const c = cleaner;
    const examples = built;
    built = (async function* () {
      for await (const ex of examples) if (c.keep(ex.input === "" ? ex.instruction : `${ex.instruction}\n${ex.input}`, ex.output)) yield ex;
    })();
  }
  return finish(await collect(built));

  function finish(examples: InstructionExample[]): BuiltSource {
    const skipped = report.skippedTotal;
    const seen = report.records + skipped;
    const maxInvalid = options.maxInvalid ?? 1;
    if (seen > 0 && skipped / seen > maxInvalid) {
      throw new DataError(
        "XA_DATA_MOSTLY_INVALID",
        `source ${s.name}: ${skipped} of ${seen} records (${((100 * skipped) / seen).toFixed(0)}%) were invalid and skipped, more than --max-invalid ${maxInvalid} allows`,
        {
          file: inputs.join(", "),
          field: `sources[${index}]`,
          hint: `check that these are the files you mean (${s.reader} format); first problems: ${report.examples.slice(0, 3).join("; ")}. Raise --max-invalid to accept them`,
        },
      );
    }
    const summary: SourceSummary = {
      name: s.name,
      reader: s.reader,
      build: s.build,
      lang: examples[0]?.lang ?? lang,
      inputs,
      read: report.toJSON(),
      ...(cleaner ? { clean: cleaner.counts } : {}),
      available: examples.length,
      selected: 0,
      validation: 0,
      train: 0,
    };
    return { spec: s, summary, examples };
  }
}

async function* flatten<T>(batches: AsyncIterable<T[]>): AsyncGenerator<T> {
  for await (const batch of batches) for (const item of batch) yield item;
}

/** How many examples each source contributes: count, ratio, temperature share, or all. */
function sourceCounts(spec: MixtureSpec, built: BuiltSource[]): { counts: number[]; temperature?: MixtureResult["temperature"] } {
  const counts = built.map((b) => {
    const { count, ratio } = b.spec;
    const n = b.examples.length;
    if (count !== undefined) {
      if (count > n) {
        throw new DataError("XA_DATA_COUNT", `source "${b.spec.name}" has ${n} examples after cleaning, but count asks for ${count}`, {
          file: spec.file,
          field: `sources.${b.spec.name}.count`,
          hint: "lower count, use ratio:, or relax the clean: filters",
        });
      }
      return count;
    }
    if (ratio !== undefined) return Math.floor(ratio * n);
    return n;
  });
  if (!spec.temperature) return { counts };
  const free = built.map((b, i) => ({ b, i })).filter(({ b }) => b.spec.count === undefined && b.spec.ratio === undefined);
  const sizes: Record<string, number> = {};
  for (const { b } of free) sizes[b.summary.lang] = (sizes[b.summary.lang] ?? 0) + b.examples.length;
  const weights = temperatureWeights(sizes, spec.temperature.t);
  const perLang = allocate(spec.temperature.total, weights, sizes);
  for (const lang of Object.keys(sizes)) {
    const members = free.filter(({ b }) => b.summary.lang === lang);
    const within = allocate(
      perLang[lang] as number,
      Object.fromEntries(members.map(({ b }) => [b.spec.name, b.examples.length])),
      Object.fromEntries(members.map(({ b }) => [b.spec.name, b.examples.length])),
    );
    for (const { b, i } of members) counts[i] = within[b.spec.name] as number;
  }
  return { counts, temperature: { t: spec.temperature.t, total: spec.temperature.total, weights, counts: perLang } };
}

/**
 * Builds a mixture in memory. Throws DataError on bad input (unless
 * skipInvalid), on a count larger than a source, or a scale larger than the data.
 *
 * @example
 * const spec = await loadMixtureSpec("mixture.yaml");
 * const mix = await buildMixture(spec);
 * mix.train.length; mix.scales[0].train.length;
 */
export async function buildMixture(spec: MixtureSpec, options: BuildOptions = {}): Promise<MixtureResult> {
  const built: BuiltSource[] = [];
  for (const [i, source] of spec.sources.entries()) built.push(await buildSource(spec, source, i, options));
  const root = new Rng(spec.seed);
  const { counts, temperature } = sourceCounts(spec, built);
  const orders = built.map((b, i) => seededOrder(b.examples.length, root.fork(`source:${b.spec.name}`)).slice(0, counts[i]));
  const selectedTotal = counts.reduce((a, b) => a + b, 0);
  const validationTotal =
    spec.validation === undefined ? 0 : spec.validation >= 1 ? spec.validation : Math.round(spec.validation * selectedTotal);
  if (validationTotal >= selectedTotal && validationTotal > 0) {
    throw new DataError("XA_DATA_VALIDATION", `validation asks for ${validationTotal} examples but the mixture has ${selectedTotal}`, {
      file: spec.file,
      field: "validation",
    });
  }
  const byName = Object.fromEntries(built.map((b, i) => [b.spec.name, counts[i] as number]));
  const validationPer = allocate(validationTotal, byName, byName);
  const trainOrders: number[][] = [];
  const trainParts: InstructionExample[][] = [];
  const validationParts: InstructionExample[][] = [];
  // the validation examples are the tail of each source's order, so no scale prefix can reach them
  built.forEach((b, i) => {
    const order = orders[i] as number[];
    const v = validationPer[b.spec.name] as number;
    const trainOrder = order.slice(0, order.length - v);
    const validOrder = order.slice(order.length - v);
    trainOrders.push(trainOrder);
    trainParts.push(pickInOrder(b.examples, trainOrder, spec.shuffle));
    validationParts.push(pickInOrder(b.examples, validOrder, spec.shuffle));
    Object.assign(b.summary, { selected: order.length, validation: v, train: trainOrder.length });
  });
  const arrange = (items: InstructionExample[], label: string) => (spec.shuffle ? root.fork(label).shuffle([...items]) : items);
  const train = arrange(trainParts.flat(), "shuffle:train");
  const validation = arrange(validationParts.flat(), "shuffle:validation");
  const scales = [...(spec.scales ?? [])]
    .sort((a, b) => a - b)
    .map((size) => ({ size, train: scaleSubset(spec, built, trainOrders, trainParts, train, size, root) }));
  return { spec, train, validation, scales, sources: built.map((b) => b.summary), ...(temperature ? { temperature } : {}) };
}

/** The examples at `indices`, in that (seeded) order, or in file order when not shuffling. */
function pickInOrder(examples: InstructionExample[], indices: number[], shuffle: boolean): InstructionExample[] {
  return (shuffle ? indices : [...indices].sort((x, y) => x - y)).map((j) => examples[j] as InstructionExample);
}

function scaleSubset(
  spec: MixtureSpec,
  built: BuiltSource[],
  trainOrders: number[][],
  trainParts: InstructionExample[][],
  train: InstructionExample[],
  size: number,
  root: Rng,
): InstructionExample[] {
  if (spec.scale_source === undefined) {
    if (size > train.length) {
      throw new DataError("XA_DATA_SCALE", `scale ${size} is larger than the train split (${train.length} examples)`, {
        file: spec.file,
        field: "scales",
      });
    }
    // one fixed order over the train split; every scale is a prefix of it, so smaller scales nest in larger ones
    const order = seededOrder(train.length, root.fork("scales")).slice(0, size);
    return (spec.shuffle ? order : order.sort((a, b) => a - b)).map((j) => train[j] as InstructionExample);
  }
  const parts = built.map((b, i) => {
    if (b.spec.name !== spec.scale_source) return trainParts[i] as InstructionExample[];
    const order = trainOrders[i] as number[];
    if (size > order.length) {
      throw new DataError("XA_DATA_SCALE", `scale ${size} is larger than source "${b.spec.name}" (${order.length} train examples)`, {
        file: spec.file,
        field: "scales",
      });
    }
    // a prefix of the source's seeded order, so each scale lies inside the next
    return pickInOrder(b.examples, order.slice(0, size), spec.shuffle);
  });
  const items = parts.flat();
  return spec.shuffle ? root.fork(`shuffle:scale:${size}`).shuffle(items) : items;
}
