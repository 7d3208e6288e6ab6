/**
 * Training: the loop (accumulation, AdamW, schedules, clipping, validation,
 * atomic checkpoints, exact resume), LoRA in the PEFT layout, batching, and
 * the experiment runner behind `xalign train`.
 */
export { AdamW, type AdamWOptions, type AdamWState, clipByGlobalNorm, clipScale, defaultDecay, globalNorm } from "./adamw.js";
export { type Batch, type BatchSource, bucketedBatches, type DataPosition, packedBatches, padBatch, type Sequence } from "./batches.js";
export { ExperimentRun, modelConfigFor, type RunOptions, runExperiment, type StageRun, trainingTokenizer } from "./experiment.js";
export { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, LoraAdapters } from "./lora.js";
export { type LossPoint, lossCurveHtml, lossCurveSvg, lossCurveText, TrainingMonitor } from "./monitor.js";
export { learningRate, type Schedule, type ScheduleKind, warmupStepsFrom } from "./schedule.js";
export { type BatchTokenizer, encodeExamples, readInstructionFiles, readTextLines, splitValidation, tokenStream } from "./sequences.js";
export {
  findTorchPython,
  generateTextsWithTorch,
  generateWithTorch,
  microBatchSequence,
  type TorchEngineReport,
  type TorchSettings,
  type TorchTrainOptions,
  type TorchTrainResult,
  type TrainEngine,
  torchEngineReport,
  torchEngineWanted,
  trainOn,
  trainWithTorch,
  writeBatchesFile,
  writeHfWeights,
} from "./torch-engine.js";
export {
  evaluateLoss,
  latestCheckpoint,
  type StepRecord,
  type TrainableModel,
  type TrainOptions,
  type TrainResult,
  totalStepsOf,
  train,
} from "./trainer.js";
export { modelPersistence } from "./weights.js";
