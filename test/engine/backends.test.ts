import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";
import { initEngine, isRethrow, probeBackends, tf } from "../../src/engine/index.js";
import { BackendError } from "../../src/util/errors.js";

const require = createRequire(import.meta.url);

test("auto takes the first available backend in the documented order and says why", async () => {
  const saved = process.env.XALIGN_BACKEND;
  delete process.env.XALIGN_BACKEND;
  try {
    const engine = await initEngine();
    const expected = engine.probes.find((p) => p.available);
    assert.equal(engine.backend, expected?.name);
    assert.match(engine.reason, /^auto: /);
    assert.equal(tf.getBackend(), engine.backend);
  } finally {
    if (saved !== undefined) process.env.XALIGN_BACKEND = saved;
  }
});

test("an unknown backend name is a BackendError naming the choices", async () => {
  await assert.rejects(
    initEngine({ backend: "cuda" as "cpu" }),
    (err: unknown) =>
      err instanceof BackendError && err.code === "XA_BACKEND_UNKNOWN" && /auto, tensorflow, webgpu, wasm, cpu/.test(err.message),
  );
});

test("XALIGN_BACKEND with a bad value is reported as coming from XALIGN_BACKEND", async () => {
  const saved = process.env.XALIGN_BACKEND;
  process.env.XALIGN_BACKEND = "tpu";
  try {
    await assert.rejects(initEngine(), (err: unknown) => err instanceof BackendError && /XALIGN_BACKEND/.test(err.message));
  } finally {
    if (saved === undefined) delete process.env.XALIGN_BACKEND;
    else process.env.XALIGN_BACKEND = saved;
  }
});

test("a forced backend that cannot start is an error saying why and what to install, never a fallback", async (t) => {
  await initEngine({ backend: "cpu" });
  const probes = await probeBackends();
  const unavailable = probes.filter((p) => !p.available);
  if (unavailable.length === 0) {
    t.skip("every backend is available on this machine");
    return;
  }
  for (const p of unavailable) {
    await assert.rejects(initEngine({ backend: p.name }), (err: unknown) => {
      assert.ok(err instanceof BackendError);
      assert.equal(err.code, "XA_BACKEND_UNAVAILABLE");
      assert.match(err.message, new RegExp(`backend "${p.name}" was requested but cannot start`));
      assert.ok(err.hint && err.hint.length > 0, "the error says what to install");
      if (p.name === "tensorflow") assert.match(err.message, /tfjs-node/);
      return true;
    });
    assert.equal(tf.getBackend(), "cpu", `forcing ${p.name} must not switch to another backend`);
  }
});

test("the tensorflow probe sees through the npm override that maps tfjs-node to tfjs", async (t) => {
  let realName: string | undefined;
  try {
    realName = (require("@tensorflow/tfjs-node/package.json") as { name: string }).name;
  } catch {
    t.skip("no node_modules/@tensorflow/tfjs-node here");
    return;
  }
  if (realName === "@tensorflow/tfjs-node") {
    t.skip("a real tfjs-node is installed");
    return;
  }
  const [tensorflow] = await probeBackends();
  assert.equal(tensorflow?.name, "tensorflow");
  assert.equal(tensorflow?.available, false);
  assert.match(tensorflow?.reason ?? "", new RegExp(`is really ${realName.replace("/", "\\/")}`));
});

class ExitStatus {}

test("isRethrow matches only Emscripten's rethrowing process handlers", () => {
  // The two handlers tfjs-backend-wasm's module installs, written as its source writes them.
  // biome-ignore lint/complexity/useArrowFunction: the handlers are function expressions in the module's source
  const uncaught = function (ex: unknown) {
    if (!(ex instanceof ExitStatus)) {
      throw ex;
    }
  };
  // biome-ignore lint/complexity/useArrowFunction: as above
  const rejection = function (reason: unknown) {
    throw reason;
  };
  assert.equal(isRethrow(uncaught), true);
  assert.equal(isRethrow(rejection), true);
  assert.equal(
    isRethrow((err: unknown) => console.error(err)),
    false,
  );
  // biome-ignore lint/complexity/useArrowFunction: as above
  const logsFirst = function (ex: unknown) {
    console.error(ex);
    throw ex;
  };
  assert.equal(isRethrow(logsFirst), false);
});

test("starting the wasm backend leaves no rethrowing handler and keeps the process's own", async () => {
  const own = (): void => {};
  process.on("uncaughtException", own);
  try {
    await initEngine({ backend: "wasm" });
    const handlers = [...process.listeners("uncaughtException"), ...process.listeners("unhandledRejection")];
    assert.equal(handlers.filter((h) => isRethrow(h as () => void)).length, 0);
    assert.ok(process.listeners("uncaughtException").includes(own));
  } finally {
    process.off("uncaughtException", own);
  }
});
