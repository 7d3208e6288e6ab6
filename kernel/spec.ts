/**
 * The kernelspec: how Jupyter starts the xalign kernel (kernel.json and
 * logos), written straight into Jupyter's data path; no Python involved.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeJsonAtomic } from "../src/util/fs.js";

export const KERNEL_NAME = "xalign";
export const DISPLAY_NAME = "TypeScript (xalign)";

const HERE = dirname(fileURLToPath(import.meta.url));
const RUNNING_FROM_SOURCE = import.meta.url.endsWith(".ts");

/** Where `install` writes: Jupyter's per-user data dir, sys-prefix, or a prefix. */
export type InstallTarget = { kind: "user" } | { kind: "sys-prefix" } | { kind: "prefix"; prefix: string };

/** The command that starts the kernel; `{connection_file}` is filled in by Jupyter. */
export function kernelArgv(connectionFile = "{connection_file}"): string[] {
  if (RUNNING_FROM_SOURCE) {
    // Development (tests under tsx): run the TypeScript sources through tsx.
    return [process.execPath, "--import", import.meta.resolve("tsx"), join(HERE, "main.ts"), connectionFile];
  }
  return [process.execPath, join(HERE, "main.js"), connectionFile];
}

/** The kernel.json content. */
export function kernelSpec(): Record<string, unknown> {
  return {
    argv: kernelArgv(),
    display_name: DISPLAY_NAME,
    language: "typescript",
    interrupt_mode: "signal",
    env: {},
    metadata: { debugger: false, xalign: { source: RUNNING_FROM_SOURCE ? "src" : "dist" } },
  };
}

/** Jupyter's per-user data directory (as `jupyter --data-dir` reports it). */
export function userDataDir(): string {
  if (process.env.JUPYTER_DATA_DIR) return resolve(process.env.JUPYTER_DATA_DIR);
  if (process.platform === "darwin") return join(homedir(), "Library", "Jupyter");
  if (process.platform === "win32") return join(process.env.APPDATA ?? homedir(), "jupyter");
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg ? resolve(xdg) : join(homedir(), ".local", "share"), "jupyter");
}

/** The kernels/ directory of an install target. */
export function kernelsDir(target: InstallTarget): string {
  switch (target.kind) {
    case "user":
      return join(userDataDir(), "kernels");
    case "prefix":
      return join(resolve(target.prefix), "share", "jupyter", "kernels");
    case "sys-prefix": {
      // Python's sys.prefix, known without Python: the active virtualenv or conda env, else /usr/local.
      const prefix = process.env.VIRTUAL_ENV ?? process.env.CONDA_PREFIX ?? "/usr/local";
      return join(prefix, "share", "jupyter", "kernels");
    }
  }
}

/** Every kernels/ directory Jupyter searches, most specific first (JUPYTER_PATH, user, system). */
export function searchedKernelsDirs(): string[] {
  const dirs = [
    ...(process.env.JUPYTER_PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((p) => join(resolve(p), "kernels")),
    join(userDataDir(), "kernels"),
  ];
  for (const prefix of [process.env.VIRTUAL_ENV, process.env.CONDA_PREFIX, "/usr/local", "/usr"]) {
    if (prefix) dirs.push(join(prefix, "share", "jupyter", "kernels"));
  }
  return [...new Set(dirs)];
}

/** Writes kernel.json and the logos; returns the kernelspec directory. */
export async function installKernelSpec(target: InstallTarget, name = KERNEL_NAME): Promise<string> {
  const dir = join(kernelsDir(target), name);
  await mkdir(dir, { recursive: true });
  for (const logo of ["logo-32x32.png", "logo-64x64.png", "logo-svg.svg"]) {
    const from = join(logoDir(), logo);
    if (existsSync(from)) await copyFile(from, join(dir, logo));
  }
  await writeJsonAtomic(join(dir, "kernel.json"), kernelSpec());
  return dir;
}

/** The logos live beside the sources in kernel/ (not compiled, so found from dist/ too). */
function logoDir(): string {
  const sourceDir = RUNNING_FROM_SOURCE ? HERE : resolve(HERE, "..", "..", "kernel");
  return sourceDir;
}

export interface InstalledSpec {
  name: string;
  dir: string;
  displayName: string;
  argv: string[];
}

/** Installed kernelspecs in the searched directories (the first of each name wins, as in Jupyter). */
export async function listKernelSpecs(): Promise<InstalledSpec[]> {
  const found = new Map<string, InstalledSpec>();
  for (const kernels of searchedKernelsDirs()) {
    let names: string[];
    try {
      names = await readdir(kernels);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      if (found.has(name)) continue;
      try {
        const spec = JSON.parse(await readFile(join(kernels, name, "kernel.json"), "utf8")) as { display_name?: string; argv?: string[] };
        found.set(name, { name, dir: join(kernels, name), displayName: spec.display_name ?? name, argv: spec.argv ?? [] });
      } catch {
        // not a kernelspec
      }
    }
  }
  return [...found.values()];
}

/** Removes an installed kernelspec; returns the directories removed. */
export async function removeKernelSpec(name = KERNEL_NAME, targets?: InstallTarget[]): Promise<string[]> {
  const dirs = targets ? targets.map((t) => join(kernelsDir(t), name)) : searchedKernelsDirs().map((d) => join(d, name));
  const removed: string[] = [];
  for (const dir of dirs) {
    if (existsSync(join(dir, "kernel.json"))) {
      await rm(dir, { recursive: true, force: true });
      removed.push(dir);
    }
  }
  return removed;
}
