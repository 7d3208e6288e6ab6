import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { run } from "../../src/cli/synth.js";
import { ConfigError } from "../../src/util/errors.js";

describe("xalign synth probe", () => {
  it("requires --model and --world, naming both", async () => {
    await assert.rejects(
      run(["probe", "--world", "w"]),
      (err: unknown) => err instanceof ConfigError && /--model DIR and --world DIR/.test(err.message),
    );
    await assert.rejects(run(["probe", "--model", "m"]), (err: unknown) => err instanceof ConfigError && err.code === "XA_CLI_ARGS");
  });

  it("rejects an unknown flag", async () => {
    await assert.rejects(run(["probe", "--modle", "m"]), (err: unknown) => err instanceof ConfigError && /modle/.test(err.message));
  });
});
