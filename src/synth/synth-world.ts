/**
 * A preset's world, opened in memory: the world, its grammar and a realiser
 * per language, with the same seeded streams `buildSynthWorld` uses, so a
 * notebook can draw data of any size without files and get exactly what a
 * build would write (and a smaller draw is a prefix of a larger one).
 */
import { ConfigError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { Grammar } from "./grammar.js";
import { BASE_SPEC, deriveLanguage, type LanguageSpec } from "./language.js";
import { type Preset, resolvePreset } from "./presets.js";
import { Realizer } from "./realize.js";
import { type InstructionPlan, parallelSentence, planInstruction } from "./tasks.js";
import { DEFAULT_WORLD, type FreshNames, generateWorld, type World, type WorldSizes, withFreshFacts } from "./world.js";

/**
 * @example
 * const sw = new SynthWorld("paper", 1);
 * const { en, text } = sw.parallel("zh", 500); // the first 500 lines of parallel/en-zh/train.{en,zh}
 */
export class SynthWorld {
  readonly world: World;
  readonly grammar: Grammar;
  readonly english: Realizer;
  /** The preset's languages, in preset order (English not included). */
  readonly languages: readonly Realizer[];
  readonly specs: readonly LanguageSpec[];

  constructor(
    preset: Preset,
    readonly seed: number,
    sizes: Partial<WorldSizes> = {},
  ) {
    this.specs = resolvePreset(preset);
    this.world = generateWorld(this.rng("world"), { ...DEFAULT_WORLD, ...sizes });
    this.grammar = new Grammar(this.world);
    this.english = new Realizer(deriveLanguage(BASE_SPEC), this.world.names);
    this.languages = this.specs.map((s) => new Realizer(deriveLanguage(s), this.world.names));
  }

  /** The stream for one purpose ("parallel:zh", "qa", ...): independent of every other. */
  rng(label: string): Rng {
    return new Rng(this.seed).fork(label);
  }

  /** The realiser of a language code ("en" included). */
  realizer(code: string): Realizer {
    if (code === "en") return this.english;
    const r = this.languages.find((l) => l.language.spec.code === code);
    if (!r) {
      throw new ConfigError("XA_SYNTH_PRESET", `language "${code}" is not in this world`, {
        hint: `use en, ${this.specs.map((s) => s.code).join(", ")}`,
      });
    }
    return r;
  }

  /** n English-X training pairs from the training people: the build's parallel/en-X files. */
  parallel(code: string, n: number): { en: string[]; text: string[] } {
    const r = this.realizer(code);
    const rng = this.rng(`parallel:${code}`);
    const en: string[] = [];
    const text: string[] = [];
    for (let i = 0; i < n; i++) {
      const s = parallelSentence(this.grammar, rng);
      en.push(this.english.sentence(s.clause).text);
      text.push(r.sentence(s.clause).text);
    }
    return { en, text };
  }

  /**
   * n instruction plans, sampled fresh per epoch (render them with renderInstruction). With `fresh`, each plan
   * is about invented people named from that block, with freshly drawn facts (render with a realiser that has
   * `fresh.names`): its answer can be read from its passage and from nowhere else.
   */
  instructionPlans(n: number, epoch = 0, fresh?: FreshNames): InstructionPlan[] {
    const rng = this.rng(epoch === 0 ? "instructions" : `instructions:${epoch}`);
    const grammar = () => (fresh ? new Grammar(withFreshFacts(this.world, rng.fork(`fresh-${rng.nextU32()}`), fresh)) : this.grammar);
    return Array.from({ length: n }, () => planInstruction(grammar(), rng));
  }
}
