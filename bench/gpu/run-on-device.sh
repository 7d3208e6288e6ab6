#!/usr/bin/env bash
# Runs the GPU benchmark on the lent machine, from the repository root, with
# gpu-carry/ (bench/gpu/prepare.sh) carried next to the tree. Needs no Node.js
# there: it unpacks the carried one. Writes to $OUT:
#   env.txt          machine, driver, Vulkan loader/ICD, python/torch, node, Dawn adapter
#   gpu-bench.json   every stage's result, written after each stage (bench/gpu/bench.ts)
#   gpu-bench.md     the tables; torch-gpu.json (PyTorch side); adapter.json; run.log
#
#   webgpu-attempts.txt, vk-loader-debug.log, attempt-*.log   (--issue20) the headless WebGPU attempts
#   torch-engine.json  (--issue20) the torch engine (python/xalign_torch.py) vs the plain PyTorch loop, same card
#   fsdp-check.json, python-tests.log  (--issue20) the runner's FSDP path beside its DDP path (bench/gpu/fsdp_check.py:
#                    losses, gathered checkpoint, resume) and python/tests (FSDP on one GPU); they need no gpu-carry:
#                    PY=python3; $PY bench/gpu/fsdp_check.py --out $OUT/fsdp-check.json
#
#   OUT=/tmp/gpuout bash bench/gpu/run-on-device.sh [--smoke] [--budget SECONDS] [--issue20]
# --budget is the benchmark's own time box (default 320 s); setup adds ~10 s.
# XALIGN_CARRIED_VULKAN=1 uses the carried Vulkan loader even where the system has one (for testing).
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
CARRY=$ROOT/gpu-carry
OUT=${OUT:-$ROOT/gpu-bench-out}
mkdir -p "$OUT"
SMOKE=""
BUDGET=320
ISSUE20=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=--smoke; [ "$BUDGET" = 320 ] && BUDGET=900 ;;
    --budget) BUDGET=$2; shift ;;
    # Issue 20's run: the WebGPU attempts (VK_LOADER_DEBUG, EGL ICD, OpenGL ES over EGL), the torch engine
    # beside the plain PyTorch loop and the FSDP check first, then the benchmark with what is left (under 600 s a call).
    --issue20) ISSUE20=1; [ "$BUDGET" = 320 ] && BUDGET=170 ;;
    *) echo "run-on-device: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
ENVF=$OUT/env.txt
say() { echo "$*" | tee -a "$ENVF"; }
sec() { printf '\n== %s\n' "$*" >>"$ENVF"; }
: >"$ENVF"
say "xalign GPU bench setup $(date -u +%FT%TZ) on $(uname -n), $(uname -r); $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME"); $(ldd --version 2>&1 | head -1)"
[ -d "$CARRY" ] || { say "FATAL: $CARRY is missing (carry gpu-carry, built by bench/gpu/prepare.sh)"; exit 1; }

sec "nvidia-smi"
{ timeout 20 nvidia-smi 2>&1; timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv 2>&1; } >>"$ENVF" || true
sec "container env"
env | grep -E '^(NVIDIA_|CUDA_|LD_LIBRARY_PATH|VK_|PATH=)' | sort >>"$ENVF"
echo "id: $(id)  nproc: $(nproc)" >>"$ENVF"

# ---- node -----------------------------------------------------------------------------------------
NODE=/tmp/xalign-node
if command -v xz >/dev/null; then
  xz -dc "$CARRY/node.xz" >"$NODE"
else
  python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],'wb'))" "$CARRY/node.xz" "$NODE"
fi
chmod +x "$NODE"
if ! "$NODE" -e 1 2>/dev/null; then
  # /tmp mounted noexec? Try the repository folder instead.
  cp "$NODE" "$ROOT/.xalign-node" && chmod +x "$ROOT/.xalign-node" && "$ROOT/.xalign-node" -e 1 2>/dev/null && NODE=$ROOT/.xalign-node
fi
say "node: carried $NODE $("$NODE" --version 2>&1 | head -1); on PATH: $(command -v node || echo none)"

# ---- python with torch ------------------------------------------------------------------------------
PY=""
for p in ${XALIGN_PYTHON:-} python3 python /opt/conda/bin/python /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import torch' 2>/dev/null; then PY=$(command -v "$p"); break; fi
done
if [ -n "$PY" ]; then
  export XALIGN_PYTHON=$PY
  say "python: $PY $(timeout 60 "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>&1 | tail -1)"
else
  say "python: none with torch (tried python3, python, /opt/conda/bin/python, /usr/bin/python3)"
fi

# ---- Vulkan: loader, NVIDIA ICD and its driver libraries ----------------------------------------------
sec "vulkan"
if [ "${XALIGN_CARRIED_VULKAN:-0}" != 1 ] && ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  say "vulkan loader: system ($(ldconfig -p | grep 'libvulkan\.so\.1 ' | head -1 | awk '{print $NF}'))"
else
  # Carried Debian 12 libvulkan1, used in place (dlopen'ed by Dawn) rather than unpacked into /.
  export LD_LIBRARY_PATH="$CARRY/vulkan/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  say "vulkan loader: using the carried $(ls "$CARRY"/vulkan/*.deb 2>/dev/null | xargs -n1 basename) ($([ "${XALIGN_CARRIED_VULKAN:-0}" = 1 ] && echo "forced by XALIGN_CARRIED_VULKAN=1" || echo "none on the system"))"
fi
ICD=""
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json \
  /usr/local/share/vulkan/icd.d/nvidia_icd*.json /usr/local/nvidia/share/vulkan/icd.d/*.json; do
  if [ -f "$f" ]; then ICD=$f; break; fi
done
# The driver's Vulkan library: where is libGLX_nvidia.so.0 (what NVIDIA's ICD manifest names)?
GLX=""
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
  if [ -e "$d/libGLX_nvidia.so.0" ]; then GLX=$d/libGLX_nvidia.so.0; break; fi
done
[ -z "$GLX" ] && GLX=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 / {print $NF; exit}')
if [ -n "$GLX" ]; then
  GLXDIR=$(dirname "$GLX")
  case ":${LD_LIBRARY_PATH:-}:" in *":$GLXDIR:"*) ;; *) export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$GLXDIR" ;; esac
fi
if [ -z "$ICD" ] && [ -n "$GLX" ]; then
  # Driver libraries mounted without a manifest: write the one the driver package ships.
  ICD=/tmp/xalign_nvidia_icd.json
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3"}}\n' "$GLX" >"$ICD"
  say "vulkan ICD: no NVIDIA manifest found; wrote $ICD for $GLX"
fi
if [ -n "$ICD" ]; then
  export VK_DRIVER_FILES=$ICD VK_ICD_FILENAMES=$ICD
  say "vulkan ICD: $ICD -> $(tr -d '\n ' <"$ICD" | head -c 300)"
else
  say "vulkan ICD: NONE (no nvidia_icd*.json in /usr/local/nvidia/share, /usr/share, /etc/vulkan, /usr/local/share; no libGLX_nvidia.so.0) - Dawn will find no NVIDIA adapter"
fi
say "nvidia driver libs: GLX=${GLX:-missing}; $(ls /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu 2>/dev/null | grep -E '^lib(nvidia-(glvkspirv|glcore|gpucomp|tls)|EGL_nvidia|GLX_nvidia)\.so' | tr '\n' ' ')"
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null >>"$ENVF"
if command -v vulkaninfo >/dev/null; then timeout 20 vulkaninfo --summary >>"$ENVF" 2>&1; fi

# ---- can node load dawn.node? (GLIBC >= 2.34, GLIBCXX_3.4.30) ------------------------------------------
DAWN=$CARRY/node_modules/webgpu/dist/linux-x64/dawn.node
probe() { "$NODE" -e "require(process.argv[1])" "$DAWN" 2>&1 | grep -v '^\s*at ' | head -3; }
ERR=$(probe)
if [ -n "$ERR" ] && echo "$ERR" | grep -q GLIBCXX; then
  export LD_LIBRARY_PATH="$CARRY/libstdcxx:$LD_LIBRARY_PATH"
  say "dawn.node: system libstdc++ too old ($ERR); using the carried one"
  ERR=$(probe)
fi
say "dawn.node loads: ${ERR:-yes}"
say "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
say "setup done after $SECONDS s"

# ---- issue 20: headless WebGPU attempts, then the torch engine ---------------------------------------------
# Each attempt runs the bundle's adapter stage (what Dawn reports) under its own environment, 30 s at most; the
# first that finds an adapter is kept for the benchmark below.
attempt() { # name, then VAR=value words
  local name=$1
  shift
  local log=$OUT/attempt-$name.log
  env "$@" timeout -k 5 30 "$NODE" "$CARRY/bench.mjs" --stage adapter >"$log" 2>&1
  if grep -q '"high-performance":{' "$log"; then
    say "webgpu attempt $name: ADAPTER FOUND ($(grep -o '"description":"[^"]*"' "$log" | head -1))"
    return 0
  fi
  say "webgpu attempt $name: no adapter ($(grep -v '^@@' "$log" | grep -iE 'error|could not|couldn|fail|warning' | head -2 | tr '\n' ' ' | cut -c1-300))"
  return 1
}
if [ "$ISSUE20" = 1 ]; then
  sec "webgpu attempts (issue 20)"
  A_START=$SECONDS
  EGL_LIB=""
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64; do
    if [ -e "$d/libEGL_nvidia.so.0" ]; then EGL_LIB=$d/libEGL_nvidia.so.0; break; fi
  done
  say "libEGL_nvidia.so.0: ${EGL_LIB:-missing}; system libEGL.so.1: $(ldconfig -p 2>/dev/null | awk '/libEGL\.so\.1 / {print $NF; exit}')"
  # glvnd's libEGL.so.1 when the image has none (carried, Debian 12), and a vendor file naming NVIDIA's EGL.
  if ! ldconfig -p 2>/dev/null | grep -q 'libEGL\.so\.1 ' && [ -d "$CARRY/egl/root" ]; then
    export LD_LIBRARY_PATH="$CARRY/egl/root/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH"
    say "EGL: using the carried libegl1/libglvnd0"
  fi
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s"}}\n' "${EGL_LIB:-libEGL_nvidia.so.0}" >/tmp/xalign_egl_vendor.json
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3"}}\n' "${EGL_LIB:-libEGL_nvidia.so.0}" >/tmp/xalign_nvidia_egl_icd.json
  WEBGPU_ENV=()
  # 1. The original route, with the loader explaining itself.
  if attempt vk-glx-debug VK_LOADER_DEBUG=all; then WEBGPU_ENV=(); fi
  cp "$OUT/attempt-vk-glx-debug.log" "$OUT/vk-loader-debug.log" 2>/dev/null
  # 2. Vulkan through an ICD manifest naming libEGL_nvidia.so.0 (no X needed).
  if ! grep -q '"high-performance":{' "$OUT/attempt-vk-glx-debug.log" 2>/dev/null; then
    if attempt vk-egl-icd VK_LOADER_DEBUG=error,warn VK_DRIVER_FILES=/tmp/xalign_nvidia_egl_icd.json VK_ICD_FILENAMES=/tmp/xalign_nvidia_egl_icd.json; then
      WEBGPU_ENV=(VK_DRIVER_FILES=/tmp/xalign_nvidia_egl_icd.json VK_ICD_FILENAMES=/tmp/xalign_nvidia_egl_icd.json)
    # 3. Dawn's OpenGL ES backend over EGL (surfaceless), compatibility feature level.
    elif attempt gles-egl XALIGN_DAWN_FLAGS=backend=opengles XALIGN_WEBGPU_FEATURE_LEVEL=compatibility EGL_PLATFORM=surfaceless \
      __EGL_VENDOR_LIBRARY_FILENAMES=/tmp/xalign_egl_vendor.json; then
      WEBGPU_ENV=(XALIGN_DAWN_FLAGS=backend=opengles XALIGN_WEBGPU_FEATURE_LEVEL=compatibility EGL_PLATFORM=surfaceless __EGL_VENDOR_LIBRARY_FILENAMES=/tmp/xalign_egl_vendor.json)
    fi
  fi
  for v in "${WEBGPU_ENV[@]}"; do export "${v?}"; done
  say "webgpu attempts took $((SECONDS - A_START)) s; kept: ${WEBGPU_ENV[*]:-the default route}"
  grep '^webgpu attempt' "$ENVF" >"$OUT/webgpu-attempts.txt"
  if [ -n "$PY" ]; then
    T_START=$SECONDS
    if [ -n "$SMOKE" ]; then
      timeout -k 5 120 "$PY" bench/gpu/torch_engine.py --out "$OUT/torch-engine.json" --model tiny --steps 10 --warmup 3 --budget 90 2>&1 | tee "$OUT/torch-engine.log"
    else
      timeout -k 5 190 "$PY" bench/gpu/torch_engine.py --out "$OUT/torch-engine.json" --budget 170 2>&1 | tee "$OUT/torch-engine.log"
    fi
    say "torch engine stage took $((SECONDS - T_START)) s"
    F_START=$SECONDS
    timeout -k 5 150 "$PY" bench/gpu/fsdp_check.py --out "$OUT/fsdp-check.json" 2>&1 | tee "$OUT/fsdp-check.log"
    timeout -k 5 90 "$PY" -m unittest discover -s python/tests -v >"$OUT/python-tests.log" 2>&1
    say "fsdp check and python/tests took $((SECONDS - F_START)) s: $(grep -c PASS "$OUT/fsdp-check.log") passed, $(grep -c FAIL "$OUT/fsdp-check.log") failed; python/tests: $(tail -1 "$OUT/python-tests.log")"
  fi
fi

# ---- the benchmark ---------------------------------------------------------------------------------------
if "$NODE" -e 1 2>/dev/null; then
  # A stage that fails (no adapter, lost device) is recorded and the others still run.
  timeout -k 10 $((BUDGET + 45)) "$NODE" "$CARRY/bench.mjs" --out "$OUT" --budget "$BUDGET" $SMOKE \
    --torch-script "$ROOT/bench/gpu/torch_gpu.py" 2>&1 | grep --line-buffered -v 'artificially reduced' | tee "$OUT/run.log"
  RC=${PIPESTATUS[0]}
  if [ ! -s "$OUT/gpu-bench.md" ]; then
    echo "bench exited $RC before its report; the report from the JSON so far:"
    "$NODE" "$CARRY/bench.mjs" --report "$OUT/gpu-bench.json" | tee "$OUT/gpu-bench.md"
  fi
  echo "bench exit status $RC"
else
  say "node does not run here: PyTorch only"
  [ -n "$PY" ] && timeout 150 "$PY" bench/gpu/torch_gpu.py --out "$OUT/torch-gpu.json" --budget 120
  printf '{"format":"xalign-gpu-bench/1","error":"node could not run","torch_file":"torch-gpu.json"}\n' >"$OUT/gpu-bench.json"
  cat "$OUT/torch-gpu.json" 2>/dev/null | head -c 6000
fi
sec "Dawn adapter (bench adapter stage)"
cat "$OUT/adapter.json" >>"$ENVF" 2>/dev/null || echo "no adapter.json" >>"$ENVF"
echo "total $SECONDS s; files: $(ls "$OUT" | tr '\n' ' ')"
