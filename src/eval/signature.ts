/**
 * sacreBLEU-style reproducibility signatures: every setting a score depends
 * on, printed as `key:value|...|version:X`, in sacreBLEU's key order.
 */

/**
 * The sacreBLEU release whose behaviour (tokenisers, smoothing, chrF
 * statistics, signature format) xalign's BLEU and chrF mirror, and which
 * its signatures name. Scores were checked against sacreBLEU 2.6.0 output.
 */
export const SACREBLEU_VERSION = "2.6.0";

/** Settings every metric shares (sacreBLEU prints these first). */
export interface CommonSignatureFields {
  /** Number of references per segment, or "var" when it varies. */
  nrefs: number | "var";
  /** Bootstrap resamples, when a confidence interval was estimated. */
  bs?: number;
  /** The resampling seed, when resampling was done. */
  seed?: number | string;
  test?: string;
  lang?: string;
  origlang?: string;
  subset?: string;
}

const SHORT: Record<string, string> = {
  version: "v",
  nrefs: "#",
  test: "t",
  lang: "l",
  subset: "S",
  origlang: "o",
  bs: "bs",
  ar: "ar",
  seed: "rs",
};

/**
 * A metric's signature. `format()` gives the long form
 * (`nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`),
 * `format(true)` the short one (`#:1|c:mixed|e:no|tok:13a|s:exp|v:2.6.0`).
 */
export class Signature {
  private readonly entries: Array<[string, string, string]> = [];

  /** `metricFields` are [long key, short key, value] in the metric's order. */
  constructor(common: CommonSignatureFields, metricFields: Array<[string, string, string | number | boolean]>) {
    const global: Array<[string, unknown]> = [
      ["nrefs", common.nrefs],
      ["bs", common.bs],
      ["ar", undefined],
      ["seed", common.seed],
      ["test", common.test],
      ["lang", common.lang],
      ["origlang", common.origlang],
      ["subset", common.subset],
    ];
    for (const [key, value] of global) if (value !== undefined) this.entries.push([key, SHORT[key]!, String(value)]);
    for (const [key, short, value] of metricFields) {
      this.entries.push([key, short, typeof value === "boolean" ? (value ? "yes" : "no") : String(value)]);
    }
    this.entries.push(["version", "v", SACREBLEU_VERSION]);
  }

  /** The signature string; `short` uses sacreBLEU's abbreviations. */
  format(short = false): string {
    return this.entries.map(([long, abbr, value]) => `${short ? abbr : long}:${value}`).join("|");
  }

  /** The settings as a plain object (long keys). */
  toJSON(): Record<string, string> {
    return Object.fromEntries(this.entries.map(([long, , value]) => [long, value]));
  }

  toString(): string {
    return this.format();
  }
}
