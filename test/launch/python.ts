/**
 * Finds a Python interpreter that can import the modules a test needs, or
 * says exactly what is missing (the test then skips with that message).
 * $XALIGN_PYTHON is tried first.
 */
import { spawnSync } from "node:child_process";

export interface PythonProbe {
  python: string | undefined;
  /** Why no interpreter fits, e.g. "python3: No module named 'torch'". */
  missing: string;
}

const CANDIDATES = [process.env.XALIGN_PYTHON, "python3", "/usr/bin/python3", "python"].filter((p): p is string => Boolean(p));

export function findPython(modules: readonly string[] = []): PythonProbe {
  const reasons: string[] = [];
  for (const python of [...new Set(CANDIDATES)]) {
    // find_spec locates a package without importing it (importing torch takes seconds).
    const code = `import importlib.util, sys\nmissing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]\nif missing: sys.exit("No module named " + ", ".join(missing))`;
    const r = spawnSync(python, ["-c", code, ...modules], { encoding: "utf8", timeout: 60_000 });
    if (r.error) {
      reasons.push(`${python}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
      continue;
    }
    if (r.status === 0) return { python, missing: "" };
    reasons.push(`${python}: ${r.stderr.trim().split("\n").at(-1)}`);
  }
  return { python: undefined, missing: `no Python with ${modules.join(", ") || "python3"} (${reasons.join("; ")})` };
}
