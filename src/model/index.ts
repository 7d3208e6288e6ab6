/**
 * LLaMA in TensorFlow.js: config, model (forward, loss, LoRA hook), KV cache,
 * safetensors and Hugging Face checkpoint folders, generation.
 *
 * @example
 * import { loadCheckpoint, generate } from "./model/index.js";
 * const model = await loadCheckpoint("checkpoints/tiny");
 * const out = await generate(model, [[1, 450, 4996]], { maxNewTokens: 20 });
 */

export { loadCheckpoint, type SaveCheckpointOptions, saveCheckpoint, WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "./checkpoint.js";
export {
  CONFIG_DEFAULTS,
  configFromJson,
  configToJson,
  headDim,
  type LlamaConfig,
  readConfig,
  validateConfig,
  writeConfig,
} from "./config.js";
export { chooseToken, type FinishReason, type GenerateOptions, type GenerateResult, generate, type TokenDecoder } from "./generate.js";
export { KvCache } from "./kvcache.js";
export {
  type ForwardOptions,
  fromHfLayout,
  hfShape,
  type InferenceWeights,
  isTransposedInMemory,
  type LinearAdapter,
  LlamaModel,
  memoryShape,
  toHfLayout,
  weightNames,
} from "./llama.js";
export { causalLmLoss } from "./loss.js";
export { maskPositions, NativeDecoder } from "./nativedecode.js";
export {
  floatBitsToBf16,
  readSafetensors,
  type SafetensorsDtype,
  SafetensorsReader,
  type TensorHeader,
  type TensorRecord,
  type TensorToWrite,
  type WritableDtype,
  writeSafetensors,
} from "./safetensors.js";
