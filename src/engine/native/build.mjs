#!/usr/bin/env node
// Builds xalign's native BLAS addon (src/engine/native) with node-gyp against
// the local Node headers. Run at `npm install`; it never fails the install:
// when it cannot build it says which acceleration is off and how to enable it.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const ENABLE =
  process.platform === "darwin"
    ? "xcode-select --install && npm run build:native"
    : "apt-get install -y build-essential python3 libopenblas-dev && npm run build:native";

function off(why) {
  console.log(`xalign: native BLAS acceleration is off (${why}); the wasm backend runs without it.`);
  console.log(`xalign: to enable it: ${ENABLE}`);
  process.exit(0);
}

if (process.env.XALIGN_NATIVE === "0") off("XALIGN_NATIVE=0");
if (process.platform === "linux") {
  const headers = [
    "/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h",
    "/usr/include/aarch64-linux-gnu/openblas-pthread/cblas.h",
    "/usr/include/openblas/cblas.h",
  ];
  if (!headers.some((h) => existsSync(h))) off("OpenBLAS headers not found: libopenblas-dev is not installed");
} else if (process.platform !== "darwin") {
  off(`no BLAS recipe for ${process.platform}`);
}

// npm sets npm_config_node_gyp to its bundled node-gyp; otherwise look beside this node.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
];
const nodeGyp = candidates.find((p) => p && existsSync(p));
if (!nodeGyp) off("node-gyp not found (it ships with npm)");

// Build against this Node's own headers so nothing is downloaded.
const nodeDir = join(dirname(process.execPath), "..");
const args = [nodeGyp, "rebuild", "--directory", here];
if (existsSync(join(nodeDir, "include", "node", "node_api.h"))) args.push(`--nodedir=${nodeDir}`);
const result = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 300_000 });
if (result.status !== 0) {
  const tail = `${result.stdout ?? ""}\n${result.stderr ?? ""}`.trim().split("\n").slice(-3).join(" | ");
  off(`the build failed: ${tail || result.error?.message || `exit ${result.status}`}`);
}
console.log("xalign: native BLAS acceleration built (src/engine/native/build/Release/xalign_native.node)");
