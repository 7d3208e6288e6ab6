/**
 * Shared artifacts of the study notebooks — the synthetic world, the
 * tokenizer, the English-dominant base model — built once and reused, keyed
 * by a hash of their configuration and the xalign version that built them.
 * A changed configuration (or a new version) builds a new entry; entries are
 * listed and cleared with `xalign cache list|clear`.
 *
 * Location: $XALIGN_CACHE, else <home>/.cache/xalign (ignored by git), where
 * <home> is $XALIGN_HOME, the project folder, or the installation (xalignHome).
 *
 * @example
 * const dir = await cached("world", { preset: "paper", seed: 1 }, (out) => buildSynthWorld(out, { preset: "paper", seed: 1 }));
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { sha256, stableStringify, writeJsonAtomic, xalignHome } from "../util/fs.js";
import { VERSION } from "../version.js";

const MARKER = "xalign-cache.json";

export interface CacheEntry {
  kind: string;
  key: string;
  dir: string;
  config: unknown;
  version: string;
  createdAt: string;
  seconds: number;
  bytes: number;
}

/** The cache folder. */
export function cacheRoot(): string {
  return resolve(process.env.XALIGN_CACHE ?? join(xalignHome(), ".cache", "xalign"));
}

/**
 * A fresh folder name under the cache's scratch/ for throw-away outputs (e.g.
 * the training metrics of a `study.tune` call given no outDir); not created
 * here. `xalign cache clear` removes scratch/ with the entries.
 *
 * @example
 * scratchDir("tune-x-llama-vi-seed0"); // <cache>/scratch/tune-x-llama-vi-seed0-2026-12-07T08-30-00-000Z-1234
 */
export function scratchDir(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "run";
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return join(cacheRoot(), "scratch", `${safe}-${stamp}-${process.pid}`);
}

/** The key of an artifact: kind, configuration and code version. */
export function cacheKey(kind: string, config: unknown): string {
  return sha256(stableStringify({ kind, config, version: VERSION })).slice(0, 16);
}

/**
 * The folder of an artifact, built by `build(tempDir)` when missing. The
 * build writes into a temp folder that is renamed into place only when it
 * succeeds, so an interrupted build leaves nothing that looks complete.
 */
export async function cached(
  kind: string,
  config: unknown,
  build: (dir: string) => Promise<void>,
  onStatus?: (message: string) => void,
): Promise<string> {
  const key = cacheKey(kind, config);
  const dir = join(cacheRoot(), `${kind}-${key}`);
  if (existsSync(join(dir, MARKER))) {
    onStatus?.(`${kind}: cached (${dir})`);
    return dir;
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  onStatus?.(`${kind}: building (${dir})`);
  const started = Date.now();
  try {
    await build(tmp);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const entry: Omit<CacheEntry, "dir" | "bytes"> = {
    kind,
    key,
    config,
    version: VERSION,
    createdAt: new Date().toISOString(),
    seconds: (Date.now() - started) / 1000,
  };
  await writeJsonAtomic(join(tmp, MARKER), entry);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}

/** Every complete entry in the cache. */
export async function listCache(): Promise<CacheEntry[]> {
  const root = cacheRoot();
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  const out: CacheEntry[] = [];
  for (const name of names.sort()) {
    const dir = join(root, name);
    try {
      const meta = JSON.parse(await readFile(join(dir, MARKER), "utf8")) as Omit<CacheEntry, "dir" | "bytes">;
      out.push({ ...meta, dir, bytes: await folderBytes(dir) });
    } catch {
      // Not an entry (or an unfinished build): `clear` removes it.
    }
  }
  return out;
}

/** Removes entries (all, or those of one kind) and unfinished builds; returns how many folders went. */
export async function clearCache(kind?: string): Promise<number> {
  const root = cacheRoot();
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (kind && !name.startsWith(`${kind}-`)) continue;
    await rm(join(root, name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    total += entry.isDirectory() ? await folderBytes(p) : (await stat(p)).size;
  }
  return total;
}
