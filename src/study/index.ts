/**
 * The study's building blocks for notebooks: cached shared artifacts, tuning
 * from the base model, the study's evaluations, and run records. The modules
 * and what this folder may import: README.md.
 */

export { type CacheEntry, cached, cacheKey, cacheRoot, clearCache, listCache, scratchDir } from "./cache.js";
export {
  armMean,
  armTable,
  compareOverSeeds,
  formatRelativeChange,
  mean,
  meanRelativeChange,
  relativeChange,
  type SeedComparison,
  sd,
  UNDEFINED_CHANGE,
  type Verdict,
  verdictText,
} from "./compare.js";
export type { Competence, CompetenceRow, QaEvaluation, ReadingProbe, TranslationEvaluation } from "./evaluate.js";
export {
  type ArmMetric,
  type ArmRef,
  armCell,
  coitExamples,
  collect,
  competenceNote,
  type FindingsView,
  findingsView,
  formatFindingNumber,
  formatInterval,
  formatNumber,
  meanOverLanguages,
  readingNote,
  relativeGains,
  runArms,
  runScaling,
  tuneSummary,
} from "./present.js";
export { type CopyProbeOptions, copyProbe } from "./probes.js";
export {
  compareMetrics,
  type MetricDifference,
  type PublishedRun,
  type PublishedView,
  publishedPath,
  publishedView,
  publishRun,
  readPublished,
} from "./published.js";
export { dataRoot, type Finding, latestRun, type Row, RunRecord, runsRoot, type SavableFigure, type TableRow, toCsv } from "./record.js";
export { type DeepPartial, STUDY_LANGUAGES, type StudyMode, type StudySettings, studySettings } from "./settings.js";
export { type ArmEvaluation, type ArmResult, type ArmSpec, Study, type StudyFolders } from "./study.js";
export type { Tuned, TuneOptions } from "./tune.js";
export { type NotebookFolders, notebookName, runStudy, type StudyRun, type VerifyResult, verifyNotebook } from "./verify.js";
export { LANGUAGE_NAMES, type WorldManifest } from "./world.js";
