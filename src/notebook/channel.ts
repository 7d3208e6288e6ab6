/**
 * Where displays go. The kernel installs a channel while it runs; library
 * code only calls display()/updateDisplay(). The channel lives on globalThis
 * under a registered symbol so that every copy of this module (the kernel's,
 * and the one a notebook gets through `import "xalign"`) sees the same one.
 */
import type { MimeBundle } from "./mime.js";

/** One display message as the kernel sends it. */
export interface DisplayMessage {
  data: MimeBundle;
  metadata: Record<string, unknown>;
  /** Set when the display can be updated later. */
  displayId: string | undefined;
  /** true: replace the display with this id in place (update_display_data). */
  update: boolean;
  /**
   * The object shown, when it was one: the kernel does not show it a second
   * time as the cell's result (so `await record.table(...)` as a cell's last
   * expression shows its table once).
   */
  source?: object;
}

/** Implemented by the kernel: sends display_data / update_display_data on IOPub. */
export interface DisplayChannel {
  send(message: DisplayMessage): void;
}

const CHANNEL_KEY = Symbol.for("xalign.notebook.displayChannel");
type Holder = { [CHANNEL_KEY]?: DisplayChannel | undefined };

/** Installs (or with `undefined` removes) the process's display channel; the kernel calls this. */
export function setDisplayChannel(channel: DisplayChannel | undefined): void {
  (globalThis as Holder)[CHANNEL_KEY] = channel;
}

/** The channel of the running kernel, or undefined in a terminal. */
export function currentDisplayChannel(): DisplayChannel | undefined {
  return (globalThis as Holder)[CHANNEL_KEY];
}

/** Whether code runs inside a kernel that shows rich output. */
export function inKernel(): boolean {
  return currentDisplayChannel() !== undefined;
}
