#!/usr/bin/env bash
# Builds gpu-carry/, everything the GPU machine needs besides the git tree
# (it has no Node.js, no npm registry and no internet):
#   gpu-carry/node.xz                     this machine's node binary, xz-compressed
#   gpu-carry/bench.mjs                   bench/gpu/bench.ts bundled with esbuild (tfjs and all JS deps inside)
#   gpu-carry/node_modules/webgpu/        the webgpu package's index.js + package.json + dist/linux-x64/dawn.node
#                                         (index.js loads dist/<platform>-<arch>/dawn.node next to itself;
#                                         bench.mjs imports "webgpu" as an external, resolved from here)
#   gpu-carry/vulkan/libvulkan1_*.deb     the Vulkan loader (Debian 12), and unpacked under vulkan/root/
#   gpu-carry/egl/{libegl1,libglvnd0}_*.deb  EGL via glvnd (Debian 12), unpacked under egl/root/, for the headless attempts
#   gpu-carry/libstdcxx/libstdc++.so.6    a GLIBCXX_3.4.30 libstdc++ for dawn.node, used only when the device's is older
# Then prints the total size (the run tool carries 64 MiB at most).
#
#   bash bench/gpu/prepare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=gpu-carry
rm -rf "$CARRY"
mkdir -p "$CARRY"

# Not tracked, not copied with the tree: it travels as a carry path. (git-path: .git is a file in a worktree;
# XALIGN_NO_EXCLUDE=1 leaves the shared exclude file alone.)
EXCLUDE=$(git rev-parse --git-path info/exclude)
if [ "${XALIGN_NO_EXCLUDE:-0}" != 1 ] && ! grep -qx 'gpu-carry/' "$EXCLUDE" 2>/dev/null; then
  mkdir -p "$(dirname "$EXCLUDE")"
  echo 'gpu-carry/' >>"$EXCLUDE"
fi

NODE_BIN=$(readlink -f "$(command -v node)")
echo "node: $NODE_BIN ($(node --version))"
xz -T2 -6 -c "$NODE_BIN" >"$CARRY/node.xz"

# tfjs-backend-wasm is in the bundle (src/engine imports it) but never started, so no .wasm file is needed.
# Its Emscripten code and tfjs call require(): the banner gives the ES module a real one.
node_modules/.bin/esbuild bench/gpu/bench.ts --bundle --platform=node --format=esm --target=node20 \
  --external:webgpu --log-level=warning --legal-comments=none \
  --banner:js="import { createRequire as __xalignCreateRequire } from 'node:module'; const require = __xalignCreateRequire(import.meta.url);" \
  --outfile="$CARRY/bench.mjs"

WEBGPU="$CARRY/node_modules/webgpu"
mkdir -p "$WEBGPU/dist/linux-x64"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$WEBGPU/"
cp node_modules/webgpu/dist/linux-x64/dawn.node "$WEBGPU/dist/linux-x64/"

mkdir -p "$CARRY/vulkan"
(cd "$CARRY/vulkan" && apt-get download libvulkan1 >/dev/null)
dpkg -x "$CARRY"/vulkan/libvulkan1_*.deb "$CARRY/vulkan/root"

# EGL through glvnd (libegl1 + libglvnd0, Debian 12) for the headless WebGPU attempts of run-on-device.sh
# (an ICD manifest naming libEGL_nvidia.so.0; Dawn's OpenGL ES backend over EGL), where the image lacks them.
mkdir -p "$CARRY/egl"
(cd "$CARRY/egl" && apt-get download libegl1 libglvnd0 >/dev/null)
for deb in "$CARRY"/egl/*.deb; do dpkg -x "$deb" "$CARRY/egl/root"; done

mkdir -p "$CARRY/libstdcxx"
cp -L "$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')" "$CARRY/libstdcxx/libstdc++.so.6"

# The bundle must run without the project's node_modules: run its adapter stage from a bare folder.
CHECK=$(mktemp -d)
cp -r "$CARRY/bench.mjs" "$CARRY/node_modules" "$CHECK/"
if ! (cd "$CHECK" && timeout 120 node bench.mjs --stage adapter 2>/dev/null | grep -q '^@@GPU_BENCH_RESULT {"ok":true'); then
  echo "prepare: the bundle's adapter stage failed from $CHECK" >&2
  exit 1
fi
rm -rf "$CHECK"
echo "bundle check: adapter stage ran from a folder without node_modules"

du -ah "$CARRY" | sort -h | tail -8
total=$(du -sb "$CARRY" | cut -f1)
echo "gpu-carry total: $total bytes ($((total / 1048576)) MiB)"
if [ "$total" -ge $((60 * 1048576)) ]; then
  echo "prepare: gpu-carry is over 60 MiB" >&2
  exit 1
fi
