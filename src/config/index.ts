export { type LoadedExperiment, loadExperiment, parseExperiment, resolveFrom } from "./load.js";
export { MODEL_PRESETS, type ModelPreset, TRAIN_PRESETS, type TrainPresetName } from "./presets.js";
export * from "./schema.js";
