/**
 * Run folders (<output>/<name>/) and what `--force` may delete in them.
 *
 * A run folder this tool creates (or finds empty) gets a marker file,
 * `.xalign-run`. `--force` deletes a stage folder only inside a run folder
 * that carries the marker (or a manifest.json an older xalign wrote), and
 * only when the stage folder lies inside it, so a mistyped `output:` or
 * `name:` can never make `--force` delete someone else's files.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { ConfigError } from "./errors.js";

export const RUN_MARKER = ".xalign-run";

/** A name used as one path component: letters, digits, _ . -, and not "." or "..". */
export const SAFE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9_.-]+$/;
export const SAFE_NAME_RULE = "letters, digits, _ . - only (no path separators, not . or ..)";

/** Creates the run folder; marks it as this tool's when it is new or empty. */
export async function claimRunDir(runDir: string): Promise<void> {
  await mkdir(runDir, { recursive: true });
  if (isRunDir(runDir)) return;
  if ((await readdir(runDir)).length === 0 || legacyManifest(runDir))
    await writeFile(join(runDir, RUN_MARKER), `${JSON.stringify({ created_by: "xalign", at: new Date().toISOString() })}\n`);
}

/** Whether this tool made the run folder. */
export function isRunDir(runDir: string): boolean {
  return existsSync(join(runDir, RUN_MARKER)) || legacyManifest(runDir);
}

function legacyManifest(runDir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")) as { format?: unknown };
    return m.format === "xalign-run/1";
  } catch {
    return false;
  }
}

/** Deletes a stage folder for `--force`, refusing outside a marked run folder. */
export async function removeStageForForce(runDir: string, stageDir: string, file?: string): Promise<void> {
  if (!existsSync(stageDir)) return;
  const rel = relative(resolve(runDir), resolve(stageDir));
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new ConfigError("XA_FORCE_OUTSIDE", `--force would delete ${stageDir}, which is not inside the run folder ${runDir}`, {
      ...(file ? { file } : {}),
      hint: "check the experiment's output: and name:",
    });
  }
  if (!isRunDir(runDir)) {
    throw new ConfigError(
      "XA_FORCE_NOT_OURS",
      `--force refuses to delete ${stageDir}: ${runDir} was not created by xalign (no ${RUN_MARKER} marker)`,
      {
        ...(file ? { file, field: "output" } : {}),
        hint: `point output:/name: at a new folder, or delete ${stageDir} yourself if it really is a stale run`,
      },
    );
  }
  await rm(stageDir, { recursive: true, force: true });
}
