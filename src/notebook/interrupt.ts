/**
 * Interrupts that library code can honour at a safe point. The kernel (on
 * interrupt_request or SIGINT) or a terminal (on Ctrl-C, once `watchSigint`
 * is on) requests an interrupt; a training loop checks `interruptRequested()`
 * or listens to `interruptSignal()` at each step boundary, checkpoints and
 * stops. Like the display channel, the state is shared through globalThis.
 */

import { inKernel } from "./channel.js";

const STATE_KEY = Symbol.for("xalign.notebook.interrupt");
interface InterruptState {
  controller: AbortController;
}
type Holder = { [STATE_KEY]?: InterruptState };

function state(): InterruptState {
  const holder = globalThis as Holder;
  holder[STATE_KEY] ??= { controller: new AbortController() };
  return holder[STATE_KEY];
}

/** Thrown by `throwIfInterrupted`; the kernel reports it as KeyboardInterrupt. */
export class InterruptedError extends Error {
  constructor(message = "interrupted") {
    super(message);
    this.name = "InterruptedError";
  }
}

/**
 * The signal of the current cell (or of the process, in a terminal): aborted
 * when an interrupt is requested. Fetch it at the start of long work.
 *
 * @example
 * const signal = interruptSignal();
 * for (let step = 0; step < steps && !signal.aborted; step++) await trainStep();
 */
export function interruptSignal(): AbortSignal {
  return state().controller.signal;
}

/** Whether an interrupt was requested since the current cell started. */
export function interruptRequested(): boolean {
  return state().controller.signal.aborted;
}

/** Throws InterruptedError when an interrupt was requested. */
export function throwIfInterrupted(): void {
  if (interruptRequested()) throw new InterruptedError();
}

/** Requests an interrupt (the kernel calls this; tests may too). */
export function requestInterrupt(reason = "interrupted"): void {
  const { controller } = state();
  if (!controller.signal.aborted) controller.abort(new InterruptedError(reason));
}

/** Starts a fresh, unaborted signal; the kernel calls this before each cell. */
export function resetInterrupt(): void {
  state().controller = new AbortController();
}

/**
 * In a terminal: the first Ctrl-C requests an interrupt (so a loop can stop
 * cleanly at a step boundary), a second one exits with status 130. Returns a
 * function that removes the handler. Inside the kernel it does nothing: the
 * kernel owns SIGINT (and must not exit on a second one).
 *
 * @example
 * const stop = watchSigint();
 * try { await train(); } finally { stop(); }
 */
export function watchSigint(): () => void {
  if (inKernel()) return () => {};
  const onSigint = (): void => {
    if (interruptRequested()) process.exit(130);
    process.stderr.write("\ninterrupt requested: stopping at the next step boundary (Ctrl-C again to quit now)\n");
    requestInterrupt("Ctrl-C");
  };
  process.on("SIGINT", onSigint);
  return () => {
    process.off("SIGINT", onSigint);
  };
}
