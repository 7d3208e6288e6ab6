import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadTokenizer, parseSentencePieceModel, Tokenizer, trainBpeTokenizer } from "../../src/tokenizer/index.js";
import { TokenizerError } from "../../src/util/errors.js";
import { fixture, tempDir } from "../helpers.js";

interface SpmCase {
  text: string;
  ids: number[];
  pieces: string[];
  decoded: string;
}

const MULTILINGUAL = [
  "مرحبا بالعالم، كيف حالك اليوم؟",
  "Καλημέρα κόσμε, τι κάνεις σήμερα;",
  "नमस्ते दुनिया, आज आप कैसे हैं?",
  "Merhaba dünya, bugün nasılsın? Işık ğüşiöç",
  "Xin chào thế giới, hôm nay bạn thế nào?",
  "你好，世界！今天你好吗？",
  "emoji 🦙🚀 and 👩‍👩‍👧 plus  two  spaces and 12345",
];

describe("SentencePiece tokenizer.model", () => {
  it("encodes and decodes exactly as SentencePiece does (spm-bpe fixture)", async () => {
    const reference = JSON.parse(await readFile(fixture("spm-bpe", "reference.json"), "utf8")) as { cases: SpmCase[] };
    const tok = await loadTokenizer(fixture("spm-bpe", "tokenizer.model"));
    assert.ok(reference.cases.length >= 10);
    for (const c of reference.cases) {
      assert.deepEqual(await tok.encode(c.text, { addBos: false }), c.ids, `ids of ${JSON.stringify(c.text)}`);
      assert.deepEqual(await tok.tokenize(c.text), c.pieces, `pieces of ${JSON.stringify(c.text)}`);
      assert.equal(await tok.decode(c.ids), c.decoded, `decoding of ${JSON.stringify(c.text)}`);
    }
  });

  it("has LLaMA's special tokens and adds BOS by default, EOS on request", async () => {
    const tok = await loadTokenizer(fixture("spm-bpe"));
    assert.equal(tok.unkId, 0);
    assert.equal(tok.bosId, 1);
    assert.equal(tok.eosId, 2);
    assert.equal(tok.padId, undefined);
    assert.equal(tok.vocabSize, 600);
    const ids = await tok.encode("the cat", { addEos: true });
    assert.equal(ids[0], 1);
    assert.equal(ids.at(-1), 2);
    assert.equal(await tok.decode(ids, { skipSpecialTokens: true }), "the cat");
    assert.equal(await tok.decode(ids), "<s> the cat</s>");
  });

  it("round-trips multilingual text with byte fallback", async () => {
    const tok = await loadTokenizer(fixture("spm-bpe", "tokenizer.model"));
    const batch = await tok.encodeBatch(MULTILINGUAL, { addBos: false });
    for (const [i, text] of MULTILINGUAL.entries()) {
      const ids = batch[i]!;
      assert.ok(!ids.includes(0), `no <unk> in ${text}`);
      assert.equal(await tok.decode(ids), text);
    }
    const emoji = await tok.tokenize("🦙");
    assert.ok(emoji.includes("<0xF0>"), `emoji falls back to bytes: ${emoji.join(" ")}`);
  });

  it("saves a tokenizer.json that reloads to the same ids", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const tok = await loadTokenizer(fixture("spm-bpe", "tokenizer.model"));
      await tok.save(dir);
      const again = await loadTokenizer(dir);
      for (const text of MULTILINGUAL) assert.deepEqual(await again.encode(text), await tok.encode(text));
      const config = JSON.parse(await readFile(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
      assert.equal(config.bos_token, "<s>");
      assert.equal(config.add_bos_token, true);
      const map = JSON.parse(await readFile(join(dir, "special_tokens_map.json"), "utf8")) as Record<string, unknown>;
      assert.deepEqual(map, { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" });
    } finally {
      await cleanup();
    }
  });

  it("rejects a damaged tokenizer.model, a bad tokenizer.json, a missing file and out-of-range ids", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const bytes = await readFile(fixture("spm-bpe", "tokenizer.model"));
      await writeFile(join(dir, "tokenizer.model"), bytes.subarray(0, 1000));
      await assert.rejects(
        loadTokenizer(join(dir, "tokenizer.model")),
        (e: unknown) => e instanceof TokenizerError && e.code === "XA_TOKENIZER_SPM",
      );
      assert.throws(() => parseSentencePieceModel(new Uint8Array([0x0a, 0x05, 0x01])), TokenizerError);
      await writeFile(join(dir, "tokenizer.json"), "{ not json");
      await assert.rejects(
        loadTokenizer(join(dir, "tokenizer.json")),
        (e: unknown) => e instanceof TokenizerError && e.code === "XA_TOKENIZER_JSON",
      );
      await assert.rejects(
        loadTokenizer(join(dir, "nope")),
        (e: unknown) => e instanceof TokenizerError && e.code === "XA_TOKENIZER_MISSING",
      );
      const tok = await loadTokenizer(fixture("spm-bpe"));
      await assert.rejects(tok.decode([5, 600]), (e: unknown) => e instanceof TokenizerError && e.code === "XA_TOKENIZER_ID");
    } finally {
      await cleanup();
    }
  });
});

describe("trainBpeTokenizer", () => {
  const corpus = [
    "the cat sat on the mat and the dog sat on the log",
    "bugün hava çok güzel, parkta yürüyüş yaptık",
    "hôm nay trời đẹp, chúng tôi đi dạo trong công viên",
    "我们今天在公园里散步，天气很好",
    "η γάτα κάθεται στο χαλί",
    "القطة جلست على الحصيرة",
    "बिल्ली चटाई पर बैठी",
  ];

  it("trains a byte-fallback BPE of the requested size that round-trips any text", async () => {
    const tok = await trainBpeTokenizer({ texts: Array.from({ length: 20 }, () => corpus.join("\n")) }, { vocabSize: 400 });
    assert.equal(tok.vocabSize, 400);
    assert.deepEqual([tok.unkId, tok.bosId, tok.eosId], [0, 1, 2]);
    assert.equal(tok.idToToken(3), "<0x00>");
    const pieces = await tok.tokenize("the cat sat");
    assert.ok(pieces.includes("▁the"), `merges were learned: ${pieces.join(" ")}`);
    for (const text of [...MULTILINGUAL, " leading space", "trailing  "]) {
      const ids = await tok.encode(text, { addBos: false });
      assert.ok(!ids.includes(0), `no <unk> for ${text}`);
      assert.equal(await tok.decode(ids), text);
    }
    const { dir, cleanup } = await tempDir();
    try {
      await tok.save(dir);
      const again = await loadTokenizer(dir);
      assert.deepEqual(await again.encode("the cat 🦙"), await tok.encode("the cat 🦙"));
    } finally {
      await cleanup();
    }
  });

  it("splitPunctuation keeps punctuation out of word pieces, so a word has one id wherever it stands", async () => {
    const lines = Array.from({ length: 200 }, (_, i) => `Where does Talot live? Talot lives in Mabem. Who is ${i}? Talot.`);
    const mixed = (text: string) => /\p{L}/u.test(text) && /\p{P}/u.test(text);
    const joined = await trainBpeTokenizer({ texts: lines }, { vocabSize: 320 });
    assert.ok(Object.keys(joined.native.getVocab(true)).some(mixed), "without the option, a piece joins a word and a mark");
    const split = await trainBpeTokenizer({ texts: lines }, { vocabSize: 320, splitPunctuation: true });
    const vocab = Object.keys(split.native.getVocab(true)).filter((p) => !/^<.*>$/.test(p));
    assert.deepEqual(vocab.filter(mixed), []);
    assert.deepEqual(await split.tokenize("Talot. Talot? Talot"), ["▁Talot", ".", "▁Talot", "?", "▁Talot"]);
    for (const text of ["Where does Talot live? Mabem.", "我们今天在公园里散步，天气很好。", "القطة جلست؟"]) {
      assert.equal(await split.decode(await split.encode(text, { addBos: false })), text);
    }
  });

  it("is deterministic and rejects bad input", async () => {
    const a = await trainBpeTokenizer({ texts: corpus }, { vocabSize: 320 });
    const b = await trainBpeTokenizer({ texts: corpus }, { vocabSize: 320 });
    assert.deepEqual(a.native.getVocab(true), b.native.getVocab(true));
    await assert.rejects(trainBpeTokenizer({ texts: corpus }, { vocabSize: 100 }), TokenizerError);
    await assert.rejects(trainBpeTokenizer({ texts: ["  "] }, { vocabSize: 400 }), TokenizerError);
    await assert.rejects(trainBpeTokenizer({ files: ["/nonexistent/corpus.txt"] }, { vocabSize: 400 }), TokenizerError);
    assert.ok(Tokenizer);
  });
});
