/**
 * The kernel process Jupyter starts: `node dist/kernel/main.js CONNECTION_FILE`
 * (what the installed kernelspec's argv says).
 */

import { XalignKernel } from "./kernel.js";
import { readConnectionFile } from "./wire.js";

async function main(argv: string[]): Promise<void> {
  const file = argv.find((a) => !a.startsWith("-")) ?? argv[argv.indexOf("--connection-file") + 1];
  if (!file) {
    process.stderr.write("usage: node dist/kernel/main.js CONNECTION_FILE\n");
    process.exit(2);
  }
  process.title = "xalign-kernel";
  const kernel = new XalignKernel({ connection: await readConnectionFile(file), rootDir: process.cwd() });
  await kernel.start();
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`xalign kernel: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
