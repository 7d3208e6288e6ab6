/**
 * SentencePiece `tokenizer.model` files, converted to an equivalent Hugging
 * Face tokenizer.json, the same conversion `transformers` does for LLaMA
 * (LlamaConverter): BPE merges ranked by the merged piece's score, byte
 * fallback, "▁" for spaces with a dummy prefix, and a decoder that undoes
 * both. The protobuf is parsed here (a few fields of ModelProto) so no
 * protobuf or sentencepiece dependency is needed.
 *
 * @example
 * const json = sentencePieceToTokenizerJson(parseSentencePieceModel(await readFile("tokenizer.model")));
 */
import { TokenizerError } from "../util/errors.js";

/** Piece types of sentencepiece_model.proto. */
export const PieceType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface SentencePiece {
  piece: string;
  score: number;
  type: number;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  /** 1 unigram, 2 bpe, 3 word, 4 char. */
  modelType: number;
  byteFallback: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  normalizerName: string;
  precompiledCharsmap: Uint8Array;
}

/** A minimal protobuf reader: varints, fixed32/64 and length-delimited fields. */
class ProtoReader {
  pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly file: string,
  ) {}

  done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) this.fail("varint runs past the end");
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) this.fail("varint too long");
    }
  }

  /** A varint read as a signed 32-bit integer (negative int32 values are 10-byte varints). */
  int32(): number {
    return Number(BigInt.asIntN(32, this.varint()));
  }

  bytes(): Uint8Array {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) this.fail("field runs past the end");
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  float(): number {
    if (this.pos + 4 > this.buf.length) this.fail("float runs past the end");
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else this.fail(`unsupported wire type ${wireType}`);
  }

  /** Iterates (field number, wire type) pairs until the end of the buffer. */
  *fields(): Generator<[number, number]> {
    while (!this.done()) {
      const key = Number(this.varint());
      yield [key >>> 3, key & 7];
    }
  }

  fail(message: string): never {
    throw new TokenizerError("XA_TOKENIZER_SPM", `not a valid SentencePiece model: ${message} at byte ${this.pos}`, {
      file: this.file,
      hint: "pass a tokenizer.model written by SentencePiece, or a tokenizer.json",
    });
  }
}

const decoder = new TextDecoder("utf-8", { fatal: false });

/** Parses a SentencePiece ModelProto (the fields a tokenizer needs). */
export function parseSentencePieceModel(bytes: Uint8Array, file = "tokenizer.model"): SentencePieceModel {
  const model: SentencePieceModel = {
    pieces: [],
    modelType: 1,
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
    normalizerName: "nmt_nfkc",
    precompiledCharsmap: new Uint8Array(0),
  };
  const top = new ProtoReader(bytes, file);
  for (const [field, wire] of top.fields()) {
    if (field === 1 && wire === 2) {
      const r = new ProtoReader(top.bytes(), file);
      const piece: SentencePiece = { piece: "", score: 0, type: PieceType.NORMAL };
      for (const [f, w] of r.fields()) {
        if (f === 1 && w === 2) piece.piece = decoder.decode(r.bytes());
        else if (f === 2 && w === 5) piece.score = r.float();
        else if (f === 3 && w === 0) piece.type = r.int32();
        else r.skip(w);
      }
      model.pieces.push(piece);
    } else if (field === 2 && wire === 2) {
      const r = new ProtoReader(top.bytes(), file);
      for (const [f, w] of r.fields()) {
        if (w !== 0) r.skip(w);
        else if (f === 3) model.modelType = r.int32();
        else if (f === 35) model.byteFallback = r.varint() !== 0n;
        else if (f === 40) model.unkId = r.int32();
        else if (f === 41) model.bosId = r.int32();
        else if (f === 42) model.eosId = r.int32();
        else if (f === 43) model.padId = r.int32();
        else r.varint();
      }
    } else if (field === 3 && wire === 2) {
      const r = new ProtoReader(top.bytes(), file);
      for (const [f, w] of r.fields()) {
        if (f === 1 && w === 2) model.normalizerName = decoder.decode(r.bytes());
        else if (f === 2 && w === 2) model.precompiledCharsmap = r.bytes().slice();
        else if (f === 3 && w === 0) model.addDummyPrefix = r.varint() !== 0n;
        else if (f === 4 && w === 0) model.removeExtraWhitespaces = r.varint() !== 0n;
        else if (f === 5 && w === 0) model.escapeWhitespaces = r.varint() !== 0n;
        else r.skip(w);
      }
    } else {
      top.skip(wire);
    }
  }
  if (model.pieces.length === 0) top.fail("no pieces");
  return model;
}

/**
 * BPE merges as transformers' SentencePieceExtractor derives them: every split
 * of a piece into two pieces of the vocabulary, ranked by the merged piece's
 * score (highest first), ties in vocabulary order.
 */
function bpeMerges(pieces: SentencePiece[], vocab: Map<string, number>): [string, string][] {
  const merges: { left: string; right: string; score: number; order: number }[] = [];
  let order = 0;
  for (const { piece, score, type } of pieces) {
    if (type !== PieceType.NORMAL && type !== PieceType.USER_DEFINED) continue;
    const chars = [...piece];
    const local: { left: string; right: string }[] = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join("");
      const right = chars.slice(i).join("");
      if (vocab.has(left) && vocab.has(right)) local.push({ left, right });
    }
    local.sort(
      (a, b) =>
        (vocab.get(a.left) as number) - (vocab.get(b.left) as number) || (vocab.get(a.right) as number) - (vocab.get(b.right) as number),
    );
    for (const m of local) merges.push({ ...m, score, order: order++ });
  }
  merges.sort((a, b) => b.score - a.score || a.order - b.order);
  return merges.map((m) => [m.left, m.right]);
}

/** A tokenizer.json object equivalent to the SentencePiece model (BPE or unigram). */
export function sentencePieceToTokenizerJson(model: SentencePieceModel, file = "tokenizer.model"): Record<string, unknown> {
  if (model.modelType !== 1 && model.modelType !== 2) {
    throw new TokenizerError("XA_TOKENIZER_SPM", `SentencePiece model type ${model.modelType} is not supported (only unigram and bpe)`, {
      file,
      hint: "convert it to tokenizer.json with transformers",
    });
  }
  const vocab = new Map<string, number>();
  model.pieces.forEach((p, id) => {
    if (!vocab.has(p.piece)) vocab.set(p.piece, id);
  });
  const unk = model.pieces[model.unkId]?.piece ?? "<unk>";
  const addedTokens = model.pieces
    .map((p, id) => ({ p, id }))
    .filter(({ p }) => p.type === PieceType.CONTROL || p.type === PieceType.UNKNOWN || p.type === PieceType.USER_DEFINED)
    .map(({ p, id }) => ({
      id,
      content: p.piece,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: p.type === PieceType.USER_DEFINED,
      special: p.type !== PieceType.USER_DEFINED,
    }));
  const modelJson =
    model.modelType === 2
      ? {
          type: "BPE",
          dropout: null,
          unk_token: unk,
          continuing_subword_prefix: null,
          end_of_word_suffix: null,
          fuse_unk: true,
          byte_fallback: model.byteFallback,
          ignore_merges: false,
          vocab: Object.fromEntries(vocab),
          merges: bpeMerges(model.pieces, vocab),
        }
      : {
          type: "Unigram",
          unk_id: model.unkId,
          vocab: model.pieces.map((p) => [p.piece, p.score]),
          byte_fallback: model.byteFallback,
        };
  const normalizers: Record<string, unknown>[] = [];
  if (model.normalizerName !== "identity" && model.precompiledCharsmap.length > 0) {
    normalizers.push({ type: "Precompiled", precompiled_charsmap: Buffer.from(model.precompiledCharsmap).toString("base64") });
  }
  if (model.removeExtraWhitespaces) {
    normalizers.push(
      { type: "Strip", strip_left: true, strip_right: true },
      { type: "Replace", pattern: { Regex: " {2,}" }, content: " " },
    );
  }
  if (model.addDummyPrefix) normalizers.push({ type: "Prepend", prepend: "▁" });
  if (model.escapeWhitespaces) normalizers.push({ type: "Replace", pattern: { String: " " }, content: "▁" });
  const decoders: Record<string, unknown>[] = [
    { type: "Replace", pattern: { String: "▁" }, content: " " },
    { type: "ByteFallback" },
    { type: "Fuse" },
  ];
  if (model.addDummyPrefix) decoders.push({ type: "Strip", content: " ", start: 1, stop: 0 });
  const bos = model.bosId >= 0 ? model.pieces[model.bosId]?.piece : undefined;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: normalizers.length > 0 ? { type: "Sequence", normalizers } : null,
    pre_tokenizer: null,
    post_processor:
      bos !== undefined
        ? {
            type: "TemplateProcessing",
            single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
            pair: [
              { SpecialToken: { id: bos, type_id: 0 } },
              { Sequence: { id: "A", type_id: 0 } },
              { SpecialToken: { id: bos, type_id: 1 } },
              { Sequence: { id: "B", type_id: 1 } },
            ],
            special_tokens: { [bos]: { id: bos, ids: [model.bosId], tokens: [bos] } },
          }
        : null,
    decoder: { type: "Sequence", decoders },
    model: modelJson,
  };
}
