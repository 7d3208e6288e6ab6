import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { main } from "../../src/cli/index.js";
import { tempDir } from "../helpers.js";

async function quietly(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const log = console.log;
  const error = console.error;
  const write = process.stderr.write;
  let out = "";
  let err = "";
  console.log = (...a: unknown[]) => {
    out += `${a.join(" ")}\n`;
  };
  console.error = (...a: unknown[]) => {
    err += `${a.join(" ")}\n`;
  };
  process.stderr.write = ((chunk: string) => {
    err += chunk;
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await fn(), out, err };
  } finally {
    console.log = log;
    console.error = error;
    process.stderr.write = write;
  }
}

describe("xalign synth", () => {
  it("build writes the data sets and prints the similarity table", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const sizes = "people=100,heldOutPeople=20,places=10,parallel=50,dev=20,devtest=20,instructions=10,qa=5,pretrain=40";
      const r = await quietly(() => main(["synth", "build", "--preset", "zh,xx", "--seed", "3", "--sizes", sizes, "--out", dir]));
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /zh\s+0\.\d{3}\s+0\.\d{3}/);
      const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as { languages: { code: string }[] };
      assert.deepEqual(
        manifest.languages.map((l) => l.code),
        ["en", "zh", "xx"],
      );
      assert.ok(existsSync(join(dir, "flores", "devtest", "zho_simpl.devtest")));
    } finally {
      await cleanup();
    }
  });

  it("bad arguments exit 1 with the error code and write nothing", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const out = join(dir, "out");
      const cases: [string[], RegExp][] = [
        [["--preset", "nope", "--out", out], /XA_SYNTH_PRESET/],
        [["--preset", "paper"], /XA_CLI_ARGS.*--out/],
        [["--preset", "paper", "--out", out, "--sizes", "dev=5000"], /XA_SYNTH_SIZE/],
        [["--preset", "paper", "--out", out, "--seed", "-1"], /XA_CLI_ARGS/],
        [["--preset", "paper", "--out", out, "--bogus"], /XA_CLI_ARGS/],
      ];
      for (const [args, re] of cases) {
        const r = await quietly(() => main(["synth", "build", ...args]));
        assert.equal(r.code, 1, args.join(" "));
        assert.match(r.err, re);
      }
      assert.ok(!existsSync(out));
    } finally {
      await cleanup();
    }
  });
});
