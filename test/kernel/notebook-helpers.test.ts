import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { afterEach, describe, it } from "node:test";
import {
  type DisplayMessage,
  display,
  InterruptedError,
  interruptRequested,
  interruptSignal,
  JUPYTER_DISPLAY,
  Progress,
  requestInterrupt,
  resetInterrupt,
  setDisplayChannel,
  throwIfInterrupted,
  toMimeBundle,
  updateDisplay,
  watchSigint,
} from "../../src/notebook/index.js";

function capture(): DisplayMessage[] {
  const sent: DisplayMessage[] = [];
  setDisplayChannel({ send: (m) => sent.push(m) });
  return sent;
}

class Sink extends Writable {
  chunks: string[] = [];
  isTTY = false;
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString());
    done();
  }
}

afterEach(() => {
  setDisplayChannel(undefined);
  resetInterrupt();
});

describe("toMimeBundle", () => {
  it("uses Deno's Symbol.for('Jupyter.display') convention and adds text/plain", () => {
    const figure = { [Symbol.for("Jupyter.display")]: () => ({ "text/html": "<b>fig</b>", "application/json": { a: 1 } }) };
    const bundle = toMimeBundle(figure);
    assert.equal(bundle["text/html"], "<b>fig</b>");
    assert.deepEqual(bundle["application/json"], { a: 1 });
    assert.equal(typeof bundle["text/plain"], "string");
  });
  it("passes bundles through and inspects other values", () => {
    assert.deepEqual(toMimeBundle({ "text/markdown": "# hi", "text/plain": "hi" }), { "text/markdown": "# hi", "text/plain": "hi" });
    assert.deepEqual(toMimeBundle({ a: 1 }), { "text/plain": "{ a: 1 }" });
    assert.deepEqual(toMimeBundle(2), { "text/plain": "2" });
  });
  it("adds text/html (an <img> with a data: URI) to an SVG bundle, which an untrusted notebook still shows", () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>a</text></svg>';
    const bundle = toMimeBundle({ "image/svg+xml": svg, "text/plain": 'final "loss" <1>' });
    assert.equal(bundle["image/svg+xml"], svg);
    const html = String(bundle["text/html"]);
    const m = /^<img src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)" alt="final &quot;loss&quot; &lt;1&gt;">$/.exec(html);
    assert.ok(m, html);
    assert.equal(Buffer.from(m[1] ?? "", "base64").toString("utf8"), svg);
    // A bundle with its own HTML keeps it.
    assert.equal(toMimeBundle({ "image/svg+xml": svg, "text/html": "<b>x</b>" })["text/html"], "<b>x</b>");
  });
});

describe("display / updateDisplay", () => {
  it("sends display_data with an id, then update_display_data with the same id", () => {
    const sent = capture();
    const handle = display({ "text/plain": "a" }, { displayId: true });
    handle.update("b");
    updateDisplay(handle.displayId, "c");
    assert.equal(sent.length, 3);
    assert.equal(sent[0]?.update, false);
    assert.equal(sent[0]?.displayId, handle.displayId);
    assert.deepEqual(
      sent.slice(1).map((m) => [m.update, m.displayId, m.data["text/plain"]]),
      [
        [true, handle.displayId, "b"],
        [true, handle.displayId, "c"],
      ],
    );
  });
  it("sends no display id unless asked", () => {
    const sent = capture();
    display(1);
    assert.equal(sent[0]?.displayId, undefined);
  });
});

describe("interrupts", () => {
  it("are seen through the flag, the signal and throwIfInterrupted, and reset per cell", () => {
    const signal = interruptSignal();
    assert.equal(interruptRequested(), false);
    throwIfInterrupted();
    requestInterrupt("test");
    assert.equal(signal.aborted, true);
    assert.equal(interruptRequested(), true);
    assert.throws(() => throwIfInterrupted(), InterruptedError);
    resetInterrupt();
    assert.equal(interruptRequested(), false);
    assert.equal(interruptSignal().aborted, false);
  });
  it("watchSigint turns Ctrl-C into an interrupt request in a terminal, and leaves SIGINT to the kernel inside one", () => {
    const before = process.listenerCount("SIGINT");
    const stop = watchSigint();
    assert.equal(process.listenerCount("SIGINT"), before + 1);
    const writes: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => writes.push(chunk) > 0) as typeof process.stderr.write;
    try {
      process.listeners("SIGINT").at(-1)?.("SIGINT");
    } finally {
      process.stderr.write = write;
    }
    assert.equal(interruptRequested(), true);
    assert.match(writes.join(""), /interrupt requested/);
    stop();
    assert.equal(process.listenerCount("SIGINT"), before);
    capture();
    watchSigint();
    assert.equal(process.listenerCount("SIGINT"), before);
  });
});

describe("Progress", () => {
  it("in a kernel, shows one display and updates it in place with step, ETA and loss", () => {
    const sent = capture();
    let t = 0;
    const p = new Progress({ total: 10, label: "train", now: () => t, minIntervalMs: 100 });
    for (let step = 1; step <= 10; step++) {
      t += 50;
      p.update(step, { loss: 1 / step });
    }
    p.done();
    const id = sent[0]?.displayId;
    assert.ok(id);
    assert.equal(sent[0]?.update, false);
    assert.ok(sent.slice(1).every((m) => m.update && m.displayId === id));
    // throttled: 10 steps at 50 ms with a 100 ms interval draw about every other step, plus the final one
    assert.ok(sent.length < 10, `${sent.length} messages`);
    const last = sent.at(-1)?.data["text/plain"] as string;
    assert.match(last, /^train {2}10\/10 {2}\[=+\] {2}100% {2}00:01 {2}loss 0\.1$/);
    assert.match(sent.at(-1)?.data["text/html"] as string, /<progress value="10" max="10"/);
    const mid = p[JUPYTER_DISPLAY]();
    assert.ok(typeof mid["text/plain"] === "string");
  });
  it("estimates the time left from the mean step time", () => {
    let t = 0;
    const p = new Progress({ total: 100, now: () => t, kernel: false, stream: new Sink() });
    t = 10_000;
    p.update(25);
    assert.equal(p.etaSeconds(), 30);
    assert.match(p.text(), /00:10<00:30/);
  });
  it("in a terminal that is not a TTY, writes a line per 10% and the final line to the stream", () => {
    const sink = new Sink();
    const p = new Progress({ total: 100, now: () => 0, kernel: false, stream: sink, minIntervalMs: 0 });
    for (let i = 1; i <= 100; i++) p.update(i);
    p.done();
    assert.equal(sink.chunks.length, 12); // 0%, 10%..100%, and the final line
    assert.ok(sink.chunks.every((c) => c.endsWith("\n") && !c.includes("\r")));
  });
  it("on a TTY, redraws one line with carriage returns", () => {
    const sink = new Sink();
    sink.isTTY = true;
    const p = new Progress({ total: 3, now: () => 0, kernel: false, stream: sink, minIntervalMs: 0 });
    p.update(1);
    p.done();
    assert.ok(sink.chunks.every((c) => c.startsWith("\r")));
    assert.ok(sink.chunks.at(-1)?.endsWith("\n"));
  });
});
