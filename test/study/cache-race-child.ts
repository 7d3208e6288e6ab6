/**
 * One contender in the cache race test: builds (slowly) the entry of one key
 * with cached() in the cache folder argv[3], then reads the returned folder several times over half a
 * second and prints the SHA-256 of what it read. A build that deletes a
 * published entry shows up here as ENOENT or as different bytes.
 */
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { cached } from "../../src/study/cache.js";

const buildMs = Number(process.argv[2] ?? 200);
const root = process.argv[3];
if (!root) throw new Error("usage: cache-race-child.js <build ms> <cache folder>");
const dir = await cached(root, "race", { key: 1 }, async (out) => {
  await writeFile(join(out, "a.txt"), `built by ${process.pid}\n`);
  await sleep(buildMs);
  await writeFile(join(out, "b.txt"), `also by ${process.pid}\n`);
});
const digests = new Set<string>();
for (let i = 0; i < 6; i++) {
  const bytes = Buffer.concat([await readFile(join(dir, "a.txt")), await readFile(join(dir, "b.txt"))]);
  digests.add(createHash("sha256").update(bytes).digest("hex"));
  await sleep(100);
}
if (digests.size !== 1) throw new Error(`the entry changed while it was read (${digests.size} versions)`);
process.stdout.write(`${[...digests][0]}\n`);
