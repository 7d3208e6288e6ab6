/**
 * Learning-rate schedules with warmup, as Hugging Face's Trainer defines them
 * (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
 * get_cosine_schedule_with_warmup), so a run here and a run there agree.
 *
 * @example
 * const lr = learningRate({ kind: "cosine", peak: 2e-5, warmupSteps: 3, totalSteps: 100 }, 50);
 */
export type ScheduleKind = "constant" | "linear" | "cosine";

export interface Schedule {
  kind: ScheduleKind;
  /** The peak learning rate, reached at the end of warmup. */
  peak: number;
  warmupSteps: number;
  totalSteps: number;
}

/** The learning rate for optimiser step `step` (0-based: the first update uses step 0). */
export function learningRate(schedule: Schedule, step: number): number {
  const { kind, peak, warmupSteps, totalSteps } = schedule;
  if (step < warmupSteps) return (peak * step) / Math.max(1, warmupSteps);
  if (kind === "constant") return peak;
  const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
  if (kind === "linear") return peak * Math.max(0, 1 - progress);
  return peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Warmup steps from either a step count or a ratio of the total (HF: ceil(ratio * total)). */
export function warmupStepsFrom(totalSteps: number, warmup: { steps?: number; ratio?: number }): number {
  if (warmup.steps !== undefined) return warmup.steps;
  return Math.ceil((warmup.ratio ?? 0) * totalSteps);
}
