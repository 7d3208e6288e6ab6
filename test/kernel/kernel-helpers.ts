/** Shared by the kernel tests: start the xalign kernel, find the built display helpers. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { kernelArgv } from "../../kernel/spec.js";
import { KernelClient } from "../../src/runner/client.js";
import { fixture, repoRoot } from "../helpers.js";

/** Where the fixture notebooks live (the kernel's working directory in the tests). */
export const NOTEBOOKS = fixture("notebooks");

/** Notebooks import the compiled helpers; without a build those tests skip. */
export const BUILT_HELPERS = join(repoRoot(), "dist", "src", "notebook", "index.js");
export const NEEDS_BUILD = existsSync(BUILT_HELPERS) ? false : "dist/src/notebook is not built: run `npm run build` first";

/** A started, ready kernel in `cwd`. */
export async function startKernel(cwd = NOTEBOOKS): Promise<KernelClient> {
  let stderr = "";
  const client = await KernelClient.launch({ argv: kernelArgv(), cwd, onKernelStderr: (t) => (stderr += t) });
  try {
    await client.waitReady(60_000);
  } catch (err) {
    client.kill();
    client.close();
    throw new Error(`kernel did not start: ${(err as Error).message}\n${stderr}`);
  }
  return client;
}
