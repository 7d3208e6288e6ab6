/**
 * A LLaMA-style tokenizer over Hugging Face's `tokenizers` (Rust, prebuilt in
 * the npm package): tokenizer.json as HF writes it, or a SentencePiece
 * tokenizer.model converted on load to the equivalent tokenizer.json (the
 * conversion transformers does; it matches SentencePiece's own ids exactly,
 * see test/tokenizer). BOS/EOS are added by this wrapper, as
 * LlamaTokenizer's add_bos_token / add_eos_token do, not by the file's
 * post-processor, so every caller says what it wants.
 *
 * @example
 * const tok = await loadTokenizer("checkpoints/llama");   // tokenizer.json or tokenizer.model
 * const ids = await tok.encode("Merhaba dünya", { addBos: true });
 * await tok.decode(ids, { skipSpecialTokens: true });     // "Merhaba dünya"
 */
import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { TokenizerError } from "../util/errors.js";
import { writeJsonAtomic } from "../util/fs.js";
import { parseSentencePieceModel, sentencePieceToTokenizerJson } from "./sentencepiece.js";

export interface EncodeOptions {
  /** Prepend the BOS token (default: the tokenizer's add_bos_token, true for LLaMA). */
  addBos?: boolean;
  /** Append the EOS token (default: the tokenizer's add_eos_token, false for LLaMA). */
  addEos?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (bos, eos, pad, unk, ...) from the text (default false, as HF). */
  skipSpecialTokens?: boolean;
}

/** Names of the special tokens and whether BOS/EOS are added by default, as tokenizer_config.json records them. */
export interface SpecialTokens {
  bos?: string;
  eos?: string;
  unk?: string;
  pad?: string;
  addBos: boolean;
  addEos: boolean;
}

export class Tokenizer {
  /** The underlying `tokenizers` object, for anything this wrapper does not cover. */
  readonly native: NativeTokenizer;
  readonly special: SpecialTokens;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unkId: number | undefined;
  /** LLaMA has no pad token; batch code pads with any id and masks it. */
  readonly padId: number | undefined;
  /** The tokenizer.json text this tokenizer was built from (what {@link save} writes). */
  private readonly json: string;

  private constructor(native: NativeTokenizer, json: string, special: SpecialTokens) {
    this.native = native;
    this.json = json;
    this.special = special;
    const id = (token: string | undefined) => (token === undefined ? undefined : (native.tokenToId(token) ?? undefined));
    this.bosId = id(special.bos);
    this.eosId = id(special.eos);
    this.unkId = id(special.unk);
    this.padId = id(special.pad);
  }

  /**
   * A tokenizer from tokenizer.json text (or object). Special tokens not given
   * are taken from the LLaMA names (<s>, </s>, <unk>, <pad>) when present.
   */
  static fromJson(json: string | object, special: Partial<SpecialTokens> = {}, file = "tokenizer.json"): Tokenizer {
    const text = typeof json === "string" ? json : JSON.stringify(json);
    let native: NativeTokenizer;
    try {
      native = NativeTokenizer.fromString(text);
    } catch (err) {
      throw new TokenizerError("XA_TOKENIZER_JSON", `cannot load tokenizer.json: ${(err as Error).message}`, {
        file,
        hint: "pass a tokenizer.json written by Hugging Face tokenizers",
        cause: err,
      });
    }
    const has = (t: string) => native.tokenToId(t) !== null;
    const pick = (given: string | undefined, fallback: string) => given ?? (has(fallback) ? fallback : undefined);
    const resolved: SpecialTokens = {
      addBos: special.addBos ?? true,
      addEos: special.addEos ?? false,
    };
    const bos = pick(special.bos, "<s>");
    const eos = pick(special.eos, "</s>");
    const unk = pick(special.unk, "<unk>");
    const pad = pick(special.pad, "<pad>");
    if (bos !== undefined) resolved.bos = bos;
    if (eos !== undefined) resolved.eos = eos;
    if (unk !== undefined) resolved.unk = unk;
    if (pad !== undefined) resolved.pad = pad;
    for (const [field, token] of Object.entries({ bos, eos, unk, pad })) {
      if (token !== undefined && !has(token)) {
        throw new TokenizerError("XA_TOKENIZER_SPECIAL", `${field} token "${token}" is not in the vocabulary`, {
          file,
          field: `${field}_token`,
          hint: "fix tokenizer_config.json or add the token",
        });
      }
    }
    if (resolved.addBos && resolved.bos === undefined) resolved.addBos = false;
    if (resolved.addEos && resolved.eos === undefined) resolved.addEos = false;
    return new Tokenizer(native, text, resolved);
  }

  /** Vocabulary size including added tokens (the embedding rows a model needs). */
  get vocabSize(): number {
    return this.native.getVocabSize(true);
  }

  /** Token ids of `text`, with BOS/EOS as asked (or as the tokenizer's defaults). */
  async encode(text: string, options: EncodeOptions = {}): Promise<number[]> {
    const encoding = await this.native.encode(text, null, { addSpecialTokens: false });
    return this.withSpecials(encoding.getIds(), options);
  }

  /** {@link encode} for many texts at once (the Rust side runs them in parallel). */
  async encodeBatch(texts: string[], options: EncodeOptions = {}): Promise<number[][]> {
    if (texts.length === 0) return [];
    const encodings = await this.native.encodeBatch(texts, { addSpecialTokens: false });
    return encodings.map((e) => this.withSpecials(e.getIds(), options));
  }

  /** The token strings of `text` (no BOS/EOS), e.g. ["▁H", "ello"]. */
  async tokenize(text: string): Promise<string[]> {
    return (await this.native.encode(text, null, { addSpecialTokens: false })).getTokens();
  }

  /** Text of `ids`; byte-fallback pieces are fused back into characters. */
  async decode(ids: number[], options: DecodeOptions = {}): Promise<string> {
    this.checkIds(ids);
    return this.native.decode(ids, options.skipSpecialTokens ?? false);
  }

  async decodeBatch(batch: number[][], options: DecodeOptions = {}): Promise<string[]> {
    for (const ids of batch) this.checkIds(ids);
    return this.native.decodeBatch(batch, options.skipSpecialTokens ?? false);
  }

  idToToken(id: number): string | undefined {
    return this.native.idToToken(id) ?? undefined;
  }

  tokenToId(token: string): number | undefined {
    return this.native.tokenToId(token) ?? undefined;
  }

  /**
   * Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json
   * into `dir` (atomically each), as transformers' LlamaTokenizerFast reads them.
   */
  async save(dir: string): Promise<void> {
    const s = this.special;
    await writeJsonAtomic(join(dir, "tokenizer.json"), JSON.parse(this.json));
    const addedTokensDecoder: Record<string, unknown> = {};
    for (const t of (JSON.parse(this.json) as { added_tokens?: { id: number }[] }).added_tokens ?? []) {
      const { id, ...rest } = t;
      addedTokensDecoder[String(id)] = rest;
    }
    await writeJsonAtomic(join(dir, "tokenizer_config.json"), {
      add_bos_token: s.addBos,
      add_eos_token: s.addEos,
      added_tokens_decoder: addedTokensDecoder,
      bos_token: s.bos ?? null,
      eos_token: s.eos ?? null,
      unk_token: s.unk ?? null,
      pad_token: s.pad ?? null,
      clean_up_tokenization_spaces: false,
      legacy: true,
      model_max_length: 1e30,
      sp_model_kwargs: {},
      tokenizer_class: "LlamaTokenizer",
    });
    const map: Record<string, string> = {};
    if (s.bos !== undefined) map.bos_token = s.bos;
    if (s.eos !== undefined) map.eos_token = s.eos;
    if (s.unk !== undefined) map.unk_token = s.unk;
    if (s.pad !== undefined) map.pad_token = s.pad;
    await writeJsonAtomic(join(dir, "special_tokens_map.json"), map);
  }

  private withSpecials(ids: number[], options: EncodeOptions): number[] {
    const addBos = options.addBos ?? this.special.addBos;
    const addEos = options.addEos ?? this.special.addEos;
    if (addBos) {
      if (this.bosId === undefined)
        throw new TokenizerError("XA_TOKENIZER_SPECIAL", "addBos was asked but the tokenizer has no BOS token", { hint: "set bos_token" });
      ids.unshift(this.bosId);
    }
    if (addEos) {
      if (this.eosId === undefined)
        throw new TokenizerError("XA_TOKENIZER_SPECIAL", "addEos was asked but the tokenizer has no EOS token", { hint: "set eos_token" });
      ids.push(this.eosId);
    }
    return ids;
  }

  private checkIds(ids: number[]): void {
    const size = this.vocabSize;
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= size) {
        throw new TokenizerError("XA_TOKENIZER_ID", `token id ${id} is outside the vocabulary (0..${size - 1})`, {
          hint: "decode ids produced by this tokenizer",
        });
      }
    }
  }
}

/** A special token as tokenizer_config.json writes it: a string or {content: string}. */
function tokenName(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return undefined;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

/**
 * Loads a tokenizer from a folder (tokenizer.json preferred, else
 * tokenizer.model, with tokenizer_config.json when present), or from a path
 * to either file. A SentencePiece model is converted in memory; `save()`
 * writes the converted tokenizer.json.
 */
export async function loadTokenizer(pathOrDir: string): Promise<Tokenizer> {
  let dir: string;
  let file: string;
  if (await isDirectory(pathOrDir)) {
    dir = pathOrDir;
    const json = join(dir, "tokenizer.json");
    const spm = join(dir, "tokenizer.model");
    file = (await readIfExists(json)) !== undefined ? json : spm;
  } else {
    dir = join(pathOrDir, "..");
    file = pathOrDir;
  }
  const bytes = await readIfExists(file);
  if (bytes === undefined) {
    throw new TokenizerError("XA_TOKENIZER_MISSING", "no tokenizer.json or tokenizer.model found", {
      file,
      hint: "save a tokenizer there (Tokenizer.save) or pass the path of one",
    });
  }
  const configBytes = await readIfExists(join(dir, "tokenizer_config.json"));
  let config: Record<string, unknown> = {};
  if (configBytes !== undefined) {
    try {
      config = JSON.parse(configBytes.toString("utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new TokenizerError("XA_TOKENIZER_CONFIG", `tokenizer_config.json is not valid JSON: ${(err as Error).message}`, {
        file: join(dir, "tokenizer_config.json"),
        hint: "fix or delete it",
        cause: err,
      });
    }
  }
  const special: Partial<SpecialTokens> = {};
  const names = {
    bos: tokenName(config.bos_token),
    eos: tokenName(config.eos_token),
    unk: tokenName(config.unk_token),
    pad: tokenName(config.pad_token),
  };
  for (const [k, v] of Object.entries(names)) if (v !== undefined) special[k as "bos"] = v;
  if (typeof config.add_bos_token === "boolean") special.addBos = config.add_bos_token;
  if (typeof config.add_eos_token === "boolean") special.addEos = config.add_eos_token;
  if (basename(file).endsWith(".model")) {
    const spm = parseSentencePieceModel(new Uint8Array(bytes), file);
    const piece = (id: number) => (id >= 0 ? spm.pieces[id]?.piece : undefined);
    const fromSpm = { bos: piece(spm.bosId), eos: piece(spm.eosId), unk: piece(spm.unkId), pad: piece(spm.padId) };
    for (const [k, v] of Object.entries(fromSpm)) if (v !== undefined && special[k as "bos"] === undefined) special[k as "bos"] = v;
    return Tokenizer.fromJson(sentencePieceToTokenizerJson(spm, file), special, file);
  }
  return Tokenizer.fromJson(bytes.toString("utf8"), special, file);
}
