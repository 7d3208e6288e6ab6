import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  alignmentLinks,
  BASE_SPEC,
  crossings,
  deriveLanguage,
  Grammar,
  generateWorld,
  type LanguageSpec,
  LEXICON,
  PRESET_LANGUAGES,
  parallelSentence,
  presetLanguages,
  RELATIONS,
  Realizer,
  resolvePreset,
  W,
} from "../../src/synth/index.js";
import { ConfigError } from "../../src/util/errors.js";
import { Rng } from "../../src/util/rng.js";

const world = generateWorld(new Rng(7).fork("world"), { people: 200, heldOutPeople: 40, places: 30 });
const g = new Grammar(world);
const english = new Realizer(deriveLanguage(BASE_SPEC), world.names);
const spec = (over: Partial<LanguageSpec>): LanguageSpec => ({ ...BASE_SPEC, code: "t", ...over });
const realizer = (over: Partial<LanguageSpec>) => new Realizer(deriveLanguage(spec(over)), world.names);

/** A sample of declaratives and questions (every relation, both question forms). */
function sample(n: number) {
  const rng = new Rng(3);
  const out = [];
  for (let i = 0; i < n; i++) out.push(parallelSentence(g, rng).clause);
  for (const p of world.trainPeople.slice(0, 20))
    for (const r of RELATIONS) for (const alt of [false, true]) out.push(g.question(p, r, alt).clause);
  return out;
}

describe("derived languages", () => {
  it("a 0%-substitution Latin SVO language equals the base text, questions included", () => {
    const same = realizer({ code: "same", seed: "other-seed" });
    for (const c of sample(500)) assert.equal(same.sentence(c).text, english.sentence(c).text);
  });

  it("the base text reads as English", () => {
    const rng = new Rng(11);
    const p = world.trainPeople[0] as number;
    const person = world.names[p] as string;
    assert.equal(english.sentence(g.question(p, "home", false).clause).text, `Where does ${person} live?`);
    assert.equal(english.sentence(g.question(p, "age", false).clause).text, `How old is ${person}?`);
    assert.equal(english.sentence(g.question(p, "born", false).clause).text, `When was ${person} born?`);
    const fact = english.sentence(g.fact(p, "job", rng).clause).text;
    assert.match(fact, new RegExp(`^(${person} works as an? \\w+|${person} is an? \\w+|The job of ${person} is \\w+)\\.$`));
  });

  it("share 1 replaces every lexeme, share 0 none, and replaced sets are nested", () => {
    assert.ok(deriveLanguage(spec({ share: 1 })).replaced.every(Boolean));
    assert.ok(!deriveLanguage(spec({ share: 0 })).replaced.some(Boolean));
    const l30 = deriveLanguage(PRESET_LANGUAGES.v30 as LanguageSpec);
    const l60 = deriveLanguage(PRESET_LANGUAGES.v60 as LanguageSpec);
    const n30 = l30.replaced.filter(Boolean).length;
    assert.equal(n30, Math.round(0.3 * LEXICON.length));
    l30.replaced.forEach((r, i) => {
      if (r) assert.ok(l60.replaced[i], `lexeme ${LEXICON[i]?.key} replaced at 30% but not at 60%`);
    });
  });

  it("invented words are distinct within a language and differ between languages", () => {
    for (const code of ["zh", "ar", "tr", "xx"]) {
      const lang = deriveLanguage(PRESET_LANGUAGES[code] as LanguageSpec);
      const bases = lang.forms.filter((_, i) => lang.replaced[i]).map((f) => f[0].toLowerCase());
      assert.equal(new Set(bases).size, bases.length, `${code} has two lexemes with one form`);
    }
    const a = deriveLanguage(spec({ code: "a", share: 1 }));
    const b = deriveLanguage(spec({ code: "b", share: 1 }));
    const differ = a.forms.filter((f, i) => f[0] !== b.forms[i]?.[0]).length;
    assert.ok(differ > LEXICON.length * 0.9);
  });

  it("scripts: Greek, Devanagari, Arabic and CJK text stays in its script (anchors aside)", () => {
    const cases: [Partial<LanguageSpec>, RegExp][] = [
      [{ script: "greek", share: 0.5 }, /\p{Script=Greek}/u],
      [{ script: "devanagari", share: 0.5 }, /\p{Script=Devanagari}/u],
      [{ script: "arabic", share: 0.5 }, /\p{Script=Arabic}/u],
      [{ script: "cjk", share: 1, spaces: false }, /\p{Script=Han}/u],
      [{ script: "cyrillic", share: 0.5 }, /\p{Script=Cyrillic}/u],
    ];
    for (const [over, re] of cases) {
      const r = realizer({ ...over, anchors: false });
      for (const c of sample(100)) {
        const text = r.sentence(c).text;
        assert.doesNotMatch(text, /[A-Za-z]/, `${over.script}: Latin letters in "${text}"`);
        assert.match(text, re);
      }
    }
  });

  it("anchors keep names and digits; without anchors digits are native", () => {
    const rng = new Rng(1);
    const p = world.trainPeople[1] as number;
    const age = String(world.people[p]?.age);
    const anchored = realizer({ script: "arabic", share: 1, anchors: true });
    const native = realizer({ script: "arabic", share: 1, anchors: false });
    const fact = g.fact(p, "age", rng);
    assert.ok(anchored.sentence(fact.clause).text.includes(world.names[p] as string));
    assert.ok(anchored.sentence(fact.clause).text.includes(age));
    assert.ok(!native.sentence(fact.clause).text.includes(age));
    assert.ok(native.sentence(fact.clause).text.includes([...age].map((d) => "٠١٢٣٤٥٦٧٨٩"[Number(d)]).join("")));
  });

  it("no spaces: a CJK-like language writes sentences without spaces", () => {
    const r = realizer({ script: "cjk", share: 1, spaces: false });
    for (const c of sample(100)) assert.doesNotMatch(r.sentence(c).text, /\s/);
  });

  it("word order: SOV puts the verb last, VSO first; SVO is monotone", () => {
    const rng = new Rng(5);
    const p = world.trainPeople[2] as number;
    const fact = g.fact(p, "likes", rng);
    const verbIds = new Set(fact.clause.verb.map((l) => l.id));
    const sov = realizer({ order: "sov" }).sentence(fact.clause);
    const vso = realizer({ order: "vso" }).sentence(fact.clause);
    assert.ok(
      sov.ids[sov.ids.length - 1]?.some((id) => verbIds.has(id)),
      sov.text,
    );
    assert.ok(
      vso.ids[0]?.some((id) => verbIds.has(id)),
      vso.text,
    );
    const svo = realizer({ share: 1 });
    for (const c of sample(200)) {
      if (c.question) continue;
      assert.equal(crossings(alignmentLinks(english.sentence(c), svo.sentence(c))).crossing, 0);
    }
  });

  it("adjectives after the noun and postpositions", () => {
    const b = realizer({ adjectives: "after", adpositions: "post" });
    const rng = new Rng(2);
    for (let i = 0; i < 50; i++) {
      const p = world.trainPeople[i] as number;
      const who = world.people[p];
      const owns = g.fact(p, "owns", rng);
      const text = b.sentence(owns.clause).text;
      const obj = LEXICON[who?.object as number]?.forms[0] as string;
      const color = LEXICON[who?.color as number]?.forms[0] as string;
      if (english.sentence(owns.clause).text.includes(`${color} ${obj}`)) assert.ok(text.includes(`${obj} ${color}`), text);
      const born = g.fact(p, "born", rng);
      const month = LEXICON[who?.month as number]?.forms[0] as string;
      assert.match(b.sentence(born.clause).text, new RegExp(`${month} in\\.$`));
    }
  });

  it("agglutinative morphology adds case suffixes and drops the adpositions they replace", () => {
    const lang = deriveLanguage(spec({ morphology: "agglutinative", share: 0 }));
    const r = new Realizer(lang, world.names);
    const p = world.trainPeople[3] as number;
    const place = world.names[world.places[world.people[p]?.home as number]?.name as number] as string;
    const q = g.question(p, "home", false);
    const rng = new Rng(1);
    let saw = false;
    for (let i = 0; i < 20; i++) {
      const f = g.fact(p, "home", rng);
      const text = r.sentence(f.clause).text;
      if (english.sentence(f.clause).text.includes(` in ${place}`)) {
        assert.ok(text.includes(`${place}${lang.caseSuffix.in}`), text);
        assert.ok(!text.includes(" in "), text);
        saw = true;
      }
    }
    assert.ok(saw);
    assert.ok(q);
    const likes = g.fact(p, "likes", new Rng(0));
    if (!likes.clause.predicate) assert.ok(r.sentence(likes.clause).text.includes(lang.caseSuffix.acc as string));
  });

  it("in-situ questions keep the wh-word in place and end with the particle", () => {
    const lang = deriveLanguage(spec({ questions: "in-situ", share: 1 }));
    const r = new Realizer(lang, world.names);
    const p = world.trainPeople[4] as number;
    const q = r.sentence(g.question(p, "home", false).clause);
    assert.ok(q.text.startsWith(world.names[p] as string), q.text);
    assert.ok(q.text.endsWith(`${lang.forms[W.does]?.[0]}?`), q.text);
  });

  it("articles can be dropped; front questions move the wh-word without inversion or do-support", () => {
    const noArticles = realizer({ articles: false });
    for (const c of sample(100)) assert.doesNotMatch(noArticles.sentence(c).text, /\b(the|The|a|an|A|An)\b/);
    const front = realizer({ questions: "front" });
    const p = world.trainPeople[5] as number;
    const name = world.names[p] as string;
    assert.equal(front.sentence(g.question(p, "home", false).clause).text, `Where ${name} live?`);
    assert.equal(front.sentence(g.question(p, "age", false).clause).text, `How old ${name} is?`);
    assert.equal(front.sentence(g.question(p, "born", false).clause).text, `When ${name} was born?`);
  });

  it("bad specs and presets are ConfigErrors with a code", () => {
    for (const share of [-0.1, 1.5, Number.NaN]) {
      assert.throws(
        () => deriveLanguage(spec({ share })),
        (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_SHARE",
      );
    }
    assert.throws(
      () => deriveLanguage(spec({ order: "osv" as "svo" })),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_LANGUAGE",
    );
    assert.throws(
      () => presetLanguages("klingon"),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_PRESET" && /klingon/.test(e.message),
    );
    const custom = { ...(PRESET_LANGUAGES.v60 as LanguageSpec), code: "v45", share: 0.45 };
    assert.equal(resolvePreset([custom])[0]?.share, 0.45);
    assert.throws(
      () => resolvePreset([custom, custom]),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_PRESET",
    );
    assert.throws(
      () => resolvePreset([{ ...custom, share: 2 }]),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_SHARE",
    );
    assert.throws(
      () => resolvePreset([]),
      (e: unknown) => e instanceof ConfigError && e.code === "XA_SYNTH_PRESET",
    );
    assert.deepEqual(
      presetLanguages("paper").map((l) => l.code),
      ["ar", "el", "hi", "tr", "vi", "zh", "xx"],
    );
  });
});
