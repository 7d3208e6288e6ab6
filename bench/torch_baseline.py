"""PyTorch baseline for bench/engine.ts: the same LLaMA training step as its
LlamaModel step (embedding, RMSNorm, rotate-half rotary attention with a causal
mask, SwiGLU, untied head, cross-entropy ignoring label -1, Adam lr 1e-3), the
same shapes (src/model/benchmarks.ts), batch and thread count, on the CPU.
Prints one JSON line.

    OMP_WAIT_POLICY=PASSIVE python3 bench/torch_baseline.py --model tiny --threads 1

Needs Debian's python3-torch (and libopenblas0-pthread for BLAS).
"""

import argparse
import json
import math
import resource
import statistics
import time

import torch

MODELS = {
    "tiny": dict(vocab=512, dim=128, layers=2, heads=4, hidden=384, seq=64, batch=8),
    "larger": dict(vocab=8192, dim=512, layers=8, heads=8, hidden=1376, seq=256, batch=4),
}


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h = c["dim"], c["hidden"]
        self.heads = c["heads"]
        self.attn_norm = torch.nn.Parameter(torch.ones(d))
        self.wq, self.wk, self.wv, self.wo = (torch.nn.Parameter(torch.randn(d, d) * 0.02) for _ in range(4))
        self.ffn_norm = torch.nn.Parameter(torch.ones(d))
        self.w1 = torch.nn.Parameter(torch.randn(d, h) * 0.02)
        self.w3 = torch.nn.Parameter(torch.randn(d, h) * 0.02)
        self.w2 = torch.nn.Parameter(torch.randn(h, d) * 0.02)

    def forward(self, x, cos, sin, mask):
        b, t, d = x.shape
        hd = d // self.heads
        h = rms_norm(x, self.attn_norm)

        def heads(w):
            return (h @ w).view(b, t, self.heads, hd).transpose(1, 2)

        q, k, v = rotary(heads(self.wq), cos, sin), rotary(heads(self.wk), cos, sin), heads(self.wv)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, dim=-1)
        x = x + (att @ v).transpose(1, 2).reshape(b, t, d) @ self.wo
        h = rms_norm(x, self.ffn_norm)
        gate = h @ self.w1
        return x + (torch.nn.functional.silu(gate) * (h @ self.w3)) @ self.w2


def rms_norm(x, gain, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * gain


def rotary(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Llama(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = torch.nn.Parameter(torch.randn(c["vocab"], c["dim"]) * 0.02)
        self.blocks = torch.nn.ModuleList(Block(c) for _ in range(c["layers"]))
        self.norm = torch.nn.Parameter(torch.ones(c["dim"]))
        self.lm_head = torch.nn.Parameter(torch.randn(c["dim"], c["vocab"]) * 0.02)
        hd, t = c["dim"] // c["heads"], c["seq"]
        freqs = 1.0 / 10000 ** (torch.arange(0, hd // 2).float() * 2 / hd)
        angles = torch.outer(torch.arange(t).float(), freqs)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("cos", angles.cos())
        self.register_buffer("sin", angles.sin())
        self.register_buffer("mask", torch.triu(torch.full((t, t), -1e9), diagonal=1))

    def forward(self, ids, labels):
        x = self.embed[ids]
        for block in self.blocks:
            x = block(x, self.cos, self.sin, self.mask)
        logits = rms_norm(x, self.norm) @ self.lm_head
        return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-1)


def train_step_ms(name, steps, warmup):
    c = MODELS[name]
    torch.manual_seed(7)
    model = Llama(c)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, c["vocab"], (c["batch"], c["seq"] + 1))
    ids, labels = tokens[:, :-1], tokens[:, 1:].clone()
    labels[:, : c["seq"] // 4] = -1
    times, cpu, losses = [], [], []
    for i in range(warmup + steps):
        start = time.perf_counter()
        cpu_start = time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = model(ids, labels)
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
