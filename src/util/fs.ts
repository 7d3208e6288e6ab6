import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

let tempCounter = 0;

/** A temp path beside `path`, so the final rename stays on one file system. */
export function tempPathFor(path: string): string {
  tempCounter++;
  return join(dirname(path), `.${path.split(/[\\/]/).pop()}.tmp-${process.pid}-${tempCounter}`);
}

/**
 * Writes a file atomically: the content goes to a temp file beside it, then a
 * rename replaces the target. A crash leaves either the old file or the new one.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Writes JSON (2-space indent, trailing newline) atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** SHA-256 of a string or bytes, hex. */
export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** SHA-256 of a file's bytes, hex, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** JSON with object keys sorted, so equal values hash equally. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/**
 * The installed xalign package: the folder of the package.json at or above
 * this file (the checkout, or node_modules/xalign), wherever the caller is.
 */
export function installationRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
    dir = parent;
  }
}

/**
 * Where xalign keeps its cache (.cache/xalign) and notebook runs (runs/):
 * $XALIGN_HOME when set; else the project folder at or above the working
 * directory (the nearest with a package.json: a notebook in the checkout
 * uses the checkout); else, for a notebook copied outside any project, the
 * installation (so it finds the world and base model already built there).
 * $XALIGN_CACHE and $XALIGN_RUNS still name those two folders directly.
 *
 * @example
 * // XALIGN_HOME=~/xalign-work jupyter notebook  → ~/xalign-work/.cache/xalign, ~/xalign-work/runs
 * xalignHome();
 */
export function xalignHome(from: string = process.cwd()): string {
  const home = process.env.XALIGN_HOME;
  if (home) return resolve(home);
  const project = projectRoot(from);
  return existsSync(join(project, "package.json")) ? project : installationRoot();
}

/**
 * The project folder: the nearest folder at or above the working directory
 * holding a package.json (notebooks run with their own folder as working
 * directory, and their runs and cache belong to the project).
 */
export function projectRoot(from: string = process.cwd()): string {
  let dir = resolve(from);
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return resolve(from);
    dir = parent;
  }
}

/**
 * The git commit of the checkout at `dir` and whether its code has uncommitted changes (tracked files other
 * than data and logs: runs, notebooks/results and notebooks/experiments are left out, since a long experiment
 * appending to its log does not change the code a notebook runs), for run manifests; { commit: "unknown",
 * dirty: false } outside a git checkout or without git.
 */
export function gitState(dir: string = xalignHome()): { commit: string; dirty: boolean } {
  const git = (args: string[]) => execFileSync("git", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const commit = git(["rev-parse", "HEAD"]);
    const code = [".", ":(exclude)runs", ":(exclude)notebooks/results", ":(exclude)notebooks/experiments"];
    return { commit, dirty: git(["status", "--porcelain", "--untracked-files=no", "--", ...code]) !== "" };
  } catch {
    return { commit: "unknown", dirty: false };
  }
}
