import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Finds package.json walking up from this file (works from src/ via tsx and from dist/src/). */
function readPackageJson(): { version: string } {
  let dir = fileURLToPath(new URL(".", import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      return JSON.parse(readFileSync(`${dir}/package.json`, "utf8")) as { version: string };
    } catch {
      dir = `${dir}/..`;
    }
  }
  return { version: "0.0.0" };
}

/** The xalign version, from package.json. */
export const VERSION: string = readPackageJson().version;
