/**
 * Shared artifacts of the study notebooks — the synthetic world, the
 * tokenizer, the English-dominant base model — built once and reused, keyed
 * by a hash of their configuration and the xalign version that built them.
 * A changed configuration (or a new version) builds a new entry; entries are
 * listed and cleared with `xalign cache list|clear`.
 *
 * Location: every function takes the cache folder (`root`) as an argument;
 * cacheRoot() is the default the outer layers (the CLI, `Study.prepare`) pass:
 * $XALIGN_CACHE, else <home>/.cache/xalign (ignored by git), where <home> is
 * $XALIGN_HOME, the project folder, or the installation (xalignHome).
 *
 * Several processes may ask for one entry at once (two notebooks started on
 * an empty cache): the first takes `<entry>.lock` (created with O_EXCL,
 * holding its pid and host) and builds; the others wait until the entry is
 * published, or build it themselves when the lock goes away without one. A
 * lock whose owner is no longer running (same host, pid gone) is stale and
 * taken over. A published entry (one with its marker file) is never removed
 * or replaced by `cached()`; only `xalign cache clear` removes entries.
 *
 * @example
 * const dir = await cached(cacheRoot(), "world", { preset: "paper", seed: 1 }, (out) => buildSynthWorld(out, { preset: "paper", seed: 1 }));
 */
import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
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

/** The default cache folder: $XALIGN_CACHE, else <home>/.cache/xalign. */
export function cacheRoot(): string {
  return resolve(process.env.XALIGN_CACHE ?? join(xalignHome(), ".cache", "xalign"));
}

/**
 * A fresh folder name under the scratch/ of the cache `root` for throw-away outputs (e.g.
 * the training metrics of a `study.tune` call given no outDir); not created
 * here. `xalign cache clear` removes scratch/ with the entries.
 *
 * @example
 * scratchDir(cacheRoot(), "tune-x-llama-vi-seed0"); // <cache>/scratch/tune-x-llama-vi-seed0-2026-12-07T08-30-00-000Z-1234
 */
export function scratchDir(root: string, name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "") || "run";
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  return join(root, "scratch", `${safe}-${stamp}-${process.pid}`);
}

/** The key of an artifact: kind, configuration and code version. */
export function cacheKey(kind: string, config: unknown): string {
  return sha256(stableStringify({ kind, config, version: VERSION })).slice(0, 16);
}

/**
 * The folder of an artifact in the cache `root`, built by `build(tempDir)` when missing. The
 * build writes into a temp folder that is renamed into place only when it
 * succeeds, so an interrupted build leaves nothing that looks complete. One
 * process builds a key at a time (see the lock above); the others wait.
 */
export async function cached(
  root: string,
  kind: string,
  config: unknown,
  build: (dir: string) => Promise<void>,
  onStatus?: (message: string) => void,
): Promise<string> {
  const key = cacheKey(kind, config);
  const dir = join(root, `${kind}-${key}`);
  if (existsSync(join(dir, MARKER))) {
    onStatus?.(`${kind}: cached (${dir})`);
    return dir;
  }
  await mkdir(root, { recursive: true });
  const lock = `${dir}.lock`;
  let announced = false;
  while (!(await tryLock(lock))) {
    if (existsSync(join(dir, MARKER))) {
      onStatus?.(`${kind}: cached (${dir})`);
      return dir;
    }
    const owner = await lockOwner(lock);
    if (owner && !owner.alive) {
      await breakStaleLock(lock, owner.pid);
      continue;
    }
    if (!announced && owner) {
      onStatus?.(`${kind}: waiting for process ${owner.pid} on ${owner.host}, which is building ${dir} (lock ${lock})`);
      announced = true;
    }
    await sleep(LOCK_POLL_MS);
  }
  try {
    // Another process may have published the entry between our check and our lock.
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
    // Under the lock, a folder without a marker is a leftover of an older, unlocked build: nobody reads it.
    if (!existsSync(join(dir, MARKER))) await rm(dir, { recursive: true, force: true });
    try {
      await rename(tmp, dir);
    } catch (err) {
      // First writer wins: an entry published meanwhile (by a process that ignored the lock) is kept.
      await rm(tmp, { recursive: true, force: true });
      if (!existsSync(join(dir, MARKER))) throw err;
    }
    return dir;
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

const LOCK_POLL_MS = 100;

interface LockOwner {
  pid: number;
  host: string;
  alive: boolean;
}

/** Creates the lock file with O_EXCL; false when another process holds it. */
async function tryLock(lock: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(lock, "wx");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
  } finally {
    await handle.close();
  }
  return true;
}

/** Who holds a lock; undefined when it is gone or still being written. A lock of another host counts as alive. */
async function lockOwner(lock: string): Promise<LockOwner | undefined> {
  let text: string;
  try {
    text = await readFile(lock, "utf8");
  } catch {
    return undefined;
  }
  let meta: { pid?: unknown; host?: unknown };
  try {
    meta = JSON.parse(text) as { pid?: unknown; host?: unknown };
  } catch {
    // Being written right now (or garbage): judge it by its age.
    const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
    return age > 10_000 ? { pid: 0, host: hostname(), alive: false } : undefined;
  }
  const pid = typeof meta.pid === "number" ? meta.pid : 0;
  const host = typeof meta.host === "string" ? meta.host : hostname();
  return { pid, host, alive: host !== hostname() || processAlive(pid) };
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes a lock whose owner is dead. Breakers serialise on `<lock>.break`
 * and re-read the lock under it, so a fresh lock taken by a live process
 * right after the stale one went is not removed by a second breaker.
 */
async function breakStaleLock(lock: string, deadPid: number): Promise<void> {
  const breaker = `${lock}.break`;
  if (!(await tryLock(breaker))) {
    const other = await lockOwner(breaker);
    if (other && !other.alive) await unlink(breaker).catch(() => undefined);
    else await sleep(LOCK_POLL_MS);
    return;
  }
  try {
    const owner = await lockOwner(lock);
    if (owner && !owner.alive && owner.pid === deadPid) await unlink(lock).catch(() => undefined);
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

/** Every complete entry in the cache `root`. */
export async function listCache(root: string): Promise<CacheEntry[]> {
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

/** Removes entries of the cache `root` (all, or those of one kind) and unfinished builds; returns how many folders went. */
export async function clearCache(root: string, kind?: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (kind && !name.startsWith(`${kind}-`)) continue;
    if (/\.lock(\.break)?$/.test(name)) {
      // A lock of a build in progress stays; a stale one goes without counting as an entry.
      const owner = await lockOwner(join(root, name));
      if (!owner?.alive) await unlink(join(root, name)).catch(() => undefined);
      continue;
    }
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
