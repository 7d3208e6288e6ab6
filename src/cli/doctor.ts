/** `xalign doctor`: what this machine offers xalign, and why. */
import { createRequire } from "node:module";
import { availableParallelism, cpus, totalmem } from "node:os";
import { type BackendName, initEngine, probeBackends, tf } from "../engine/index.js";
import { torchEngineReport } from "../train/torch-engine.js";
import { VERSION } from "../version.js";
import { parseCommand } from "./args.js";

const require = createRequire(import.meta.url);

function packageVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return "not installed";
  }
}

const HELP = `Usage: xalign doctor [--backend auto|tensorflow|webgpu|wasm|cpu] [--json]

Prints Node, TF.js and tokenizer versions, the backend xalign would choose
and why, the device, threads and memory, and for each backend whether it is
available and why not; then the torch engine (python/xalign_torch.py): the
interpreter that can import torch, its version, CUDA devices with their memory,
and bf16 support. Exits non-zero when a forced backend cannot start.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand("doctor", argv, {
    backend: { type: "string" },
    json: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const probes = await probeBackends();
  const engine = await initEngine(values.backend ? { backend: values.backend as BackendName } : {});
  const report = {
    xalign: VERSION,
    node: process.version,
    tfjs: tf.version.tfjs,
    tokenizers: packageVersion("tokenizers"),
    tslab: packageVersion("tslab"),
    backend: engine.backend,
    reason: engine.reason,
    device: engine.device,
    cpu: cpus()[0]?.model ?? "unknown",
    threads: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    backends: probes.map((p) => ({ name: p.name, available: p.available, reason: p.reason, device: p.device })),
    torchEngine: torchEngineReport(),
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
    return 0;
  }
  const rows: [string, string][] = [
    ["xalign", report.xalign],
    ["node", report.node],
    ["tfjs", report.tfjs],
    ["tokenizers", report.tokenizers],
    ["tslab", report.tslab],
    ["cpu", `${report.cpu} (${report.threads} threads)`],
    ["memory", `${report.memoryGiB} GiB`],
    ["backend", `${report.backend} on ${report.device}`],
    ["why", report.reason],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(11)} ${v}`);
  console.log("\nbackends:");
  for (const p of report.backends) console.log(`  ${p.available ? "yes" : "no "} ${p.name.padEnd(10)} ${p.reason}`);
  const t = report.torchEngine;
  console.log("\ntorch engine (engine: torch, python/xalign_torch.py):");
  if (!t.available) {
    console.log(`  no  ${t.reason}`);
    return 0;
  }
  console.log(`  yes ${t.python} (Python ${t.python_version}), torch ${t.torch}`);
  console.log(`      ${t.reason}; bf16 ${t.bf16 ? "yes" : "no"}; full mode would ${t.default_for_full_mode ? "use it" : "keep TF.js"}`);
  for (const [i, d] of (t.devices ?? []).entries())
    console.log(`      cuda:${i} ${d.name}, ${d.memory_gib} GiB, compute capability ${d.capability}`);
  return 0;
}
