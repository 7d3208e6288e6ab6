"""The runner's FSDP path (python/xalign_torch.py, parallel: fsdp) beside its DDP path on one machine, as a
device check: the same tiny job (TypeScript-style initial weights and batches, 8 steps, checkpoints every
4) run as one process with parallel ddp and with parallel fsdp (one process: FSDP over a group of one; the
same code path as 8 GPUs but without the sharding arithmetic), in fp32 and bf16. Checks, per mode:

  - fsdp fp32 losses = ddp fp32 losses (1e-4), and bf16 within 5e-2 of fp32;
  - checkpoint-8/model.safetensors gathered by FSDP = DDP's (fp32: 1e-4), same tensor names;
  - --resume from checkpoint-4 ends on the same losses (the moments restored through FSDP's
    optim_state_dict_to_load).

Where FSDP cannot run (torch < 2.0) its rows say why and only the DDP rows run. Writes --out (JSON) and
prints one line per check; exit 0 when every check that ran passed.

    python3 bench/gpu/fsdp_check.py --out /tmp/fsdp-check.json [--model tiny|full] [--steps 8]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
import xalign_torch as xt  # noqa: E402

sys.path.insert(0, HERE)
import torch_engine  # noqa: E402

RUNNER = os.path.join(HERE, "..", "..", "python", "xalign_torch.py")
SHAPES = {
    "tiny": dict(vocab=512, dim=128, layers=2, heads=4, hidden=384, seq=64, batch=8, eps=1e-5, tie=False),
    "full": dict(vocab=8000, dim=512, layers=8, heads=8, hidden=1376, seq=256, batch=16, eps=1e-6, tie=True),
}


def write_inputs(c, steps, work):
    cfg, init, data = torch_engine.synthetic_inputs(c, steps * 2, work, padded=5)
    return xt.config_json(cfg), init, data


def run_job(job, work, name, resume=False, timeout=600):
    path = os.path.join(work, f"{name}.json")
    with open(path, "w") as f:
        json.dump(job, f)
    start = time.perf_counter()
    r = subprocess.run([sys.executable, RUNNER, "--job", path] + (["--resume"] if resume else []), capture_output=True, text=True, timeout=timeout)
    rows = [json.loads(line[len(xt.METRICS_PREFIX) :]) for line in r.stdout.splitlines() if line.startswith(xt.METRICS_PREFIX)]
    return {
        "code": r.returncode,
        "losses": [row["loss"] for row in rows if row.get("split") == "train"],
        "seconds": time.perf_counter() - start,
        "stderr": r.stderr[-1500:] if r.returncode else "",
    }


def max_weight_diff(a_dir, b_dir):
    a, _ = xt.read_safetensors(os.path.join(a_dir, xt.WEIGHTS_FILE))
    b, _ = xt.read_safetensors(os.path.join(b_dir, xt.WEIGHTS_FILE))
    if sorted(a) != sorted(b):
        return None, sorted(set(a) ^ set(b))[:5]
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a), []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="tiny", choices=sorted(SHAPES))
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    report = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "fsdp_unavailable": xt.fsdp_unavailable(),
        "model": args.model,
        "runs": {},
        "checks": [],
    }
    ok = True

    def check(name, passed, detail):
        nonlocal ok
        ok = ok and passed
        report["checks"].append({"check": name, "pass": passed, "detail": detail})
        print(f"  fsdp-check {'PASS' if passed else 'FAIL'} {name}: {detail}", flush=True)

    c = SHAPES[args.model]
    steps = args.steps
    with tempfile.TemporaryDirectory() as work:
        cfg, init, data = write_inputs(c, steps, work)
        precisions = ["fp32", "bf16"] if cuda else ["fp32"]
        for precision in precisions:
            for parallel in ("ddp", "fsdp"):
                name = f"{parallel}-{precision}"
                if parallel == "fsdp" and xt.fsdp_unavailable():
                    report["runs"][name] = {"skipped": xt.fsdp_unavailable()}
                    print(f"  fsdp-check SKIP {name}: {xt.fsdp_unavailable()}", flush=True)
                    continue
                out_dir = os.path.join(work, name)
                job = {
                    "format": "xalign-torch-job/1",
                    "model_config": cfg,
                    "init_weights": init,
                    "batches": data,
                    "out_dir": out_dir,
                    "device": "auto",
                    "precision": precision,
                    "tf32": False,
                    "parallel": parallel,
                    "checkpoints": True,
                    "train": {"total_steps": steps, "warmup_steps": 2, "lr": 1e-3, "schedule": "cosine", "grad_accum": 2, "weight_decay": 0.1,
                              "no_decay": ["norm", "bias", "embed_tokens"], "clip_norm": 1.0, "log_every": 1, "save_every": steps // 2,
                              "keep_last": 3, "divergence_factor": 0},
                }
                row = run_job(job, work, name)
                report["runs"][name] = row
                if row["code"] != 0:
                    check(f"{name} runs", False, row["stderr"][-600:])
                    continue
                check(f"{name} runs", len(row["losses"]) == steps, f"{len(row['losses'])} steps in {row['seconds']:.1f} s, losses {row['losses'][0]:.4f} -> {row['losses'][-1]:.4f}")
                # Resume from the middle checkpoint: the later losses again.
                shutil.rmtree(os.path.join(out_dir, f"checkpoint-{steps}"))
                again = run_job(job, work, name + "-resume", resume=True)
                tail = row["losses"][steps // 2 :]
                diff = max((abs(a - b) for a, b in zip(again["losses"], tail)), default=float("nan"))
                check(f"{name} resumes", again["code"] == 0 and len(again["losses"]) == len(tail) and diff < 1e-4, f"max |loss diff| {diff:.2e} over {len(again['losses'])} steps")
            ddp, fsdp = report["runs"].get(f"ddp-{precision}"), report["runs"].get(f"fsdp-{precision}")
            if ddp and fsdp and ddp.get("losses") and fsdp.get("losses"):
                diff = max(abs(a - b) for a, b in zip(ddp["losses"], fsdp["losses"]))
                tol = 1e-4 if precision == "fp32" else 5e-2
                check(f"fsdp = ddp ({precision})", diff < tol, f"max |loss diff| {diff:.2e} (tolerance {tol})")
                wdiff, odd = max_weight_diff(os.path.join(work, f"ddp-{precision}", f"checkpoint-{steps}"), os.path.join(work, f"fsdp-{precision}", f"checkpoint-{steps}"))
                if wdiff is None:
                    check(f"fsdp checkpoint = ddp checkpoint ({precision})", False, f"tensor names differ: {odd}")
                else:
                    check(f"fsdp checkpoint = ddp checkpoint ({precision})", wdiff < (1e-4 if precision == "fp32" else 5e-2), f"max |weight diff| {wdiff:.2e}")
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
