/**
 * The mixture file: which sources to read, how to clean them, what to build,
 * how many examples to take, and how to split and scale the result. YAML,
 * validated with zod; every problem is a ConfigError naming file, line and field.
 *
 * @example
 * // mixture.yaml
 * // name: coit-zh
 * // seed: 42
 * // sources:
 * //   - name: news-zh
 * //     reader: moses
 * //     files: [news.en, news.zh]
 * //     build: translation
 * //     src_lang: en
 * //     tgt_lang: zh
 * //     clean: { max_length: 256, max_ratio: 3, dedupe: normalized, script: true }
 * //     count: 20000
 * //   - name: alpaca-en
 * //     reader: alpaca
 * //     path: alpaca_data.json
 * //     build: general
 * //     lang: en
 * // scales: [5000, 10000, 20000]
 * // scale_source: news-zh
 * // validation: 500
 * const spec = await loadMixtureSpec("mixture.yaml");
 */
import { readFile } from "node:fs/promises";
import { basename, dirname, extname, resolve } from "node:path";
import { isMap, isSeq, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError } from "../util/errors.js";
import { SAFE_NAME, SAFE_NAME_RULE } from "../util/run-dir.js";
import { yamlErrorPosition } from "../util/yaml.js";
import { knownLanguages } from "./languages.js";

const LANG_CODES = knownLanguages().map((l) => l.code) as [string, ...string[]];
const lang = z.enum(LANG_CODES, { message: `an ISO 639-1 code xalign knows (${LANG_CODES.join(", ")})` });
const positiveInt = z.number().int().positive();

export const CleanSpecSchema = z.strictObject({
  drop_empty: z.boolean().default(true),
  min_length: z.number().int().min(0).default(1),
  max_length: positiveInt.optional(),
  max_ratio: z.number().min(1).optional(),
  dedupe: z.enum(["none", "exact", "normalized"]).default("none"),
  /** Check that the target (or response) side is in the script of its language. */
  script: z.boolean().default(false),
  min_script_fraction: z.number().min(0).max(1).default(0.5),
});

export const READERS = ["moses", "tsv", "jsonl", "alpaca", "parquet", "flores", "squad"] as const;
export type ReaderName = (typeof READERS)[number];
export const BUILDS = ["translation", "general", "cross-lingual-general", "qa", "interactive", "hinted"] as const;
export type BuildName = (typeof BUILDS)[number];

/** What a reader yields: sentence pairs, Alpaca records, or SQuAD-style questions. */
export type SourceYield = "pairs" | "records" | "qa";
const READER_YIELDS: { readonly [R in ReaderName]: SourceYield } = {
  moses: "pairs",
  tsv: "pairs",
  flores: "pairs",
  alpaca: "records",
  jsonl: "records",
  parquet: "records",
  squad: "qa",
};
/** What each build consumes (src/data/mixture.ts's builders are typed against it). */
export const BUILD_INPUTS = {
  translation: "pairs",
  interactive: "pairs",
  hinted: "pairs",
  general: "records",
  "cross-lingual-general": "records",
  qa: "qa",
} as const satisfies { readonly [B in BuildName]: SourceYield };

/** What the source's reader yields; jsonl and parquet give pairs when `fields` names a `src`. */
export function sourceYield(s: SourceSpec): SourceYield {
  return (s.reader === "jsonl" || s.reader === "parquet") && s.fields?.src !== undefined ? "pairs" : READER_YIELDS[s.reader];
}

/** For a field a reader cannot do without: this message when it is missing (zod's own for a wrong value). */
const whenMissing = (message: string) => ({ error: (issue: { input: unknown }) => (issue.input === undefined ? message : undefined) });
const pathOf = (reader: ReaderName) => z.string(whenMissing(`a ${reader} source needs path:`));

/**
 * What every source has, whatever its reader. The options of one reader
 * (files, path, fields, src_column, tgt_column, header, split) are accepted
 * on a source of any reader, validated, and ignored by the others, as before
 * each reader had its own schema; the reader's own schema below makes them
 * required (files, path) or gives their defaults.
 */
const SourceBase = z.strictObject({
  name: z.string().regex(SAFE_NAME, `a source name uses ${SAFE_NAME_RULE}`),
  /** moses: the two line-aligned files (source side first). */
  files: z.tuple([z.string(), z.string()]).optional(),
  /** tsv, jsonl, alpaca, parquet, squad: the file; flores: the dataset folder. */
  path: z.string().optional(),
  /** cross-lingual-general: the Alpaca file translated into `lang`, record-aligned with `path`. */
  translated: z.string().optional(),
  /** jsonl / parquet: where the fields are (dotted paths): {src, tgt} for pairs, {instruction, input, output} for Alpaca. */
  fields: z.record(z.string(), z.string()).optional(),
  /** tsv: the columns of the two sides, and whether the first line is a header. */
  src_column: z.number().int().min(0).optional(),
  tgt_column: z.number().int().min(0).optional(),
  header: z.boolean().optional(),
  /** flores: which split's files. */
  split: z.enum(["dev", "devtest"]).optional(),
  build: z.enum(BUILDS),
  src_lang: lang.optional(),
  tgt_lang: lang.optional(),
  /** general / cross-lingual-general / qa: the language of the data (the response). */
  lang: lang.optional(),
  direction: z.enum(["forward", "reverse", "both"]).default("forward"),
  template: z.union([z.literal("round-robin"), z.number().int().min(0)]).default("round-robin"),
  response_hint: z.string().optional(),
  instruction_lang: z.enum(["native", "en"]).default("native"),
  turns: z.number().int().min(2).default(3),
  hint_mix: z
    .strictObject({ plain: z.number().min(0), "no-errors": z.number().min(0), "with-errors": z.number().min(0) })
    .partial()
    .optional(),
  clean: CleanSpecSchema.optional(),
  /** Exactly this many examples (after cleaning and building). */
  count: positiveInt.optional(),
  /** This fraction of the source's examples (rounded down). */
  ratio: z.number().gt(0).max(1).optional(),
});

const MosesSourceSchema = SourceBase.extend({
  reader: z.literal("moses"),
  files: z.tuple([z.string(), z.string()], whenMissing("a moses source needs files: [source-side file, target-side file]")),
});
const TsvSourceSchema = SourceBase.extend({
  reader: z.literal("tsv"),
  path: pathOf("tsv"),
  src_column: z.number().int().min(0).default(0),
  tgt_column: z.number().int().min(0).default(1),
  header: z.boolean().default(false),
});
const JsonlSourceSchema = SourceBase.extend({ reader: z.literal("jsonl"), path: pathOf("jsonl") });
const AlpacaSourceSchema = SourceBase.extend({ reader: z.literal("alpaca"), path: pathOf("alpaca") });
const ParquetSourceSchema = SourceBase.extend({ reader: z.literal("parquet"), path: pathOf("parquet") });
const FloresSourceSchema = SourceBase.extend({
  reader: z.literal("flores"),
  path: pathOf("flores"),
  split: z.enum(["dev", "devtest"]).default("dev"),
});
const SquadSourceSchema = SourceBase.extend({ reader: z.literal("squad"), path: pathOf("squad") });

/** One source of a mixture: a discriminated union on `reader`, then the checks that tie build, reader and languages together. */
export const SourceSpecSchema = z
  .discriminatedUnion(
    "reader",
    [MosesSourceSchema, TsvSourceSchema, JsonlSourceSchema, AlpacaSourceSchema, ParquetSourceSchema, FloresSourceSchema, SquadSourceSchema],
    {
      error: (issue) => {
        if (issue.code !== "invalid_union") return undefined;
        const reader = (issue.input as { reader?: unknown } | undefined)?.reader;
        const choices = READERS.join(", ");
        return reader === undefined
          ? `a source needs reader: one of ${choices}`
          : `unknown reader ${JSON.stringify(reader)}: use one of ${choices}`;
      },
    },
  )
  .superRefine((s, ctx) => {
    const need = (cond: boolean, path: string, message: string) => {
      if (!cond) ctx.addIssue({ code: "custom", message, path: [path] });
    };
    need(!(s.count !== undefined && s.ratio !== undefined), "ratio", "set count or ratio, not both");
    const yields = sourceYield(s);
    if (BUILD_INPUTS[s.build] === "pairs") {
      need(
        yields === "pairs",
        "build",
        `build ${s.build} needs sentence pairs: reader moses, tsv, flores, or jsonl/parquet with fields {src, tgt}`,
      );
      need(s.src_lang !== undefined, "src_lang", `build ${s.build} needs src_lang`);
      need(s.tgt_lang !== undefined, "tgt_lang", `build ${s.build} needs tgt_lang`);
    }
    if (BUILD_INPUTS[s.build] === "records") {
      need(yields === "records", "build", `build ${s.build} needs Alpaca records: reader alpaca, jsonl or parquet`);
      need(s.lang !== undefined, "lang", `build ${s.build} needs lang`);
    }
    if (s.build === "cross-lingual-general")
      need(s.translated !== undefined, "translated", "build cross-lingual-general needs translated: (Alpaca in lang, aligned with path)");
    if (s.build === "qa") need(yields === "qa", "build", "build qa needs reader squad (SQuAD, XQuAD or MLQA files)");
  });

export const MixtureSpecSchema = z
  .strictObject({
    name: z.string().regex(SAFE_NAME, `a mixture name uses ${SAFE_NAME_RULE}`).optional(),
    seed: z.number().int().min(0).default(0),
    format: z.enum(["alpaca", "chat"]).default("alpaca"),
    sources: z.array(SourceSpecSchema).min(1),
    /** Temperature sampling across languages for sources without count/ratio: p(lang) ∝ n^(1/t). */
    temperature: z.strictObject({ t: z.number().positive(), total: positiveInt }).optional(),
    /** Nested data-scale subsets of the train split (each lies inside the next). */
    scales: z.array(positiveInt).optional(),
    /** The source the scales apply to (others stay whole); default: the whole train split. */
    scale_source: z.string().optional(),
    /** Held-out examples: a count (>= 1) or a fraction (< 1), carved from every source in proportion. */
    validation: z.number().min(0).optional(),
    shuffle: z.boolean().default(true),
  })
  .superRefine((m, ctx) => {
    const names = new Set<string>();
    m.sources.forEach((s, i) => {
      if (names.has(s.name)) ctx.addIssue({ code: "custom", message: `duplicate source name "${s.name}"`, path: ["sources", i, "name"] });
      names.add(s.name);
    });
    if (m.scale_source !== undefined && !names.has(m.scale_source)) {
      ctx.addIssue({ code: "custom", message: `scale_source "${m.scale_source}" is not a source name`, path: ["scale_source"] });
    }
    if (m.scale_source !== undefined && m.scales === undefined)
      ctx.addIssue({ code: "custom", message: "scale_source needs scales", path: ["scale_source"] });
    if (m.scales) {
      const sorted = [...m.scales].sort((a, b) => a - b);
      if (new Set(sorted).size !== sorted.length) ctx.addIssue({ code: "custom", message: "scales must be distinct", path: ["scales"] });
    }
    if (m.validation !== undefined && m.validation >= 1 && !Number.isInteger(m.validation)) {
      ctx.addIssue({ code: "custom", message: "validation is a count (an integer >= 1) or a fraction below 1", path: ["validation"] });
    }
    if (m.temperature && m.sources.every((s) => s.count !== undefined || s.ratio !== undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "temperature applies to sources without count or ratio, and every source has one",
        path: ["temperature"],
      });
    }
  });

export type CleanSpec = z.infer<typeof CleanSpecSchema>;
export type SourceSpec = z.infer<typeof SourceSpecSchema>;
/** The sources of one reader, e.g. `SourceOf<"moses">` (its `files` are required). */
export type SourceOf<R extends ReaderName> = Extract<SourceSpec, { reader: R }>;

/** A validated mixture with its name and the folder its relative paths resolve against. */
export type MixtureSpec = z.infer<typeof MixtureSpecSchema> & {
  name: string;
  /** Relative paths in sources resolve against this folder. */
  baseDir: string;
  /** The file it came from, for messages and the manifest. */
  file: string;
  /** The exact YAML text (its hash goes into the manifest). */
  text: string;
};

/**
 * Parses and validates a mixture from YAML text.
 *
 * @example
 * const spec = parseMixtureSpec("sources:\n  - {name: a, reader: alpaca, path: a.json, build: general, lang: en}\n", { file: "m.yaml", baseDir: "." });
 */
export function parseMixtureSpec(text: string, where: { file: string; baseDir: string }): MixtureSpec {
  const { file } = where;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new ConfigError("XA_DATA_SPEC", `invalid YAML: ${e.message.split("\n")[0]}`, { file, ...yamlErrorPosition(e, lineCounter) });
  }
  const raw = doc.toJS() as unknown;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError("XA_DATA_SPEC", "a mixture file must be a YAML mapping with sources:", {
      file,
      hint: "see the example in src/data/spec.ts",
    });
  }
  const result = MixtureSpecSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0] as z.core.$ZodIssue;
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    let message = issue.message;
    if (issue.code === "unrecognized_keys") {
      const keys = (issue as { keys: string[] }).keys;
      message = `unknown key${keys.length > 1 ? "s" : ""} ${keys.map((k) => `"${k}"`).join(", ")}`;
      path.push(keys[0] as string);
    }
    const field = path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "");
    throw new ConfigError("XA_DATA_SPEC", message, {
      file,
      ...lineOf(doc, lineCounter, path),
      field: field || "(top level)",
      hint: "see the mixture fields in src/data/spec.ts",
    });
  }
  const name = result.data.name ?? basename(file, extname(file));
  return { ...result.data, name, baseDir: where.baseDir, file, text };
}

/** Reads and validates a mixture file; relative paths in it resolve against its folder. */
export async function loadMixtureSpec(path: string): Promise<MixtureSpec> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError("XA_DATA_SPEC", `cannot read the mixture file: ${(err as Error).message}`, { file: path });
  }
  return parseMixtureSpec(text, { file: path, baseDir: dirname(resolve(path)) });
}

function lineOf(doc: ReturnType<typeof parseDocument>, lines: LineCounter, path: (string | number)[]): { line?: number } {
  for (let n = path.length; n > 0; n--) {
    const parent = n > 1 ? doc.getIn(path.slice(0, n - 1), true) : doc.contents;
    let offset: number | undefined;
    if (isMap(parent)) {
      const pair = parent.items.find((it) => (it.key as { value?: unknown })?.value === path[n - 1]);
      offset = (pair?.key as { range?: [number, number, number] } | undefined)?.range?.[0];
    } else if (isSeq(parent)) {
      offset = (parent.items[path[n - 1] as number] as { range?: [number, number, number] } | undefined)?.range?.[0];
    }
    if (offset !== undefined) return { line: lines.linePos(offset).line };
  }
  return {};
}
