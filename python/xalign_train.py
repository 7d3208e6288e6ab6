"""xalign's PyTorch entry point: one instruction-tuning stage with Hugging Face's
Trainer and FSDP, started by torchrun from the JSON config `xalign launch` writes.

    torchrun --standalone --nproc_per_node=8 python/xalign_train.py --config runs/x/launch/sft.json
    python3 python/xalign_train.py --config runs/x/launch/sft.json --dump-encoded encoded.jsonl

The training sequence is exactly xalign's (src/data/encode.ts, src/data/prompt.ts):
the Alpaca (or chat) prompt and the response are encoded separately with no
special tokens, ids = BOS + prompt + response + EOS, cut on the right to
max_length, and the loss is on the response and the EOS only. The tokenizer is
the tokenizer.json xalign saved, read with the same Rust `tokenizers` library,
and the BOS/EOS/PAD ids come from the config, so both engines see the same ids.

Metrics go to stdout as `XALIGN_METRICS {json}` lines (rank 0), which xalign
streams into <stage>/metrics.jsonl and its progress display; --metrics-file
also appends them to a file (the Slurm script uses it).

Only the standard library is imported at module level, so the encoding can be
checked (and --dump-encoded run) without torch.
"""

import argparse
import json
import os
import re
import signal
import sys
import time

IGNORE_INDEX = -100
METRICS_PREFIX = "XALIGN_METRICS "

# Stanford Alpaca's PROMPT_DICT, verbatim (= src/data/prompt.ts).
ALPACA_PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
CHAT_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


# ---------------------------------------------------------------- encoding


def render_prompt(record, fmt="alpaca"):
    """(prompt, response) of an {instruction, input, output} record, as renderPrompt."""
    instruction, output = record["instruction"], record["output"]
    inp = record.get("input") or ""
    if fmt == "chat":
        user = instruction if inp == "" else f"{instruction}\n\n{inp}"
        # The space after "ASSISTANT:" belongs to the response, as in renderChat.
        return "\n".join([CHAT_SYSTEM, f"USER: {user}", "ASSISTANT:"]), " " + output
    template = ALPACA_PROMPT_NO_INPUT if inp == "" else ALPACA_PROMPT_WITH_INPUT
    values = {"instruction": instruction, "input": inp}
    # One pass, so "{input}" inside the user's text stays literal.
    return re.sub(r"\{(instruction|input)\}", lambda m: values[m.group(1)], template), output


def encode_example(record, tokenizer, max_length, fmt="alpaca"):
    """Token ids and next-token labels (xalign's layout: labels[t] is the target of position t).

    `tokenizer` has encode(text) -> ids without special tokens, and bos_id, eos_id.
    """
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2, got {max_length}")
    prompt, response = render_prompt(record, fmt)
    prompt_ids = tokenizer.encode(prompt)
    response_ids = tokenizer.encode(response)
    full = [tokenizer.bos_id, *prompt_ids, *response_ids, tokenizer.eos_id]
    truncated = len(full) > max_length
    input_ids = full[:max_length]
    response_start = 1 + len(prompt_ids)
    n = len(input_ids)
    labels = [input_ids[t + 1] if t + 1 < n and t + 1 >= response_start else IGNORE_INDEX for t in range(n)]
    return {
        "input_ids": input_ids,
        "labels": labels,
        "attention_mask": [1] * n,
        "prompt_length": min(response_start, n),
        "supervised_tokens": sum(1 for v in labels if v != IGNORE_INDEX),
        "truncated": truncated,
    }


def hf_labels(labels):
    """xalign's shifted labels -> Hugging Face's (the model shifts them itself)."""
    return [IGNORE_INDEX, *labels[:-1]]


class JsonTokenizer:
    """A tokenizer.json read with Hugging Face `tokenizers`, ids from the xalign config."""

    def __init__(self, spec):
        from tokenizers import Tokenizer

        self.native = Tokenizer.from_file(spec["path"])
        self.bos_id, self.eos_id, self.pad_id = spec["bos_id"], spec["eos_id"], spec["pad_id"]

    def encode(self, text):
        return self.native.encode(text, add_special_tokens=False).ids


def read_records(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()] if path.endswith(".jsonl") else json.load(f)


def dump_encoded(config, out_path, tokenizer=None):
    """Writes the encoded training records as JSONL, for comparison with encodeExample."""
    tokenizer = tokenizer or JsonTokenizer(config["tokenizer"])
    data = config["data"]
    with open(out_path, "w", encoding="utf-8") as out:
        for record in read_records(data["train"]):
            enc = encode_example(record, tokenizer, data["max_length"], data["prompt_format"])
            out.write(json.dumps(enc, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- metrics and stopping


class MetricsSink:
    def __init__(self, path=None):
        self.path = path

    def emit(self, record):
        line = json.dumps(record)
        print(METRICS_PREFIX + line, flush=True)
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


STOP_REQUESTED = False


def request_stop(signum, _frame):
    # Stop at the next step boundary (all ranks agree, see StopCallback) and save.
    global STOP_REQUESTED
    STOP_REQUESTED = True


def make_callbacks(sink, patience):
    import torch
    import torch.distributed as dist
    from transformers import TrainerCallback

    class JsonLineMetrics(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.started = self.last_time = time.time()
            self.last_tokens = 0
            if state.is_world_process_zero:
                sink.emit({"event": "start", "total_steps": state.max_steps, "world_size": args.world_size})

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs:
                return
            now = time.time()
            if "loss" in logs:
                tokens = state.num_input_tokens_seen
                record = {
                    "split": "train",
                    "step": state.global_step,
                    "epoch": logs.get("epoch"),
                    "loss": logs["loss"],
                    "lr": logs.get("learning_rate"),
                    "grad_norm": logs.get("grad_norm"),
                    "input_tokens_per_s": (tokens - self.last_tokens) / max(now - self.last_time, 1e-9),
                    "elapsed_s": now - self.started,
                }
                self.last_time, self.last_tokens = now, tokens
                sink.emit(record)
            elif "eval_loss" in logs:
                sink.emit({"split": "validation", "step": state.global_step, "loss": logs["eval_loss"]})

    class StopCallback(TrainerCallback):
        """Early stopping as xalign's trainer does it, and a clean stop on SIGTERM/SIGINT."""

        best, bad_evals = None, 0

        def on_step_end(self, args, state, control, **kw):
            flag = torch.tensor([1.0 if STOP_REQUESTED else 0.0], device=args.device)
            if dist.is_available() and dist.is_initialized():
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            if flag.item() > 0:
                control.should_training_stop = True
                control.should_save = True
                if state.is_world_process_zero:
                    sink.emit({"event": "interrupted", "step": state.global_step})

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            loss = (metrics or {}).get("eval_loss")
            if loss is None or patience is None:
                return
            if self.best is None or loss < self.best:
                self.best, self.bad_evals = loss, 0
            else:
                self.bad_evals += 1
                if self.bad_evals >= patience:
                    control.should_training_stop = True

    return [JsonLineMetrics(), StopCallback()]


# ---------------------------------------------------------------- training


class EncodedDataset:
    def __init__(self, records, tokenizer, data):
        self.items = [encode_example(r, tokenizer, data["max_length"], data["prompt_format"]) for r in records]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        e = self.items[i]
        return {"input_ids": e["input_ids"], "labels": hf_labels(e["labels"]), "attention_mask": e["attention_mask"]}


def collate(pad_id):
    import torch

    def pad_batch(features):
        width = max(len(f["input_ids"]) for f in features)

        def column(key, fill):
            return torch.tensor([f[key] + [fill] * (width - len(f[key])) for f in features], dtype=torch.long)

        return {"input_ids": column("input_ids", pad_id), "labels": column("labels", IGNORE_INDEX), "attention_mask": column("attention_mask", 0)}

    return pad_batch


def build_model(spec, seed):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if spec.get("from"):
        return LlamaForCausalLM.from_pretrained(spec["from"], torch_dtype=torch.float32)
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**spec["config"]))


def train(config, metrics_file=None, resume=False):
    import shutil

    from transformers import Trainer, TrainingArguments

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    tokenizer = JsonTokenizer(config["tokenizer"])
    data, extra = config["data"], config["xalign"]
    train_set = EncodedDataset(read_records(data["train"]), tokenizer, data)
    eval_set = None
    if data.get("validation"):
        records = read_records(data["validation"])
        eval_set = EncodedDataset(records[: data.get("max_eval_examples") or len(records)], tokenizer, data)
    no_decay = [re.compile(p) for p in extra["no_decay"]]

    class XalignTrainer(Trainer):
        # xalign's no_decay regular expressions decide, not HF's LayerNorm/bias rule.
        def get_decay_parameter_names(self, model):
            return [n for n, _ in model.named_parameters() if not any(p.search(n) for p in no_decay)]

    args = TrainingArguments(**config["training_arguments"])
    model = build_model(config["model"], args.seed)
    trainer = XalignTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collate(tokenizer.pad_id),
        callbacks=make_callbacks(MetricsSink(metrics_file), extra.get("early_stopping_patience")),
    )
    has_checkpoint = any(d.startswith("checkpoint-") for d in os.listdir(args.output_dir)) if os.path.isdir(args.output_dir) else False
    trainer.train(resume_from_checkpoint=True if resume and has_checkpoint else None)
    if STOP_REQUESTED:
        return 130
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    final_dir = extra["final_dir"]
    trainer.save_model(final_dir)
    if trainer.is_world_process_zero():
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            source = os.path.join(os.path.dirname(config["tokenizer"]["path"]), name)
            if os.path.exists(source):
                shutil.copy(source, os.path.join(final_dir, name))
        MetricsSink(metrics_file).emit({"event": "done", "step": trainer.state.global_step, "final_dir": final_dir})
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the stage's JSON config written by `xalign launch`")
    parser.add_argument("--metrics-file", help="also append metrics JSON lines to this file (rank 0)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint-N in the output folder")
    parser.add_argument("--dump-encoded", metavar="OUT.jsonl", help="write the encoded training records and exit (no torch needed)")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as f:
        config = json.load(f)
    if config.get("format") != "xalign-launch/1":
        sys.exit(f"{args.config}: not an xalign launch config (format {config.get('format')!r}); write it with `xalign launch`")
    if args.dump_encoded:
        dump_encoded(config, args.dump_encoded)
        return 0
    return train(config, args.metrics_file, args.resume)


if __name__ == "__main__":
    sys.exit(main())
