/** display() and updateDisplay(): rich output from library code. */
import { randomBytes } from "node:crypto";
import { currentDisplayChannel } from "./channel.js";
import { type MimeBundle, toMimeBundle } from "./mime.js";

export interface DisplayOptions {
  /** An id to update this display later; `true` makes a fresh one. */
  displayId?: string | true;
  /** Per-MIME-type metadata (e.g. `{ "image/png": { width: 400 } }`). */
  metadata?: Record<string, unknown>;
}

/** A shown display that can be replaced in place. */
export interface DisplayHandle {
  readonly displayId: string;
  /** Replaces the display with a new value or bundle. */
  update(value: unknown, metadata?: Record<string, unknown>): void;
}

/** A fresh display id. */
export function newDisplayId(): string {
  return randomBytes(8).toString("hex");
}

/**
 * Shows a value: an object implementing `[Symbol.for("Jupyter.display")]()`,
 * a MIME bundle, or anything else (as text). In a kernel this is a
 * display_data message; in a terminal the text/plain part goes to stdout.
 * Returns a handle whose `update` replaces the display in place. An object
 * shown this way during a cell is not shown again as that cell's result.
 *
 * @example
 * const h = display({ "text/html": "<b>step 1</b>", "text/plain": "step 1" }, { displayId: true });
 * h.update({ "text/html": "<b>step 2</b>", "text/plain": "step 2" });
 */
export function display(value: unknown, options: DisplayOptions = {}): DisplayHandle {
  const displayId = options.displayId === true || options.displayId === undefined ? newDisplayId() : options.displayId;
  const source = value !== null && (typeof value === "object" || typeof value === "function") ? value : undefined;
  send(toMimeBundle(value), options.metadata ?? {}, options.displayId === undefined ? undefined : displayId, false, source);
  return {
    displayId,
    update: (next: unknown, metadata?: Record<string, unknown>) => updateDisplay(displayId, next, metadata),
  };
}

/**
 * Replaces the display shown with `displayId` (update_display_data). In a
 * terminal the new text/plain is printed.
 *
 * @example
 * display("epoch 1", { displayId: "epoch" });
 * updateDisplay("epoch", "epoch 2");
 */
export function updateDisplay(displayId: string, value: unknown, metadata: Record<string, unknown> = {}): void {
  send(toMimeBundle(value), metadata, displayId, true);
}

function send(data: MimeBundle, metadata: Record<string, unknown>, displayId: string | undefined, update: boolean, source?: object): void {
  const channel = currentDisplayChannel();
  if (channel) {
    channel.send({ data, metadata, displayId, update, ...(source ? { source } : {}) });
    return;
  }
  process.stdout.write(`${String(data["text/plain"])}\n`);
}
