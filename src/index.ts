/**
 * xalign: cross-lingual instruction tuning of LLaMA models in TypeScript.
 *
 * Each area is available as a namespace (`import { data, eval as metrics } from "xalign"`),
 * and the names a notebook uses most are exported directly.
 *
 * @example
 * import { Study, studySettings } from "xalign";
 * const study = await Study.prepare(studySettings("quick"));
 */
export * as analysis from "./analysis/index.js";
export * as config from "./config/index.js";
export * as data from "./data/index.js";
export * as engine from "./engine/index.js";
export { ensureEngine, initEngine, tf } from "./engine/index.js";
export * as metrics from "./eval/index.js";
export * as model from "./model/index.js";
export { generate, LlamaModel, loadCheckpoint, saveCheckpoint } from "./model/index.js";
export { display, Progress, updateDisplay } from "./notebook/index.js";
export * as notebook from "./notebook-namespace.js";
export * as plot from "./plot/index.js";
export * as study from "./study/index.js";
export { Study, studySettings } from "./study/index.js";
export * as synth from "./synth/index.js";
export * as tokenizer from "./tokenizer/index.js";
export { loadTokenizer, trainBpeTokenizer } from "./tokenizer/index.js";
export * as train from "./train/index.js";
export { runExperiment } from "./train/index.js";
export * from "./util/errors.js";
export { Rng } from "./util/rng.js";
export { VERSION } from "./version.js";
