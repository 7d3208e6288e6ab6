/** `xalign kernel install|list|remove`: the kernelspec, written without Python. */
import { type InstallTarget, installKernelSpec, KERNEL_NAME, listKernelSpecs, removeKernelSpec } from "../../kernel/spec.js";
import { ConfigError } from "../util/errors.js";
import { parseCommand } from "./args.js";

const HELP = `Usage: xalign kernel install [--user | --sys-prefix | --prefix DIR] [--name NAME]
       xalign kernel list [--json]
       xalign kernel remove [--user | --sys-prefix | --prefix DIR] [--name NAME]

install  writes kernel.json and logos into Jupyter's data path (default --user:
         $JUPYTER_DATA_DIR or ~/.local/share/jupyter/kernels/xalign); the kernel
         runs with this Node and this checkout's dist/ build.
list     shows the kernelspecs Jupyter would find (JUPYTER_PATH, user, system).
remove   deletes the kernelspec (without a location flag: wherever it is found).`;

export async function run(argv: string[]): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined || action === "--help" || action === "-h") {
    console.log(HELP);
    return action === undefined ? 2 : 0;
  }
  const { values } = parseCommand(
    "kernel",
    rest,
    {
      user: { type: "boolean" },
      "sys-prefix": { type: "boolean" },
      prefix: { type: "string" },
      name: { type: "string" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    false,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const name = typeof values.name === "string" ? values.name : KERNEL_NAME;
  const flags = [values.user === true, values["sys-prefix"] === true, typeof values.prefix === "string"].filter(Boolean).length;
  if (flags > 1)
    throw new ConfigError("XA_CLI_ARGS", "give at most one of --user, --sys-prefix, --prefix", { hint: "run `xalign kernel --help`" });
  const target: InstallTarget | undefined =
    typeof values.prefix === "string"
      ? { kind: "prefix", prefix: values.prefix }
      : values["sys-prefix"]
        ? { kind: "sys-prefix" }
        : values.user
          ? { kind: "user" }
          : undefined;
  switch (action) {
    case "install": {
      const dir = await installKernelSpec(target ?? { kind: "user" }, name);
      console.log(`installed kernelspec "${name}" in ${dir}`);
      return 0;
    }
    case "list": {
      const specs = await listKernelSpecs();
      if (values.json) console.log(JSON.stringify(specs, null, 2));
      else if (specs.length === 0) console.log("no kernelspecs found");
      else {
        const width = Math.max(...specs.map((s) => s.name.length));
        for (const s of specs) console.log(`  ${s.name.padEnd(width)}  ${s.dir}  (${s.displayName})`);
      }
      return 0;
    }
    case "remove": {
      const removed = await removeKernelSpec(name, target ? [target] : undefined);
      if (removed.length === 0) {
        console.error(`no kernelspec "${name}" found`);
        return 1;
      }
      for (const dir of removed) console.log(`removed ${dir}`);
      return 0;
    }
    default:
      throw new ConfigError("XA_CLI_ARGS", `unknown action "${action}"`, { hint: "use install, list or remove" });
  }
}
