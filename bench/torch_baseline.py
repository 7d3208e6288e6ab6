"""PyTorch baseline for bench/engine.ts: the same LLaMA training step as its
LlamaModel step, on the torch engine's model (python/xalign_torch.py: embedding,
RMSNorm, rotate-half rotary attention with a causal mask, SwiGLU, untied head,
cross-entropy ignoring label -1; Adam lr 1e-3), the
same shapes (src/model/benchmarks.ts), batch and thread count, on the CPU.
Prints one JSON line.

    OMP_WAIT_POLICY=PASSIVE python3 bench/torch_baseline.py --model tiny --threads 1

Needs Debian's python3-torch (and libopenblas0-pthread for BLAS).
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

# The model is the torch engine's own (python/xalign_torch.py), the one its parity tests check against src/model/llama.ts.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from xalign_torch import Llama, bench_config  # noqa: E402

MODELS = {
    "tiny": dict(vocab=512, dim=128, layers=2, heads=4, hidden=384, seq=64, batch=8),
    "larger": dict(vocab=8192, dim=512, layers=8, heads=8, hidden=1376, seq=256, batch=4),
}


def make_model(c):
    """The torch engine's model (python/xalign_torch.py) in these shapes: untied head, eps 1e-5, HF's
    initialisation (seed 7), attention written out (matmul, causal mask, softmax) as xalign computes it."""
    model = Llama(bench_config(dict(c, eps=1e-5, tie=False)))
    model.init_weights(torch.Generator().manual_seed(7))
    model.use_sdpa = False
    return model


def train_step_ms(name, steps, warmup):
    c = MODELS[name]
    torch.manual_seed(7)
    model = make_model(c)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, c["vocab"], (c["batch"], c["seq"] + 1))
    ids, labels = tokens[:, :-1], tokens[:, 1:].clone()
    labels[:, : c["seq"] // 4] = -1
    times, cpu, losses = [], [], []
    for i in range(warmup + steps):
        start = time.perf_counter()
        cpu_start = time.process_time()
        opt.zero_grad(set_to_none=True)
        total, count = model(ids, labels)
        loss = total / count
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - cpu_start) * 1000)
    ms = statistics.median(times)
    return dict(
        model=name,
        ms_per_step=ms,
        cpu_ms_per_step=statistics.median(cpu),
        tokens_per_s=c["batch"] * c["seq"] / ms * 1000,
        first_loss=losses[0],
        steps=steps,
    )


def matmul_gflops(n, reps=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=[*MODELS, "matmul"], required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model == "matmul":
        out = dict(model="matmul", gflops={n: matmul_gflops(n) for n in (512, 1024, 2048)})
    else:
        out = train_step_ms(args.model, args.steps, args.warmup)
    out.update(torch=torch.__version__, threads=torch.get_num_threads(), peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
