"""The torch engine (python/xalign_torch.py, run as the TypeScript side runs it: a
subprocess reading a job, an xalign-batches/1 file and HF safetensors, writing
metrics.jsonl and a checkpoint) beside bench/gpu/torch_gpu.py's plain loop on the
same model and shapes, in one process on one GPU, so their ratio is measured on
the same card in the same run. The issue's bar: the engine at >= 0.95x the plain
loop (it is that loop plus its I/O).

Rows (CUDA): fp32 (TF32 off) and tf32, attention written out, for engine and plain
loop; bf16 (autocast, SDPA, fused AdamW) for the engine beside torch_gpu.py's "hf"
row. On a CPU-only machine: one fp32 row each (numbers labelled CPU).

    python3 bench/gpu/torch_engine.py --out /tmp/torch-engine.json [--budget 150] [--model full|tiny] [--steps 30]

tokens/s: median over the steps after the first `--warmup` (default 5), as the
engine's metrics report them (each step awaits its loss, as the plain loop does).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, HERE)
import torch_gpu  # noqa: E402
import xalign_torch as xt  # noqa: E402

RUNNER = os.path.join(HERE, "..", "..", "python", "xalign_torch.py")


def synthetic_inputs(c, n, work, padded=0):
    """Initial weights (seed 7) and n random batches of shape c (seed 11; the first quarter of each row unscored;
    the last `padded` positions of row 0 padding) written for the runner; returns (config, weights, batches)."""
    cfg = xt.bench_config(c)
    model = xt.Llama(cfg)
    model.init_weights(torch.Generator().manual_seed(7))
    init = os.path.join(work, "init.safetensors")
    xt.write_safetensors(init, model.hf_state_dict(), {"format": "pt"})
    g = torch.Generator().manual_seed(11)
    batches = []
    for _ in range(n):
        tokens = torch.randint(0, c["vocab"], (c["batch"], c["seq"] + 1), generator=g)
        labels = tokens[:, 1:].clone()
        labels[:, : c["seq"] // 4] = -100
        mask = torch.ones(c["batch"], c["seq"], dtype=torch.int32)
        if padded:
            mask[0, -padded:] = 0  # some padding: the masked attention path
            labels[0, -padded:] = -100
        batches.append({"input_ids": tokens[:, :-1], "labels": labels, "attention_mask": mask})
    data = os.path.join(work, "batches.bin")
    xt.write_batches(data, batches)
    return cfg, init, data


def engine_row(c, mode, steps, warmup, lr, wd, work, timeout):
    """Runs the runner on `steps` synthetic batches of shape c; returns its tokens/s and losses."""
    cfg, init, data = synthetic_inputs(c, steps, work)
    out_dir = os.path.join(work, f"out-{mode}")
    job = {
        "format": "xalign-torch-job/1",
        "model_config": xt.config_json(cfg),
        "init_weights": init,
        "batches": data,
        "out_dir": out_dir,
        "device": "auto",
        "precision": "bf16" if mode == "bf16" else "fp32",
        "tf32": mode == "tf32",
        "attention": "sdpa" if mode == "bf16" else "math",
        "checkpoints": True,
        "train": {"total_steps": steps, "warmup_steps": 0, "lr": lr, "schedule": "constant", "grad_accum": 1, "weight_decay": wd,
                  "no_decay": ["norm", "bias", "embed_tokens"], "clip_norm": None, "log_every": 1, "keep_last": 1, "divergence_factor": 0},
    }
    job_file = os.path.join(work, f"job-{mode}.json")
    with open(job_file, "w") as f:
        json.dump(job, f)
    start = time.perf_counter()
    r = subprocess.run([sys.executable, RUNNER, "--job", job_file], capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if r.returncode != 0:
        return dict(model=c["name"], mode=mode, error=r.stderr[-800:])
    rows = [json.loads(line[len(xt.METRICS_PREFIX):]) for line in r.stdout.splitlines() if line.startswith(xt.METRICS_PREFIX)]
    rows = [row for row in rows if row.get("split") == "train"]  # not the {"event": "start"} line
    rates = [row["tokens_per_s"] for row in rows[warmup:]]
    # tokens_per_s counts supervised tokens; report all tokens per second, as torch_gpu.py does.
    scale = c["seq"] / (c["seq"] - c["seq"] // 4)
    return dict(
        model=c["name"],
        mode=mode,
        tokens_per_s=statistics.median(rates) * scale if rates else None,
        ms_per_step=statistics.median([c["batch"] * c["seq"] / (x * scale) * 1000 for x in rates]) if rates else None,
        steps=len(rows),
        losses=[row["loss"] for row in rows][:5],
        wall_s=wall,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=150)
    ap.add_argument("--model", default="full")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    deadline = time.time() + args.budget
    c = next(m for m in torch_gpu.DEFAULT_MODELS if m["name"] == args.model)
    c = dict(c, warmup=args.warmup, steps=args.steps - args.warmup)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    report = dict(torch=torch.__version__, cuda=torch.version.cuda, device=torch.cuda.get_device_name(0) if cuda else "cpu", model=c, rows=[])

    def save():
        with open(args.out + ".tmp", "w") as f:
            json.dump(report, f, indent=1)
        os.replace(args.out + ".tmp", args.out)

    modes = [("fp32", "fp32"), ("tf32", "tf32"), ("bf16", "hf")] if cuda else [("fp32", "fp32")]
    with tempfile.TemporaryDirectory() as work:
        for engine_mode, plain_mode in modes:
            if time.time() > deadline - 10:
                report["rows"].append(dict(mode=engine_mode, error="skipped: budget"))
                continue
            torch_gpu.set_tf32(plain_mode == "tf32")
            try:
                plain = torch_gpu.train(c, device, 1e-3, 0.1, deadline, plain_mode)
            except Exception as e:  # noqa: BLE001
                plain = dict(error=f"{type(e).__name__}: {e}"[:400])
            torch_gpu.set_tf32(False)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            eng = engine_row(c, engine_mode, args.steps, args.warmup, 1e-3, 0.1, work, max(30, deadline - time.time()))
            ratio = eng.get("tokens_per_s") / plain["tokens_per_s"] if eng.get("tokens_per_s") and plain.get("tokens_per_s") else None
            report["rows"].append(dict(mode=engine_mode, plain_mode=plain_mode, engine=eng, plain={k: v for k, v in plain.items() if k != "step_ms"}, ratio=ratio))
            print(f"  torch engine {engine_mode}: {eng.get('tokens_per_s') or float('nan'):.0f} tokens/s; plain loop ({plain_mode}) "
                  f"{plain.get('tokens_per_s') or float('nan'):.0f}; ratio {ratio if ratio else float('nan'):.3f}", file=sys.stderr, flush=True)
            save()
    save()


if __name__ == "__main__":
    main()
