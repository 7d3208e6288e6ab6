"""PyTorch side of bench/gpu/bench.ts: the LLaMA training step of the torch
engine's model (python/xalign_torch.py, imported: the same model as
src/model/llama.ts, checked by test/train/torch-engine.test.ts) with
torch.optim.AdamW and src/train's decay groups, for the model shapes bench.ts
passes in --spec, on CUDA when there is one, else on the CPU (labelled).

Modes: "fp32" = float32 with TF32 off (torch.backends.cuda.matmul.allow_tf32 =
False, cudnn too), the like-for-like row for xalign's float32 WebGPU shaders;
"tf32" = TF32 tensor cores on (CUDA only); both write attention out (matmul,
mask, softmax), as xalign computes it, not fused SDPA. "hf" (CUDA only; spec
{"hf": false} skips it) = an HF-Trainer-style loop: bf16 autocast, SDPA
attention, fused AdamW. Also float32 matMul
TFLOP/s per mode, and batch-1 greedy decoding with a KV cache (fp32, the last
logits copied to the host each token, as src/model/generate.ts does).

Writes --out after every measurement (a kill loses only the one in progress).

    python3 bench/gpu/torch_gpu.py --out /tmp/torch-gpu.json            # default shapes
    python3 bench/gpu/torch_gpu.py --spec '{"models": [...], "matmul": [1024]}' --out f.json --budget 90
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch

# The model is the torch engine's own (python/xalign_torch.py): one LLaMA for training, parity tests and benchmarks.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from xalign_torch import Llama, bench_config, decay_groups  # noqa: E402

DEFAULT_MODELS = [
    dict(name="tiny", vocab=512, dim=128, layers=2, heads=4, hidden=384, seq=64, batch=8, eps=1e-5, tie=False, warmup=3, steps=10),
    dict(name="full", vocab=8000, dim=512, layers=8, heads=8, hidden=1376, seq=256, batch=32, eps=1e-6, tie=True, warmup=2, steps=6),
    dict(name="larger", vocab=8192, dim=512, layers=8, heads=8, hidden=1376, seq=256, batch=4, eps=1e-5, tie=False, warmup=2, steps=8),
]


def make_model(c, device, sdpa=False):
    """The torch engine's model (python/xalign_torch.py) in the shapes of record c, HF's initialisation
    (seed 7). sdpa=False writes attention out (matmul, mask, softmax) as xalign's TF.js path does."""
    model = Llama(bench_config(c))
    model.init_weights(torch.Generator().manual_seed(7))
    model.use_sdpa = sdpa and hasattr(torch.nn.functional, "scaled_dot_product_attention")
    return model.to(device)


def mean_loss(model, ids, labels):
    total, count = model(ids, labels)
    return total / count.clamp(min=1)


@torch.no_grad()
def greedy(model, prompt, new_tokens):
    """Batch-1 greedy decoding with the runner's KV cache; like xalign's generate(), each step copies the last logits to the host."""
    cache = model.new_cache()
    ids, out = prompt, []
    for _ in range(new_tokens):
        logits = model.logits(ids, cache=cache, last=True).cpu()
        token = int(logits.argmax())
        out.append(token)
        ids = torch.tensor([[token]], device=prompt.device)
    return out


def decode(c, device, prompt_length, new_tokens, deadline):
    torch.manual_seed(7)
    model = make_model(dict(c, seq=max(c["seq"], prompt_length + new_tokens)), device).eval()
    prompt = torch.randint(0, c["vocab"], (1, prompt_length)).to(device)

    def timed(n):
        sync(device)
        start = time.perf_counter()
        greedy(model, prompt, n)
        sync(device)
        return (time.perf_counter() - start) * 1000

    warm = timed(new_tokens)
    prefill, whole = [], []
    for _ in range(3):
        if time.time() + warm * 2 / 1000 + 1 > deadline:
            break
        prefill.append(timed(1))
        whole.append(timed(new_tokens))
    if not whole:
        return dict(model=c["name"], error="no timed run fitted in the budget", warmup_ms=warm)
    ms = statistics.median(whole) - statistics.median(prefill)
    return dict(
        model=c["name"],
        prompt_length=prompt_length,
        new_tokens=new_tokens,
        prefill_ms=statistics.median(prefill),
        total_ms=statistics.median(whole),
        ms_per_token=ms / (new_tokens - 1),
        tokens_per_s=(new_tokens - 1) / ms * 1000,
    )


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train(c, device, lr, weight_decay, deadline, mode="fp32"):
    """Training steps of the model in record c. mode fp32/tf32: float32 (TF32 per set_tf32), attention written
    out, torch.optim.AdamW's default kernel; mode "hf": what an HF-Trainer-style loop does on a GPU (bf16
    autocast, SDPA attention, fused AdamW)."""
    torch.manual_seed(7)
    hf = mode == "hf"
    model = make_model(c, device, sdpa=hf)
    kwargs = dict(lr=lr, betas=(0.9, 0.999), eps=1e-8)
    if hf and device.type == "cuda":
        kwargs["fused"] = True
    opt = torch.optim.AdamW(decay_groups(model, weight_decay), **kwargs)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if hf and device.type == "cuda" else None
    tokens = torch.randint(0, c["vocab"], (c["batch"], c["seq"] + 1))
    ids, labels = tokens[:, :-1].contiguous().to(device), tokens[:, 1:].clone()
    labels[:, : c["seq"] // 4] = -1
    labels = labels.to(device)
    times, warm, losses, note = [], [], [], None
    for i in range(c["warmup"] + c["steps"]):
        last = statistics.median(times) if times else (warm[-1] if warm else 0)
        if i > 0 and time.time() + last / 1000 * 1.5 + 1 > deadline:
            note = f"stopped after {len(warm)} warm-up and {len(times)} measured steps: budget"
            break
        sync(device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if autocast:
            with autocast():
                loss = mean_loss(model, ids, labels)
        else:
            loss = mean_loss(model, ids, labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())  # waits for the step, as xalign awaits its loss
        ms = (time.perf_counter() - start) * 1000
        (warm if i < c["warmup"] else times).append(ms)
    ms = statistics.median(times) if times else None
    out = dict(
        model=c["name"],
        ms_per_step=ms,
        tokens_per_s=c["batch"] * c["seq"] / ms * 1000 if ms else None,
        first_loss=losses[0] if losses else None,
        losses=losses,
        warmup_ms=warm,
        step_ms=times,
        params=sum(p.numel() for p in model.parameters()),
    )
    if note:
        out["note"] = note
    del model, opt
    if device.type == "cuda":
        out["peak_mem_mib"] = torch.cuda.max_memory_allocated() / 2**20
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return out


def matmul_tflops(n, device, deadline):
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(n, n, generator=g).to(device), torch.randn(n, n, generator=g).to(device)
    a @ b
    sync(device)
    start = time.perf_counter()
    a @ b
    sync(device)
    once = time.perf_counter() - start
    reps = max(1, min(200, math.ceil(0.25 / max(once, 1e-5))))
    times = []
    for _ in range(5):
        if time.time() > deadline:
            break
        sync(device)
        start = time.perf_counter()
        for _ in range(reps):
            c = a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    del c
    return 2 * n**3 * reps / statistics.median(times) / 1e12 if times else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", help="JSON: {models: [...], matmul: [n...], lr, weight_decay} (default: the GPU run's shapes)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget", type=float, default=100, help="seconds for everything")
    args = parser.parse_args()
    t0 = time.time()
    deadline = t0 + args.budget
    spec = json.loads(args.spec) if args.spec else {}
    models = spec.get("models", DEFAULT_MODELS)
    sizes = spec.get("matmul", [1024, 2048, 4096])
    spec.setdefault("decode", dict(model="full", prompt=32, new=64))
    lr, wd = spec.get("lr", 1e-3), spec.get("weight_decay", 0.1)

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    report = dict(
        torch=torch.__version__,
        cuda=torch.version.cuda,
        device=f"cuda:0 ({torch.cuda.get_device_name(0)})" if cuda else f"cpu ({torch.get_num_threads()} threads)",
        note=None if cuda else "NO CUDA: torch.cuda.is_available() is False, these are CPU figures",
        train=[],
        matmul=[],
    )
    if cuda:
        report["cudnn"] = torch.backends.cudnn.version()
        report["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))

    def save():
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, args.out)

    save()
    modes = ["fp32", "tf32"] if cuda else ["fp32"]
    train_modes = modes + (["hf"] if cuda and spec.get("hf", True) else [])
    print(f"  torch {torch.__version__} on {report['device']}", file=sys.stderr, flush=True)
    # Like-for-like fp32 rows first (the ratios the run is for), then TF32, then matMul.
    for mode in train_modes:
        set_tf32(mode == "tf32")
        for c in models:
            if time.time() > deadline - 3:
                report["train"].append(dict(model=c["name"], mode=mode, error="skipped: torch budget spent"))
                continue
            try:
                r = train(c, device, lr, wd, deadline, mode)
                r["mode"] = mode
                r["float32_matmul_precision"] = torch.get_float32_matmul_precision()
                report["train"].append(r)
                print(f"  torch {mode} {c['name']}: {r['ms_per_step'] or float('nan'):.2f} ms/step, "
                      f"{r['tokens_per_s'] or float('nan'):.0f} tokens/s, first loss {r['first_loss']:.6f}", file=sys.stderr, flush=True)
            except Exception as e:  # noqa: BLE001 - one failure must not lose the rest
                report["train"].append(dict(model=c["name"], mode=mode, error=f"{type(e).__name__}: {e}"[:500]))
                print(f"  torch {mode} {c['name']}: FAILED {type(e).__name__}: {e}"[:300], file=sys.stderr, flush=True)
            save()
    for mode in modes:
        set_tf32(mode == "tf32")
        row = dict(mode=mode, tflops={}, float32_matmul_precision=torch.get_float32_matmul_precision())
        for n in sizes:
            if time.time() > deadline - 2:
                break
            try:
                row["tflops"][str(n)] = matmul_tflops(n, device, deadline)
            except Exception as e:  # noqa: BLE001
                row.setdefault("errors", {})[str(n)] = f"{type(e).__name__}: {e}"[:300]
        report["matmul"].append(row)
        print(f"  torch matmul {mode}: " + ", ".join(f"{n}: {v:.2f}" for n, v in row["tflops"].items() if v) + " TFLOP/s", file=sys.stderr, flush=True)
        save()
    set_tf32(False)
    dec = spec.get("decode")
    if dec and time.time() < deadline - 3:
        c = next((m for m in models if m["name"] == dec["model"]), None)
        try:
            report["decode"] = decode(c, device, dec["prompt"], dec["new"], deadline) if c else dict(error=f"no model {dec['model']}")
            d = report["decode"]
            print(f"  torch decode {dec['model']}: {d.get('tokens_per_s') or float('nan'):.1f} tokens/s", file=sys.stderr, flush=True)
        except Exception as e:  # noqa: BLE001
            report["decode"] = dict(model=dec["model"], error=f"{type(e).__name__}: {e}"[:500])
        save()
    report["seconds"] = time.time() - t0
    save()


if __name__ == "__main__":
    main()
