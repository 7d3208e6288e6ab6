import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { JUPYTER_DISPLAY } from "../../src/notebook/index.js";
import { type LossPoint, lossCurveSvg, lossCurveText, TrainingMonitor } from "../../src/train/monitor.js";

const svgOf = (html: string): string => {
  const m = /<img src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/.exec(html);
  assert.ok(m, html);
  return Buffer.from(m[1] ?? "", "base64").toString("utf8");
};

describe("loss curve", () => {
  const train: LossPoint[] = [1, 2, 3].map((step) => ({ step, loss: 5 / step, split: "train" }));
  it("names in its legend only the curves it draws", () => {
    const only = lossCurveSvg(train);
    assert.match(only, />train<\/text>/);
    assert.doesNotMatch(only, /validation/);
    const both = lossCurveSvg([...train, { step: 3, loss: 2.5, split: "validation" }]);
    assert.match(both, />train<\/text>/);
    assert.match(both, />validation<\/text>/);
    assert.equal((both.match(/<path /g) ?? []).length, 2);
  });
  it("describes itself in one line", () => {
    assert.equal(lossCurveText(train), "Loss curve: train loss 5.000 at step 1 to 1.667 at step 3");
    assert.equal(lossCurveText([]), "Loss curve: no points yet");
  });
});

describe("TrainingMonitor's display", () => {
  it("shows the curve as an <img> (no inline <svg> whose text would leak when sanitised) and the progress in <code>", () => {
    const monitor = new TrainingMonitor({ total: 3, label: "x-llama-de", kernel: false });
    assert.doesNotMatch(String(monitor[JUPYTER_DISPLAY]()["text/html"]), /<img/, "no curve before the first step");
    monitor.step(1, { loss: 5, lr: 1e-3 });
    monitor.step(2, { loss: 4 });
    monitor.done("done");
    const bundle = monitor[JUPYTER_DISPLAY]();
    const html = String(bundle["text/html"]);
    assert.match(String(bundle["text/plain"]), /^x-llama-de {2}2\/3 {2}\[=+/);
    assert.match(html, /^<div class="xalign-training"><div class="xalign-progress"><code>x-llama-de<\/code> <progress value="2" max="3"/);
    assert.match(html, /<code[^>]*>2\/3 +66%.*loss 4 .*status done<\/code>/);
    assert.doesNotMatch(html, /<svg/);
    assert.match(html, /alt="Loss curve: train loss 5\.000 at step 1 to 4\.000 at step 2"/);
    const svg = svgOf(html);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.doesNotMatch(svg, /validation/);
  });
});
