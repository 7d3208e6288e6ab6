/** `xalign cache list|clear [KIND]`: the shared artifacts of the study notebooks. */
import { cacheRoot, clearCache, listCache } from "../study/cache.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign cache list
       xalign cache clear [KIND]

The notebooks build the synthetic world, the tokenizer and the base model once
and reuse them, keyed by a hash of their configuration and the xalign version.
Cache folder: $XALIGN_CACHE, else <home>/.cache/xalign, where <home> is $XALIGN_HOME,
else the project folder at or above the working directory, else the installation.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand("cache", argv, { help: { type: "boolean", short: "h" } });
  const [action, kind] = positionals;
  if (values.help || (action !== "list" && action !== "clear")) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const root = cacheRoot();
  if (action === "clear") {
    const n = await clearCache(root, kind);
    console.log(`removed ${n} entr${n === 1 ? "y" : "ies"} from ${root}`);
    return 0;
  }
  const entries = await listCache(root);
  if (entries.length === 0) console.log(`the cache is empty (${root})`);
  for (const e of entries) {
    console.log(
      `${e.kind.padEnd(10)} ${e.key}  ${(e.bytes / 2 ** 20).toFixed(1).padStart(7)} MiB  ${e.createdAt}  built in ${e.seconds.toFixed(0)} s  ${JSON.stringify(e.config)}`,
    );
  }
  return 0;
}
