"""xalign's torch engine: trains the LLaMA an xalign job describes on PyTorch alone
(1.13 to current, CPU or CUDA), on batches TypeScript encoded once. The one Python
trainer: `engine: torch` runs it per stage, `xalign launch` runs it under torchrun.

    python3 python/xalign_torch.py --job runs/x/torch/pretrain/job.json
    torchrun --nproc_per_node 8 python/xalign_torch.py --job job.json      # DDP or FSDP (the job's `parallel`)
    python3 python/xalign_torch.py --job job.json --resume                 # from the newest checkpoint-N
    python3 python/xalign_torch.py --torchrun --standalone --nproc_per_node=2 python/xalign_torch.py --job job.json

The job (format xalign-torch-job/1) is written by src/train/torch-engine.ts or src/launch:
  model_config   the HF config.json object (canon_width included); or
  init_from      a Hugging Face folder to start from (its config.json and weights)
  init_weights   HF-layout safetensors of the initial weights (TypeScript's initialisation)
  batches        the micro-batches in the order the TF.js trainer consumes them (xalign-batches/1)
  validation     optional validation batches (same format)
  out_dir        checkpoint-N/ and metrics.jsonl go here (the TF.js trainer's layout)
  final_dir      the weights at the end as an HF folder (+ tokenizer_dir's files; not when
                 interrupted if final_on_interrupt is false)
  train          the resolved schedule and optimiser fields of src/train/trainer.ts
  device, precision ("fp32" | "bf16"), tf32, gradient_checkpointing
  parallel       "ddp" (default) or "fsdp" (torch >= 2.0; fsdp.sharding full_shard | shard_grad_op)

What matches src/train (and so the TF.js trainer, step for step):
  - the model of src/model/llama.ts: HF weight names, rotate-half RoPE with HF's float32
    tables, grouped-query heads, SwiGLU, tied or untied head, the canon convolution
    (`canon_width`), isolated-document packing (`segments`: attention and canon inside a
    document, positions restarting per document), padding read as zeros;
  - the loss: mean cross-entropy over labels >= 0 of each micro-batch; micro-batch
    gradients summed and scaled by 1/grad_accum; the global norm of that gradient clipped
    as torch.nn.utils.clip_grad_norm_ does (max / (norm + 1e-6)); AdamW (decoupled decay,
    no decay for names matching `no_decay`); HF's warmup + constant/linear/cosine schedule
    with the 0-based step; checkpoints at the same steps, holding the same files
    (model.safetensors, optimizer.safetensors, trainer_state.json), so either engine can
    resume the other's;
  - metrics.jsonl rows {"split":"train","step",...} as the trainer writes them, also printed
    as `XALIGN_METRICS {json}` lines for the TypeScript progress display.

Under torchrun each global micro-batch's rows are split evenly over the ranks and every
rank's loss is weighted by the supervised tokens of the whole micro-batch, so N processes
give the losses of one process with the whole batch, under DDP and FSDP alike. Under FSDP
(one unit per decoder layer, fp32 master weights, bf16 compute with precision bf16)
checkpoints are gathered on rank 0 into the same files.

SIGINT/SIGTERM: the current step finishes, a checkpoint is written, the run stops.
The safetensors reader/writer is built in (the `safetensors` package is not needed).
"""

import argparse
import ctypes
import json
import math
import mmap
import os
import re
import shutil
import signal
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

METRICS_PREFIX = "XALIGN_METRICS "
RESULT_PREFIX = "XALIGN_RESULT "
BATCHES_MAGIC = b"XALIGNB1"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
WEIGHTS_FILE = "model.safetensors"
NEG = -1e9

# ----------------------------------------------------------------------------- safetensors

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def safetensors_views(path):
    """(name, tensor) pairs of a safetensors file, in file order, and its metadata: each tensor a view over a
    private memory map of the file (no copy is made until the caller copies; pages are shared with other
    processes reading the same file, as torchrun's ranks do)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ValueError(f"{path}: shorter than the 8-byte header length")
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    (n,) = struct.unpack("<Q", mm[:8])
    if n > size - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(mm[8 : 8 + n].decode("utf8"))
    meta = header.pop("__metadata__", None) or {}
    start = 8 + n

    def views():
        for name, h in header.items():
            begin, end = h["data_offsets"]
            dtype = _DTYPES[h["dtype"]]
            count = 1
            for d in h["shape"]:
                count *= d
            if start + end > size:
                raise ValueError(f"{path}: tensor {name} runs past the end of the file")
            if count == 0:
                yield name, torch.zeros(h["shape"], dtype=dtype)
            else:
                yield name, torch.frombuffer(mm, dtype=dtype, count=count, offset=start + begin).reshape(h["shape"])

    return views(), meta


def read_safetensors(path):
    """(tensors by name, metadata) from a safetensors file; tensors are CPU copies."""
    views, meta = safetensors_views(path)
    return {name: t.clone() for name, t in views}, meta


def hf_weight_files(folder):
    """The weight files of a Hugging Face folder, in load order: a safetensors or PyTorch index's shards, or
    model.safetensors, or pytorch_model.bin."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        path = os.path.join(folder, index)
        if os.path.exists(path):
            with open(path, encoding="utf8") as f:
                shards = dict.fromkeys(json.load(f)["weight_map"].values())
            return [os.path.join(folder, name) for name in shards]
    for name in (WEIGHTS_FILE, "pytorch_model.bin"):
        if os.path.exists(os.path.join(folder, name)):
            return [os.path.join(folder, name)]
    raise FileNotFoundError(f"{folder} holds no model.safetensors, pytorch_model.bin or an index of their shards")


def hf_tensors(folder):
    """(name, tensor) pairs of a Hugging Face folder's weights, one file at a time (safetensors memory-mapped)."""
    for path in hf_weight_files(folder):
        if path.endswith(".safetensors"):
            yield from safetensors_views(path)[0]
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except TypeError:  # torch without weights_only
                state = torch.load(path, map_location="cpu")
            yield from state.items()
            del state


def _tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    n = t.numel() * t.element_size()
    return ctypes.string_at(t.data_ptr(), n) if n else b""


def write_safetensors(path, tensors, metadata=None):
    """Writes tensors (name -> tensor, in the given order) atomically; header padded to 8 bytes."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        b = _tensor_bytes(t)
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    js = json.dumps(header, separators=(",", ":")).encode("utf8")
    js += b" " * ((8 - len(js) % 8) % 8)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- batches


class BatchFile:
    """The micro-batches TypeScript wrote (xalign-batches/1): magic, u64 header length, JSON
    header, then per batch int32 input_ids, labels, attention_mask and optional segments,
    each [batch_size, length] row-major, little-endian."""

    def __init__(self, path):
        self.path = path
        self._f = open(path, "rb")
        self._mm = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_COPY)
        if self._mm[:8] != BATCHES_MAGIC:
            raise ValueError(f"{path}: not an xalign batches file")
        (n,) = struct.unpack("<Q", self._mm[8:16])
        self.header = json.loads(self._mm[16 : 16 + n].decode("utf8"))
        self._data = 16 + n
        self.batches = self.header["batches"]

    def __len__(self):
        return len(self.batches)

    def get(self, i, rows=None):
        """Batch i as CPU int64/int32 tensors; `rows` = (start, stop) keeps those rows only."""
        b = self.batches[i]
        bs, length = b["batch_size"], b["length"]
        n = bs * length
        off = self._data + b["offset"]

        def part(k):
            t = torch.frombuffer(self._mm, dtype=torch.int32, count=n, offset=off + 4 * n * k).reshape(bs, length)
            return (t if rows is None else t[rows[0] : rows[1]]).clone()

        out = {
            "input_ids": part(0).long(),
            "labels": part(1).long(),
            "attention_mask": part(2),
            "supervised_tokens": b["supervised_tokens"],
            "epoch": b.get("epoch", 0),
            "index": b.get("index", i),
        }
        if b.get("segments"):
            out["segments"] = part(3)
        return out


def write_batches(path, batches):
    """Writes an xalign-batches/1 file from dicts {input_ids, labels, attention_mask, segments?} of int
    tensors [b, t] (TypeScript writes the real ones; this serves the benchmarks)."""
    entries, blobs, offset = [], [], 0
    for i, b in enumerate(batches):
        parts = [b["input_ids"], b["labels"], b["attention_mask"]] + ([b["segments"]] if b.get("segments") is not None else [])
        bs, length = b["input_ids"].shape
        entries.append(
            {
                "offset": offset,
                "batch_size": bs,
                "length": length,
                "supervised_tokens": int((b["labels"] >= 0).sum()),
                "segments": b.get("segments") is not None,
                "epoch": 0,
                "index": i,
            }
        )
        for part in parts:
            blob = _tensor_bytes(part.to(torch.int32))
            blobs.append(blob)
            offset += len(blob)
    header = json.dumps({"format": "xalign-batches/1", "batches": entries}).encode("utf8")
    with open(path, "wb") as f:
        f.write(BATCHES_MAGIC + struct.pack("<Q", len(header)) + header)
        for blob in blobs:
            f.write(blob)


# ----------------------------------------------------------------------------- model


def canon_width(cfg):
    return int(cfg.get("canon_width") or 0)


def rms_normalize(x, eps):
    """x / sqrt(mean(x^2) + eps) in float32 (the norm weight is applied by the caller)."""
    xf = x.float()
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)


class RotaryTables:
    """HF's float32 rotary tables, computed as src/model/rope.ts does (float32 inv_freq and
    angles, cos/sin of the float32 angle in double, rounded), for positions up to n."""

    def __init__(self, dim, theta):
        half = dim // 2
        f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]  # noqa: E731
        inv = [f32(1.0 / f32(theta ** f32((2 * i) / dim))) for i in range(half)]
        self.inv = torch.tensor(inv, dtype=torch.float64)
        self.cache = {}

    def get(self, n, device):
        key = (n, str(device))
        if key not in self.cache:
            pos = torch.arange(n, dtype=torch.float64)
            angle = (pos[:, None] * self.inv[None, :]).float().double()
            emb = torch.cat([angle, angle], dim=-1)
            self.cache[key] = (emb.cos().float().to(device), emb.sin().float().to(device))
        return self.cache[key]


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads") or self.heads
        self.head_dim = d // self.heads
        self.q_proj = torch.nn.Linear(d, d, bias=False)
        self.k_proj = torch.nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = torch.nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = torch.nn.Linear(d, d, bias=False)
        w = canon_width(cfg)
        if w > 0:
            # Row k weighs the input k positions back (k = 0: the current token), per channel; zero: the identity.
            self.canon = torch.nn.Module()
            self.canon.weight = torch.nn.Parameter(torch.zeros(w, d))


class Mlp(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, i = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = torch.nn.Linear(d, i, bias=False)
        self.up_proj = torch.nn.Linear(d, i, bias=False)
        self.down_proj = torch.nn.Linear(i, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Norm(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))


class Layer(torch.nn.Module):
    """One decoder layer: (canon) attention and SwiGLU, each after an RMSNorm, with residuals. Its forward
    is what FSDP wraps (one unit per layer) and what gradient checkpointing recomputes."""

    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = Mlp(cfg)
        self.input_layernorm = Norm(cfg["hidden_size"])
        self.post_attention_layernorm = Norm(cfg["hidden_size"])
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.canon_width = canon_width(cfg)

    def forward(self, h, cos, sin, bias, keep=None, same=None, cache=None, index=0, sdpa=True):
        x = rms_normalize(h, self.eps).to(h.dtype)
        x = self._canon(x, keep, same, cache, index)
        h = h + self._attention(x * self.input_layernorm.weight, cos, sin, bias, cache, index, sdpa)
        x = rms_normalize(h, self.eps).to(h.dtype)
        return h + self.mlp(x * self.post_attention_layernorm.weight)

    def _canon(self, x, keep, same, cache=None, index=0):
        w = self.canon_width
        if w == 0:
            return x
        t = x.shape[1]
        inp = x * keep if keep is not None else x
        if w > 1:
            before = cache["canon"][index] if cache is not None and cache["canon"][index] is not None else None
            padded = torch.cat([before, inp], 1) if before is not None else F.pad(inp, (0, 0, w - 1, 0))
            if cache is not None:
                cache["canon"][index] = padded[:, -(w - 1) :]
        else:
            padded = inp
        taps = self.self_attn.canon.weight
        out = x
        for k in range(w):
            shifted = padded[:, w - 1 - k : w - 1 - k + t]
            if same is not None and k > 0:
                shifted = shifted * same[k] if k < len(same) else shifted * 0
            out = out + shifted * taps[k]
        return out

    def _attention(self, x, cos, sin, bias, cache=None, index=0, sdpa=True):
        a = self.self_attn
        b, t, _ = x.shape
        hd = a.head_dim
        q = a.q_proj(x).view(b, t, a.heads, hd)
        k = a.k_proj(x).view(b, t, a.kv_heads, hd)
        v = a.v_proj(x).view(b, t, a.kv_heads, hd)
        q = (q * cos + rotate_half(q) * sin).transpose(1, 2)
        k = (k * cos + rotate_half(k) * sin).transpose(1, 2)
        v = v.transpose(1, 2)
        if cache is not None:
            if cache["k"][index] is not None:
                k = torch.cat([cache["k"][index], k], 2)
                v = torch.cat([cache["v"][index], v], 2)
            cache["k"][index], cache["v"][index] = k, v
        if a.kv_heads != a.heads:
            g = a.heads // a.kv_heads
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
        if sdpa:
            if bias is None:
                ctx = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
            if bias is None:
                causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
                scores = scores.masked_fill(~causal, NEG)
            else:
                scores = scores + bias
            ctx = torch.matmul(torch.softmax(scores.float(), dim=-1).to(v.dtype), v)
        return a.o_proj(ctx.transpose(1, 2).reshape(b, t, a.heads * hd))


class Decoder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = torch.nn.ModuleList([Layer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = Norm(cfg["hidden_size"])


def _has_sdpa():
    return hasattr(F, "scaled_dot_product_attention")


class Llama(torch.nn.Module):
    """LLaMA as src/model/llama.ts computes it, with Hugging Face's parameter names
    (state_dict() keys are the safetensors names; projections [out, in] as HF stores them)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        self.model = Decoder(cfg)
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if not self.tied:
            self.lm_head = torch.nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.canon_width = canon_width(cfg)
        self.rope = RotaryTables(cfg["hidden_size"] // cfg["num_attention_heads"], float(cfg.get("rope_theta", 10000.0)))
        self.use_sdpa = _has_sdpa()
        # Recompute each decoder layer in the backward pass instead of keeping its activations (job gradient_checkpointing).
        self.checkpointing = False

    # -- initialisation and weights

    def init_weights(self, generator=None, std=0.02):
        """HF's initialisation (normal(0, std) for embeddings and projections, ones for norms, zeros
        for canon). TypeScript writes the initial weights of an xalign job; this is for standalone use."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("canon.weight"):
                    p.zero_()
                elif p.dim() == 1:
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, std, generator=generator)

    def hf_state_dict(self):
        """Weights by HF name (lm_head omitted when tied), detached float32 CPU tensors."""
        return {k: v.detach().float().cpu().contiguous() for k, v in self.state_dict().items()}

    def load_hf(self, tensors, strict=True):
        """Copies weights by HF name into the model: a dict or (name, tensor) pairs, any float dtype (converted to
        the parameter's). Names the model does not have are skipped (old HF checkpoints carry rotary inv_freq
        buffers); with `strict`, a parameter left without a weight is an error."""
        own = self.state_dict()
        seen = set()
        with torch.no_grad():
            for k, t in tensors.items() if isinstance(tensors, dict) else tensors:
                p = own.get(k)
                if p is None:
                    continue
                if tuple(t.shape) != tuple(p.shape):
                    raise ValueError(f"{k} has shape {list(t.shape)}, expected {list(p.shape)}")
                p.copy_(t)
                seen.add(k)
        missing = [k for k in own if k not in seen]
        if strict and missing:
            raise ValueError(f"missing weights: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")

    # -- forward

    def positions(self, mask, segments):
        if segments is not None:
            # Restart at 0 where the document number changes (src/model/llama.ts segmentPositions).
            b, t = segments.shape
            change = torch.ones_like(segments, dtype=torch.bool)
            change[:, 1:] = segments[:, 1:] != segments[:, :-1]
            idx = torch.arange(t, device=segments.device).expand(b, t)
            start = torch.where(change, idx, torch.zeros_like(idx))
            start = torch.cummax(start, dim=1).values
            return idx - start
        # Count of real tokens before each one (left padding starts at 0): cumsum(mask) - 1, at least 0.
        return (torch.cumsum(mask.long(), dim=1) - 1).clamp(min=0)

    def hidden(self, input_ids, attention_mask=None, segments=None, cache=None):
        """The final hidden rows [b, t, hidden] before the final norm. `cache` (a dict from
        new_cache(), not with segments) holds past keys/values, canon inputs and the mask: the new
        positions attend to everything cached, as src/model/kvcache.ts does."""
        b, t = input_ids.shape
        dev = input_ids.device
        if cache is not None and segments is not None:
            raise ValueError("segments cannot be used with a KV cache")
        past = cache["length"] if cache is not None else 0
        mask = attention_mask if attention_mask is not None else torch.ones(b, t, dtype=torch.int32, device=dev)
        full = torch.cat([cache["mask"], mask], 1) if cache is not None and past > 0 else mask
        padded = bool((full != 1).any()) if (attention_mask is not None or past > 0) else False
        plain = not padded and segments is None and past == 0
        if plain:
            cos, sin = self.rope.get(t, dev)
            cos, sin = cos[None, :, None, :], sin[None, :, None, :]
            bias = None
        else:
            pos = self.positions(full, segments)[:, past:]
            cos_t, sin_t = self.rope.get(past + t, dev)  # positions never exceed past + t - 1 (no device sync)
            cos, sin = cos_t[pos][:, :, None, :], sin_t[pos][:, :, None, :]
            total = past + t
            causal = torch.arange(total, device=dev)[None, :] <= (past + torch.arange(t, device=dev))[:, None]
            allowed = causal[None] & (full[:, None, :] == 1)
            if segments is not None:
                allowed = allowed & (segments[:, None, :] == segments[:, :, None])
            zero = torch.zeros((), device=dev)
            bias = torch.where(allowed, zero, torch.full((), NEG, device=dev))[:, None]  # [b, 1, t, past + t]
        keep = mask[:, :, None].float() if padded else None
        same = None
        if segments is not None and self.canon_width > 1:
            same = [None] + [
                F.pad((segments[:, k:] == segments[:, :-k]).float(), (k, 0))[:, :, None] for k in range(1, min(self.canon_width, t))
            ]
        h = self.model.embed_tokens(input_ids)
        recompute = self.checkpointing and self.training and cache is None and torch.is_grad_enabled()
        for i, layer in enumerate(self.model.layers):
            if recompute:
                # Gradient checkpointing: keep only the layer's input, recompute the layer in the backward pass.
                h = checkpoint(layer, h, cos, sin, bias, keep, same, None, i, self.use_sdpa, use_reentrant=False)
            else:
                h = layer(h, cos, sin, bias, keep, same, cache, i, self.use_sdpa)
        if cache is not None:
            cache["mask"] = full
            cache["length"] = past + t
        return h

    def new_cache(self):
        n = len(self.model.layers)
        return {"length": 0, "mask": None, "k": [None] * n, "v": [None] * n, "canon": [None] * n}

    def head_weight(self):
        return self.model.embed_tokens.weight if self.tied else self.lm_head.weight

    def logits(self, input_ids, attention_mask=None, segments=None, cache=None, last=False):
        """Logits [b, t, vocab] (last: [b, 1, vocab], the head only for the last position)."""
        h = self.hidden(input_ids, attention_mask, segments, cache)
        if last:
            h = h[:, -1:]
        x = rms_normalize(h, self.eps).to(h.dtype) * self.model.norm.weight
        return F.linear(x, self.head_weight())

    def forward(self, input_ids, labels, attention_mask=None, segments=None):
        """(sum of the token losses over labels >= 0, count of those labels)."""
        logits = self.logits(input_ids, attention_mask, segments)
        flat = labels.reshape(-1)
        target = torch.where(flat >= 0, flat, torch.full_like(flat, -100))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target, ignore_index=-100, reduction="sum")
        return loss, (flat >= 0).sum()

    @torch.no_grad()
    def greedy(self, input_ids, attention_mask, max_new_tokens, eos_token_id=None):
        """Batched greedy decoding from left-padded prompts with a KV cache (the prompt in one
        pass, then one token at a time). Returns the new tokens [b, max_new_tokens]
        (eos_token_id repeated after a row ended)."""
        cache = self.new_cache()
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        ids, mask, out = input_ids, attention_mask, []
        for _ in range(max_new_tokens):
            nxt = self.logits(ids, mask, cache=cache, last=True)[:, -1].argmax(-1)
            if eos_token_id is not None:
                nxt = torch.where(done, torch.full_like(nxt, eos_token_id), nxt)
                done = done | (nxt == eos_token_id)
            out.append(nxt)
            ids = nxt[:, None]
            mask = torch.ones_like(mask[:, :1])
        return torch.stack(out, 1)


def bench_config(c):
    """An HF config from the benchmarks' shape records (bench/torch_baseline.py, bench/gpu/torch_gpu.py:
    vocab, dim, layers, heads, hidden, seq, eps, tie, optional kv_heads and canon)."""
    cfg = {
        "hidden_size": c["dim"],
        "intermediate_size": c["hidden"],
        "num_hidden_layers": c["layers"],
        "num_attention_heads": c["heads"],
        "num_key_value_heads": c.get("kv_heads", c["heads"]),
        "vocab_size": c["vocab"],
        "rms_norm_eps": c.get("eps", 1e-5),
        "rope_theta": 10000.0,
        "max_position_embeddings": max(2048, c.get("seq", 0)),
        "tie_word_embeddings": bool(c.get("tie", False)),
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": None,
    }
    if c.get("canon"):
        cfg["canon_width"] = int(c["canon"])
    return cfg


def decay_groups(model, weight_decay, no_decay=("norm", "bias", "embed_tokens"), named=None):
    """AdamW parameter groups as src/train does: no decay for names matching `no_decay`. `named`: the
    (HF name, parameter) pairs to group instead of model.named_parameters() (an FSDP model's, say)."""
    pats = [re.compile(p) for p in no_decay]
    decay, plain = [], []
    for name, p in named if named is not None else model.named_parameters():
        (plain if any(r.search(name) for r in pats) else decay).append(p)
    return [g for g in ({"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}) if g["params"]]


# ----------------------------------------------------------------------------- schedule, clipping


def learning_rate(kind, peak, warmup, total, step):
    """src/train/schedule.ts learningRate (0-based step)."""
    if step < warmup:
        return peak * step / max(1, warmup)
    if kind == "constant":
        return peak
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "linear":
        return peak * max(0.0, 1 - progress)
    return peak * max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))


def clip_scale(norm, max_norm):
    """src/train/adamw.ts clipScale."""
    if max_norm is None or not (max_norm > 0) or not math.isfinite(norm) or norm <= max_norm:
        return 1.0
    return max_norm / (norm + 1e-6)


class DivergenceCheck:
    """src/train/trainer.ts DivergenceCheck."""

    def __init__(self, factor, max_loss):
        self.factor = 10.0 if factor is None else factor
        self.max_loss = max_loss
        self.start = None
        self.ema = 0.0
        self.weight = 0.0

    def check(self, loss):
        if self.max_loss is not None and loss > self.max_loss:
            return f"the loss {loss:.3f} is above max_loss {self.max_loss}"
        if self.start is None:
            self.start = loss
        self.ema = 0.9 * self.ema + 0.1 * loss
        self.weight = 0.9 * self.weight + 0.1
        smoothed = self.ema / self.weight
        if self.factor > 0 and smoothed > self.factor * max(self.start, 1):
            return f"the smoothed loss {smoothed:.3f} is over {self.factor} times the first loss {self.start:.3f}"
        return None


# ----------------------------------------------------------------------------- the run


class Dist:
    """The process group from torchrun's environment. `group`: start one even for a single process (FSDP
    needs it), on a free local port when no launcher set MASTER_ADDR."""

    def __init__(self, device, group=False):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.on = self.world > 1
        self.started = False
        if self.on or group:
            import torch.distributed as dist

            self.dist = dist
            if "MASTER_ADDR" not in os.environ:
                os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=_free_port(), RANK="0", WORLD_SIZE="1")
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            self.started = True

    def all_sum(self, values, device):
        if not self.on:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        self.dist.all_reduce(t)
        return t.tolist()

    def any_flag(self, flag, device):
        return bool(self.all_sum([1.0 if flag else 0.0], device)[0] > 0)

    def barrier(self):
        if self.on:
            self.dist.barrier()

    def close(self):
        if self.started:
            self.dist.destroy_process_group()


# ----------------------------------------------------------------------------- DDP and FSDP

PARALLEL_MODES = ("ddp", "fsdp")
FSDP_SHARDING = ("full_shard", "shard_grad_op")
# Wrapper prefixes in the parameter names of a wrapped model (FSDP, activation checkpointing, torch.compile).
WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def clean_name(name):
    """An HF parameter name from a wrapped model's name."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def parallel_plan(job, world):
    """How the job's processes share the model, from the job alone (no process group, no CUDA), so that the
    choice can be checked anywhere: mode "ddp" (each process holds the whole model; one process is the
    plain case) or "fsdp" (parameters, gradients and AdamW moments sharded over the processes, one FSDP
    unit per decoder layer, fp32 master weights; bf16 compute when the job's precision is bf16)."""
    mode = job.get("parallel") or "ddp"
    if mode not in PARALLEL_MODES:
        raise SystemExit(f"xalign_torch: parallel must be one of {', '.join(PARALLEL_MODES)}, got {mode!r}")
    fs = job.get("fsdp") or {}
    sharding = fs.get("sharding", "full_shard")
    if sharding not in FSDP_SHARDING:
        raise SystemExit(f"xalign_torch: fsdp.sharding must be one of {', '.join(FSDP_SHARDING)}, got {sharding!r}")
    return {
        "mode": mode,
        "world": world,
        "sharding": sharding,
        "wrap": Layer.__name__,
        "mixed_precision": "bf16" if job.get("precision") == "bf16" else None,
    }


def fsdp_unavailable():
    """Why this torch cannot run the FSDP path, or None. torch < 2.0 lacks use_orig_params (per-parameter AdamW
    groups and optimizer state by parameter name); torch 1.13's FSDP also needs CUDA even to wrap a module."""
    major = int(torch.__version__.split(".")[0])
    if major < 2:
        return f"torch {torch.__version__} is older than 2.0 (FSDP with use_orig_params and optimizer state by name)"
    return None


def import_fsdp():
    """torch.distributed.fsdp. On torch < 2.0 under Python 3.11 its import fails (a dataclass with a mutable
    default in torch.distributed._shard, which 3.11 refuses); the default is then turned into a factory for
    the import, so that at least the module and its settings objects load."""
    try:
        import torch.distributed.fsdp as fsdp

        return fsdp
    except ValueError as err:
        if "mutable default" not in str(err):
            raise
    import copy
    import dataclasses

    original = dataclasses._get_field

    def lenient(cls, name, *rest):
        d = cls.__dict__.get(name, dataclasses.MISSING)
        if isinstance(d, dataclasses.Field) and dataclasses.is_dataclass(d.default) and type(d.default).__hash__ is None:
            value = d.default
            d.default = dataclasses.MISSING
            d.default_factory = lambda: copy.deepcopy(value)
        return original(cls, name, *rest)

    dataclasses._get_field = lenient
    try:
        import torch.distributed.fsdp as fsdp
    finally:
        dataclasses._get_field = original
    return fsdp


def fsdp_kwargs(plan, device):
    """FullyShardedDataParallel's arguments for the plan: one unit per decoder layer (and the root for the
    embedding, final norm and head), the sharding strategy, bf16 parameters/activations over fp32 master
    weights with fp32 gradient reduction when the precision is bf16, original parameters kept (names,
    AdamW groups), the module moved to `device` while it is sharded."""
    import functools

    fsdp = import_fsdp()
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    kw = {
        "auto_wrap_policy": functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={Layer}),
        "sharding_strategy": fsdp.ShardingStrategy.FULL_SHARD if plan["sharding"] == "full_shard" else fsdp.ShardingStrategy.SHARD_GRAD_OP,
        "use_orig_params": True,
        "limit_all_gathers": True,
    }
    if plan["mixed_precision"] == "bf16":
        kw["mixed_precision"] = fsdp.MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.float32, buffer_dtype=torch.bfloat16)
    if device.type == "cuda":
        kw["device_id"] = device
    return kw


class Parallel:
    """The model as the processes share it: one process, DDP replicas, or FSDP shards. The loop trains
    `wrapped`; names, the gradient norm, gathered weights and AdamW moments are by HF parameter name in
    every mode, so checkpoints are the same files whichever mode wrote them."""

    def __init__(self, model, plan, dist, device):
        self.model, self.dist, self.device = model, dist, device
        self.mode = plan["mode"]
        self.sharded = self.mode == "fsdp"
        if self.sharded:
            why = fsdp_unavailable()
            if why:
                raise SystemExit(f"xalign_torch: parallel fsdp cannot run here: {why}; use torch >= 2.0, or parallel ddp for a model that fits one device")
            # The model is still on the CPU: FSDP moves each unit to the device as it shards it.
            self.wrapped = import_fsdp().FullyShardedDataParallel(model, **fsdp_kwargs(plan, device))
        else:
            model.to(device)
            if dist.on:
                from torch.nn.parallel import DistributedDataParallel

                self.wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
            else:
                self.wrapped = model
        source = self.wrapped if self.sharded else model
        self.named = [(clean_name(n), p) for n, p in source.named_parameters()]

    @property
    def eval_model(self):
        """What evaluation calls: the FSDP module (every rank takes part in its all-gathers), else the plain model."""
        return self.wrapped if self.sharded else self.model

    def sync_context(self, last_micro):
        """DDP all-reduces after the last micro-batch of a step only; FSDP reduce-scatters every micro-batch
        (its no_sync would hold whole unsharded gradients on every rank)."""
        if self.dist.on and not self.sharded and not last_micro:
            return self.wrapped.no_sync()
        return _Null()

    def grad_norm(self):
        """(global L2 norm of the gradient, the gradient tensors to scale when clipping)."""
        grads = [p.grad for _, p in self.named if p.grad is not None]
        if not self.sharded:
            norms = torch._foreach_norm(grads) if hasattr(torch, "_foreach_norm") else [torch.norm(g.float(), 2) for g in grads]
            return float(torch.norm(torch.stack([n.float() for n in norms]), 2).item()), grads
        # FSDP: every rank holds a disjoint shard of each gradient (some shards empty); the squares add up.
        local = 0.0
        for g in grads:
            if g.numel() > 0:
                local += float(g.float().pow(2).sum().item())
        return math.sqrt(self.dist.all_sum([local], self.device)[0]), grads

    def full_weights(self):
        """The weights by HF name as float32 CPU tensors on rank 0, None on the others. FSDP gathers them
        from the shards into rank 0's host memory; every rank must call this."""
        if not self.sharded:
            return self.model.hf_state_dict() if self.dist.rank == 0 else None
        fsdp = import_fsdp()
        fsdp_cls = fsdp.FullyShardedDataParallel
        config = fsdp.FullStateDictConfig(offload_to_cpu=True, rank0_only=True)
        with fsdp_cls.state_dict_type(self.wrapped, fsdp.StateDictType.FULL_STATE_DICT, config):
            state = self.wrapped.state_dict()
        if self.dist.rank != 0:
            return None
        return {clean_name(k): v.detach().float().cpu().contiguous() for k, v in state.items()}

    def full_moments(self, optimizer):
        """AdamW's moments by HF name ("<name>.exp_avg", "<name>.exp_avg_sq") in the TF.js trainer's layout, on
        rank 0 (None on the others); FSDP gathers them (every rank must call this)."""
        if self.sharded:
            fsdp = import_fsdp()
            fsdp_cls = fsdp.FullyShardedDataParallel
            with fsdp_cls.state_dict_type(
                self.wrapped,
                fsdp.StateDictType.FULL_STATE_DICT,
                fsdp.FullStateDictConfig(offload_to_cpu=True, rank0_only=True),
                fsdp.FullOptimStateDictConfig(offload_to_cpu=True, rank0_only=True),
            ):
                osd = fsdp_cls.optim_state_dict(self.wrapped, optimizer)
            states = {clean_name(k): v for k, v in (osd.get("state") or {}).items()} if self.dist.rank == 0 else {}
        else:
            states = {name: optimizer.state.get(p) for name, p in self.named}
        if self.dist.rank != 0:
            return None
        moments = {}
        for name, _ in self.named:
            st = states.get(name)
            if st and "exp_avg" in st:
                moments[f"{name}.exp_avg"] = memory_layout(name, st["exp_avg"].float().cpu())
                moments[f"{name}.exp_avg_sq"] = memory_layout(name, st["exp_avg_sq"].float().cpu())
        return moments

    def load_moments(self, optimizer, moments, step):
        """Restores AdamW's moments (a checkpoint's optimizer.safetensors, read whole on every rank)."""
        if not self.sharded:
            restore_optimizer(optimizer, {p: n for n, p in self.named}, moments, step)
            return
        fsdp = import_fsdp()
        fsdp_cls = fsdp.FullyShardedDataParallel
        names = {p: n for n, p in self.named}
        state = {}
        for name, _ in self.named:
            m, v = moments.get(f"{name}.exp_avg"), moments.get(f"{name}.exp_avg_sq")
            if m is not None and v is not None:
                state[name] = {"step": torch.tensor(float(step)), "exp_avg": memory_layout(name, m), "exp_avg_sq": memory_layout(name, v)}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [names[p] for p in g["params"]]} for g in optimizer.param_groups]
        with fsdp_cls.state_dict_type(
            self.wrapped,
            fsdp.StateDictType.FULL_STATE_DICT,
            fsdp.FullStateDictConfig(rank0_only=False),
            fsdp.FullOptimStateDictConfig(rank0_only=False),
        ):
            flat = fsdp_cls.optim_state_dict_to_load(model=self.wrapped, optim=optimizer, optim_state_dict={"state": state, "param_groups": groups})
        optimizer.load_state_dict(flat)


def pick_device(name, dist_local_rank):
    if name in (None, "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        torch.cuda.set_device(dist_local_rank)
        return torch.device("cuda", dist_local_rank)
    return torch.device(name)


def emit(prefix, row):
    sys.stdout.write(prefix + json.dumps(row) + "\n")
    sys.stdout.flush()


def append_metrics(path, row):
    with open(path, "a", encoding="utf8") as f:
        f.write(json.dumps(row) + "\n")


def truncate_metrics(path, step):
    """Keep the rows up to `step` (src/train/trainer.ts truncateMetrics)."""
    if not os.path.exists(path):
        return
    kept = []
    with open(path, encoding="utf8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if not isinstance(row.get("step"), (int, float)) or row["step"] <= step:
                kept.append(line.rstrip("\n"))
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf8") as f:
        f.write("".join(k + "\n" for k in kept))
    os.replace(tmp, path)


def checkpoint_steps(out_dir):
    steps = []
    for n in os.listdir(out_dir) if os.path.isdir(out_dir) else []:
        m = re.match(r"^checkpoint-(\d+)$", n)
        if m:
            steps.append(int(m.group(1)))
    return sorted(steps)


def config_json(cfg):
    out = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu"}
    out.update(cfg)
    out.update({"attention_bias": False, "mlp_bias": False, "rope_scaling": None, "torch_dtype": "float32"})
    return out


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model")


def save_model(weights, cfg, folder, tokenizer_dir=None):
    """An HF folder: model.safetensors (`weights` by HF name), config.json, and the tokenizer files of
    `tokenizer_dir` when given."""
    os.makedirs(folder, exist_ok=True)
    write_safetensors(os.path.join(folder, WEIGHTS_FILE), weights, {"format": "pt"})
    with open(os.path.join(folder, "config.json"), "w", encoding="utf8") as f:
        json.dump(config_json(cfg), f, indent=2)
    for name in TOKENIZER_FILES if tokenizer_dir else ():
        if os.path.exists(os.path.join(tokenizer_dir, name)):
            shutil.copy(os.path.join(tokenizer_dir, name), os.path.join(folder, name))


def memory_layout(name, t):
    """Projection moments are stored as the TF.js trainer holds its weights, [in, out] (the transpose of HF's
    [out, in]; src/model/llama.ts isTransposedInMemory), so either engine resumes the other's checkpoint.
    Its own inverse."""
    return t.t().contiguous() if name.endswith("_proj.weight") or name == "lm_head.weight" else t


def save_checkpoint(out_dir, state, weights, cfg, moments, keep_last):
    """checkpoint-N written into a temp folder, trainer_state.json last, then one rename. `weights` and
    `moments` (by HF name, moments in the TF.js trainer's layout) come from Parallel.full_weights/full_moments."""
    final = os.path.join(out_dir, f"checkpoint-{state['step']}")
    tmp = os.path.join(out_dir, f".tmp-checkpoint-{state['step']}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save_model(weights, cfg, tmp)
        write_safetensors(os.path.join(tmp, OPTIMIZER_FILE), moments, {"format": "xalign-adamw", "step": str(state["step"])})
        with open(os.path.join(tmp, STATE_FILE), "w", encoding="utf8") as f:
            json.dump(state, f)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(final):
        old = f"{final}.old-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)
    steps = checkpoint_steps(out_dir)
    for s in steps[: max(0, len(steps) - keep_last)]:
        shutil.rmtree(os.path.join(out_dir, f"checkpoint-{s}"), ignore_errors=True)
    return final


def restore_optimizer(optimizer, names, moments, step):
    for group in optimizer.param_groups:
        on_device = bool(group.get("fused") or group.get("capturable"))
        for p in group["params"]:
            name = names[p]
            m = moments.get(f"{name}.exp_avg")
            v = moments.get(f"{name}.exp_avg_sq")
            if m is None or v is None:
                continue
            optimizer.state[p] = {
                "step": torch.tensor(float(step), dtype=torch.float32, device=p.device if on_device else "cpu"),
                "exp_avg": memory_layout(name, m).to(p.device, p.dtype).contiguous(),
                "exp_avg_sq": memory_layout(name, v).to(p.device, p.dtype).contiguous(),
            }


def make_optimizer(named, tc, device, fused=True):
    """torch.optim.AdamW over (HF name, parameter) pairs with src/train's decay groups; the fused kernel on CUDA
    when `fused` and torch has it."""
    groups = decay_groups(None, tc.get("weight_decay", 0.0), tc.get("no_decay", ["norm", "bias", "embed_tokens"]), named=named)
    kwargs = dict(lr=tc["lr"], betas=(tc.get("beta1", 0.9), tc.get("beta2", 0.999)), eps=tc.get("eps", 1e-8))
    if device.type == "cuda" and fused:
        try:
            return torch.optim.AdamW(groups, fused=True, **kwargs)
        except (TypeError, RuntimeError):
            pass
    return torch.optim.AdamW(groups, **kwargs)


def device_mask(mask, device):
    """The attention mask on the device, or None when every position is real (decided on the host: the model then
    takes the plain causal path without a device sync)."""
    return None if bool((mask == 1).all()) else mask.to(device, non_blocking=True)


def evaluate(model, source, max_batches, device, autocast, dist=None):
    """The validation loss: cross-entropy per supervised token over the first `max_batches` batches. Under
    torchrun a batch whose rows divide over the ranks is split as training batches are, and the ranks'
    sums added; every rank runs every batch (FSDP's all-gathers need all of them)."""
    total, weight = 0.0, 0
    model.eval()
    with torch.no_grad():
        for i in range(min(max_batches, len(source))):
            bs = source.batches[i]["batch_size"]
            split = dist is not None and dist.on and bs % dist.world == 0
            per = bs // dist.world if split else bs
            b = source.get(i, (dist.rank * per, (dist.rank + 1) * per) if split else None)
            with autocast():
                s, n = model(
                    b["input_ids"].to(device),
                    b["labels"].to(device),
                    device_mask(b["attention_mask"], device),
                    b["segments"].to(device) if "segments" in b else None,
                )
            if split:
                total_s = dist.all_sum([float(s.item())], device)[0]
            else:
                n = int(n.item())
                total_s = (s.item() / n) * b["supervised_tokens"] if n > 0 else 0.0
            if b["supervised_tokens"] > 0:
                total += total_s
                weight += b["supervised_tokens"]
    model.train()
    return total / weight if weight > 0 else float("nan")


def job_model_config(job):
    """The model's HF config: the job's model_config, else the config.json of init_from (a Hugging Face folder)."""
    if job.get("model_config"):
        return job["model_config"]
    if not job.get("init_from"):
        raise SystemExit("xalign_torch: the job names neither model_config nor init_from")
    path = os.path.join(job["init_from"], "config.json")
    if not os.path.exists(path):
        raise SystemExit(f"xalign_torch: {path} does not exist (init_from must be a Hugging Face LLaMA folder)")
    with open(path, encoding="utf8") as f:
        return json.load(f)


def run(job, resume=False):
    plan = parallel_plan(job, int(os.environ.get("WORLD_SIZE", "1")))
    if plan["mode"] == "fsdp" and fsdp_unavailable():
        # First, before the process group: every rank stops with the same message.
        raise SystemExit(f"xalign_torch: parallel fsdp cannot run here: {fsdp_unavailable()}; use torch >= 2.0, or parallel ddp for a model that fits one device")
    tc = job["train"]
    cfg = job_model_config(job)
    out_dir = job["out_dir"]
    precision = job.get("precision", "fp32")
    torch.manual_seed(int(job.get("seed", 0)))
    device = pick_device(job.get("device", "auto"), int(os.environ.get("LOCAL_RANK", "0")))
    dist = Dist(device, group=plan["mode"] == "fsdp")
    if device.type == "cuda" and job.get("tf32"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    elif device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if precision == "bf16" and device.type != "cuda":
        raise SystemExit("xalign_torch: precision bf16 needs CUDA")
    threads = job.get("threads")
    if threads:
        torch.set_num_threads(int(threads))

    def autocast():
        if precision == "bf16":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return _Null()

    if dist.rank == 0:
        os.makedirs(out_dir, exist_ok=True)
        for n in os.listdir(out_dir):
            m = re.match(r"^(checkpoint-\d+)\.old-\d+$", n)
            if m and not os.path.exists(os.path.join(out_dir, m.group(1))):
                os.rename(os.path.join(out_dir, n), os.path.join(out_dir, m.group(1)))
            elif m or n.startswith(".tmp-checkpoint-"):
                shutil.rmtree(os.path.join(out_dir, n), ignore_errors=True)
    dist.barrier()

    batches = BatchFile(job["batches"])
    validation = BatchFile(job["validation"]) if job.get("validation") else None
    total = int(tc["total_steps"])
    accum = int(tc.get("grad_accum", 1))
    warmup = int(tc.get("warmup_steps", 0))
    if len(batches) < total * accum:
        raise SystemExit(f"xalign_torch: {job['batches']} holds {len(batches)} micro-batches; {total} steps x {accum} need {total * accum}")
    if dist.on:
        uneven = sorted({b["batch_size"] for b in batches.batches[: total * accum] if b["batch_size"] % dist.world})
        if uneven:
            raise SystemExit(f"xalign_torch: micro-batches of {uneven[0]} rows do not split over {dist.world} processes (each rank takes an equal share of every micro-batch)")

    model = Llama(cfg)
    if job.get("attention") == "math":
        model.use_sdpa = False  # attention written out (matmul, mask, softmax), as xalign's TF.js path computes it
    model.checkpointing = bool(job.get("gradient_checkpointing"))
    state = {
        "format": "xalign-trainer-state/1",
        "step": 0,
        "position": {"epoch": 0, "index": 0},
        "bestValidationLoss": None,
        "evalsWithoutImprovement": 0,
        "tokensSeen": 0,
        "elapsedSeconds": 0.0,
        "totalSteps": total,
    }
    resumed_from = None
    moments = None
    if resume:
        for step in reversed(checkpoint_steps(out_dir)):
            d = os.path.join(out_dir, f"checkpoint-{step}")
            try:
                with open(os.path.join(d, STATE_FILE), encoding="utf8") as f:
                    st = json.load(f)
                model.load_hf(safetensors_views(os.path.join(d, WEIGHTS_FILE))[0])
                moments = dict(safetensors_views(os.path.join(d, OPTIMIZER_FILE))[0])
                state.update(st)
                resumed_from = d
                break
            except Exception as err:  # a damaged checkpoint: report and try the one before
                moments = None
                if dist.rank == 0:
                    sys.stderr.write(f"xalign_torch: {d} is damaged ({err})\n")
    if resumed_from is None:
        # TypeScript's initial weights (a from-scratch model), or a Hugging Face folder (model.from, the previous stage's final/).
        model.load_hf(safetensors_views(job["init_weights"])[0] if job.get("init_weights") else hf_tensors(job["init_from"]))
    par = Parallel(model, plan, dist, device)
    train_model = par.wrapped
    optimizer = make_optimizer(par.named, tc, device, fused=not par.sharded)
    if moments is not None:
        par.load_moments(optimizer, moments, state["step"])
        moments = None

    metrics_file = os.path.join(out_dir, "metrics.jsonl")
    if resume and dist.rank == 0:
        truncate_metrics(metrics_file, state["step"])
    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    divergence = DivergenceCheck(tc.get("divergence_factor"), tc.get("max_loss"))
    started = time.perf_counter() - float(state.get("elapsedSeconds") or 0)
    last_checkpoint = resumed_from
    interrupted = stopped_early = False
    final_loss = float("nan")
    final_dir = None
    save_every = tc.get("save_every")
    keep_last = int(tc.get("keep_last", 2))
    checkpoints = job.get("checkpoints", True)
    log_every = int(tc.get("log_every", 1))
    if dist.rank == 0:
        emit(METRICS_PREFIX, {"event": "start", "step": state["step"], "total_steps": total, "world_size": dist.world, "parallel": plan["mode"]})

    def save():
        nonlocal last_checkpoint
        state["elapsedSeconds"] = time.perf_counter() - started
        weights, adam = par.full_weights(), par.full_moments(optimizer)  # collective under FSDP
        if dist.rank == 0:
            last_checkpoint = save_checkpoint(out_dir, state, weights, cfg, adam, keep_last)
        else:
            last_checkpoint = os.path.join(out_dir, f"checkpoint-{state['step']}")
        dist.barrier()

    try:
        while state["step"] < total:
            if dist.any_flag(stop["flag"], device):
                interrupted = True
                break
            step_start = time.perf_counter()
            micro_sums = []
            tokens = 0
            for micro in range(accum):
                mb = state["step"] * accum + micro
                meta = batches.batches[mb]
                rows = None
                if dist.on:
                    per = meta["batch_size"] // dist.world
                    rows = (dist.rank * per, (dist.rank + 1) * per)
                b = batches.get(mb, rows)
                tokens += b["supervised_tokens"]
                count = max(b["supervised_tokens"], 1)
                with par.sync_context(micro == accum - 1):
                    with autocast():
                        s, _ = train_model(
                            b["input_ids"].to(device, non_blocking=True),
                            b["labels"].to(device, non_blocking=True),
                            device_mask(b["attention_mask"], device),
                            b["segments"].to(device, non_blocking=True) if "segments" in b else None,
                        )
                    # The micro-batch's mean over all its supervised tokens (of every rank); DDP and FSDP average over
                    # ranks, hence x world; the accumulated gradient is the mean over micro-batches, hence / accum.
                    (s * (dist.world / (count * accum))).backward()
                micro_sums.append(s.detach() / count)
                state["position"] = {"epoch": b["epoch"], "index": b["index"] + 1}
            loss_local = float(torch.stack(micro_sums).sum().item())
            loss = dist.all_sum([loss_local], device)[0] / accum
            if not math.isfinite(loss):
                raise SystemExit(f"xalign_torch: the loss became {loss} at step {state['step'] + 1}; last checkpoint {last_checkpoint}")
            diverged = divergence.check(loss)
            if diverged:
                raise SystemExit(f"xalign_torch: training diverged at step {state['step'] + 1}: {diverged}")
            norm, grads = par.grad_norm()
            if not math.isfinite(norm):
                raise SystemExit(f"xalign_torch: the gradient norm became {norm} at step {state['step'] + 1}")
            scale = clip_scale(norm, tc.get("clip_norm"))
            if scale != 1.0:
                if hasattr(torch, "_foreach_mul_"):
                    torch._foreach_mul_(grads, scale)
                else:
                    for g in grads:
                        g.mul_(scale)
            lr = learning_rate(tc.get("schedule", "cosine"), tc["lr"], warmup, total, state["step"])
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["tokensSeen"] += tokens
            final_loss = loss
            now = time.perf_counter()
            record = {
                "step": state["step"],
                "epoch": state["position"]["epoch"],
                "loss": loss,
                "lr": lr,
                "grad_norm": norm,
                "tokens": tokens,
                "tokens_per_s": tokens / max(now - step_start, 1e-9),
                "elapsed_s": now - started,
            }
            if dist.rank == 0:
                emit(METRICS_PREFIX, {"split": "train", **record})
                if state["step"] % log_every == 0 or state["step"] == total:
                    append_metrics(metrics_file, {"split": "train", **record})
            ev = tc.get("eval_every")
            if validation is not None and ev and (state["step"] % ev == 0 or state["step"] == total):
                val = evaluate(par.eval_model, validation, int(tc.get("eval_batches", 8)), device, autocast, dist)
                if dist.rank == 0:
                    row = {"split": "validation", "step": state["step"], "loss": val}
                    emit(METRICS_PREFIX, row)
                    append_metrics(metrics_file, row)
                best = state.get("bestValidationLoss")
                if best is None or val < best:
                    state["bestValidationLoss"] = val
                    state["evalsWithoutImprovement"] = 0
                else:
                    state["evalsWithoutImprovement"] += 1
                patience = tc.get("early_stopping_patience")
                if patience is not None and state["evalsWithoutImprovement"] >= patience:
                    stopped_early = True
                    break
            if checkpoints and save_every and state["step"] % save_every == 0 and state["step"] < total:
                save()
        if checkpoints and not (last_checkpoint or "").endswith(f"checkpoint-{state['step']}"):
            save()
        # final_on_interrupt false (xalign launch): an interrupted stage leaves no final/, which would mark it done.
        if job.get("final_dir") and not (interrupted and job.get("final_on_interrupt") is False):
            weights = par.full_weights()
            if dist.rank == 0:
                save_model(weights, cfg, job["final_dir"], job.get("tokenizer_dir"))
            final_dir = job["final_dir"]
    finally:
        dist.barrier()
        dist.close()
    result = {
        "steps": state["step"],
        "totalSteps": total,
        "finalLoss": final_loss,
        "bestValidationLoss": state.get("bestValidationLoss"),
        "interrupted": interrupted,
        "stoppedEarly": stopped_early,
        "checkpoint": last_checkpoint,
        "finalDir": final_dir,
        "resumedFrom": resumed_from,
        "metricsFile": metrics_file,
        "device": str(device),
        "world": dist.world,
        "parallel": plan["mode"],
        "torch": torch.__version__,
    }
    if dist.rank == 0:
        emit(RESULT_PREFIX, result)
    return result


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# ----------------------------------------------------------------------------- probe, generate, CLI


def probe():
    """What this interpreter's torch offers: for `xalign doctor`."""
    out = {"python": sys.executable, "python_version": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    out["cuda_version"] = getattr(torch.version, "cuda", None)
    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append({"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1), "capability": f"{p.major}.{p.minor}"})
        bf16 = getattr(torch.cuda, "is_bf16_supported", lambda: False)()
    else:
        bf16 = False
    out["devices"] = devices
    out["bf16"] = bool(bf16)
    out["sdpa"] = _has_sdpa()
    out["fsdp"] = fsdp_unavailable() is None
    out["threads"] = torch.get_num_threads()
    return out


def generate(job):
    """Batched greedy decoding: job {weights_dir, prompts: [[ids]], max_new_tokens, eos_token_id?, device}."""
    with open(os.path.join(job["weights_dir"], "config.json"), encoding="utf8") as f:
        cfg = json.load(f)
    device = pick_device(job.get("device", "auto"), 0)
    model = Llama(cfg)
    model.load_hf(hf_tensors(job["weights_dir"]))
    model.to(device).eval()
    prompts = job["prompts"]
    width = max(len(p) for p in prompts)
    pad = cfg.get("pad_token_id") or 0
    ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device, dtype=torch.int32)
    return model.greedy(ids, mask, int(job["max_new_tokens"]), job.get("eos_token_id")).tolist()


def logits_of(job):
    """Logits for given ids: job {weights_dir, input_ids: [[ids]], attention_mask?, segments?} -> [b][t][vocab]."""
    with open(os.path.join(job["weights_dir"], "config.json"), encoding="utf8") as f:
        cfg = json.load(f)
    model = Llama(cfg)
    model.load_hf(hf_tensors(job["weights_dir"]))
    model.eval()
    ids = torch.tensor(job["input_ids"])
    mask = torch.tensor(job["attention_mask"], dtype=torch.int32) if job.get("attention_mask") else None
    seg = torch.tensor(job["segments"], dtype=torch.int32) if job.get("segments") else None
    with torch.no_grad():
        return model.logits(ids, mask, seg).tolist()


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _free_rendezvous():
    """torchrun arguments for a c10d rendezvous on a free local port (--standalone's fixed 29400 would collide
    with another run on the same machine)."""
    import uuid

    return ["--nnodes=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{_free_port()}", f"--rdzv_id={uuid.uuid4()}"]


def torchrun(argv):
    """`torchrun ARGV` in this interpreter (torch.distributed.run). torch < 2.0 on Python 3.11 cannot parse
    torchrun's --redirects/--tee defaults (its Std enum lookup misses Std.NONE under 3.11's enum.Flag), so
    the parser is replaced by a correct one first; a --standalone before the script becomes a rendezvous on a
    free local port. `python3 python/xalign_torch.py --torchrun ...` runs this, e.g. where no working
    `torchrun` command is installed."""
    from torch.distributed import run as torch_run
    from torch.distributed.elastic.multiprocessing import api

    def from_str(vm):
        if re.match(r"^\d$", vm):
            return api.Std(int(vm))
        return {int(k): api.Std(int(v)) for k, v in (p.split(":") for p in vm.split(","))}

    api.Std.from_str = staticmethod(from_str)
    script = next((i for i, a in enumerate(argv) if a.endswith(".py")), len(argv))
    if "--standalone" in argv[:script]:
        i = argv.index("--standalone")
        argv = argv[:i] + [a for a in _free_rendezvous() if a not in argv[:script]] + argv[i + 1 :]
    torch_run.main(argv)
    return 0


def launch_distributed(nproc, args):
    """Runs this script under torchrun with `nproc` local processes (see torchrun)."""
    return torchrun(["--standalone", f"--nproc_per_node={nproc}", os.path.abspath(__file__)] + args)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--torchrun":
        return torchrun(argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--job", help="the job JSON (xalign-torch-job/1)")
    ap.add_argument("--resume", action="store_true", help="continue from the newest checkpoint-N in out_dir")
    ap.add_argument("--probe", action="store_true", help="print what torch offers here as JSON and exit")
    ap.add_argument("--generate", help="a generation job JSON: print the greedy tokens as JSON")
    ap.add_argument("--nproc", type=int, default=0, help="start this many processes under torch.distributed.run (DDP)")
    ap.add_argument("--logits", help="a logits job JSON: print the logits as JSON (for parity tests)")
    args = ap.parse_args(argv)
    if args.logits:
        with open(args.logits, encoding="utf8") as f:
            print(json.dumps({"logits": logits_of(json.load(f))}))
        return 0
    if args.probe:
        print(json.dumps(probe()))
        return 0
    if args.generate:
        with open(args.generate, encoding="utf8") as f:
            print(json.dumps({"tokens": generate(json.load(f))}))
        return 0
    if not args.job:
        ap.error("--job is required")
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        return launch_distributed(args.nproc, ["--job", args.job] + (["--resume"] if args.resume else []))
    with open(args.job, encoding="utf8") as f:
        job = json.load(f)
    if job.get("format") != "xalign-torch-job/1":
        raise SystemExit(f"xalign_torch: {args.job} is not an xalign-torch-job/1 file")
    result = run(job, resume=args.resume)
    return 130 if result["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
