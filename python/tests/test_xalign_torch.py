"""Unit tests of python/xalign_torch.py's parts that the TypeScript end-to-end tests do not reach on a CPU:
the choice between DDP and FSDP and FSDP's construction arguments (checked on any torch; FSDP itself runs
only on torch >= 2.0, and these tests say so when it cannot), Hugging Face folder loading (sharded
safetensors, pytorch_model.bin), gradient checkpointing, wrapper-prefixed names and the torchrun shim.

    /usr/bin/python3 -m unittest discover -s python/tests -v     # test/launch/runner.test.ts runs this
"""

import json
import os
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

import xalign_torch as xt  # noqa: E402

TINY = {"vocab": 61, "dim": 16, "layers": 2, "heads": 4, "kv_heads": 2, "hidden": 40, "seq": 12, "canon": 3, "tie": False}
TORCH_MAJOR = int(torch.__version__.split(".")[0])


def tiny_model(seed=1, **over):
    model = xt.Llama(xt.bench_config(dict(TINY, **over)))
    model.init_weights(torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("canon.weight"):
                p.normal_(0.0, 0.1, generator=torch.Generator().manual_seed(seed + 1))
    return model


def batch(seed=0, b=3, t=12):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, TINY["vocab"], (b, t), generator=g)
    labels = ids.roll(-1, 1)
    labels[:, :3] = -100
    segments = torch.tensor([[1] * 5 + [2] * 6 + [0]] + [[1] * t] * (b - 1), dtype=torch.int32)
    return ids, labels, (segments > 0).int(), segments


class ParallelChoice(unittest.TestCase):
    def test_plan_defaults_to_ddp_and_reads_fsdp_settings(self):
        self.assertEqual(xt.parallel_plan({}, 1)["mode"], "ddp")
        plan = xt.parallel_plan({"parallel": "fsdp", "fsdp": {"sharding": "shard_grad_op"}, "precision": "bf16"}, 8)
        self.assertEqual(plan, {"mode": "fsdp", "world": 8, "sharding": "shard_grad_op", "wrap": "Layer", "mixed_precision": "bf16"})
        self.assertEqual(xt.parallel_plan({"parallel": "fsdp"}, 2)["sharding"], "full_shard")
        self.assertIsNone(xt.parallel_plan({"parallel": "fsdp", "precision": "fp32"}, 2)["mixed_precision"])
        with self.assertRaisesRegex(SystemExit, "parallel must be one of ddp, fsdp"):
            xt.parallel_plan({"parallel": "zero3"}, 2)
        with self.assertRaisesRegex(SystemExit, "fsdp.sharding must be one of"):
            xt.parallel_plan({"parallel": "fsdp", "fsdp": {"sharding": "hybrid_shard"}}, 2)

    def test_fsdp_arguments_wrap_each_decoder_layer_with_bf16_over_fp32(self):
        fsdp = xt.import_fsdp()  # torch 1.13 under Python 3.11 needs the import shim
        plan = xt.parallel_plan({"parallel": "fsdp", "precision": "bf16"}, 2)
        kw = xt.fsdp_kwargs(plan, torch.device("cpu"))
        self.assertEqual(kw["sharding_strategy"], fsdp.ShardingStrategy.FULL_SHARD)
        self.assertTrue(kw["use_orig_params"], "original parameters: HF names and AdamW decay groups")
        mp = kw["mixed_precision"]
        self.assertEqual((mp.param_dtype, mp.reduce_dtype, mp.buffer_dtype), (torch.bfloat16, torch.float32, torch.bfloat16))
        self.assertNotIn("device_id", kw, "no CUDA device: FSDP is not told to move the module")
        self.assertEqual(xt.fsdp_kwargs(plan, torch.device("cuda", 3))["device_id"], torch.device("cuda", 3))
        policy = kw["auto_wrap_policy"]
        model = tiny_model()
        # The policy (module, recurse, numel): recurse everywhere; wrap exactly the decoder layers.
        wrapped = [name for name, m in model.named_modules() if name and policy(m, False, 0)]
        self.assertEqual(wrapped, ["model.layers.0", "model.layers.1"])
        self.assertTrue(policy(model, True, 0))
        fp32 = xt.fsdp_kwargs(xt.parallel_plan({"parallel": "fsdp"}, 2), torch.device("cpu"))
        self.assertNotIn("mixed_precision", fp32)
        grad_op = xt.fsdp_kwargs(xt.parallel_plan({"parallel": "fsdp", "fsdp": {"sharding": "shard_grad_op"}}, 2), torch.device("cpu"))
        self.assertEqual(grad_op["sharding_strategy"], fsdp.ShardingStrategy.SHARD_GRAD_OP)

    @unittest.skipUnless(TORCH_MAJOR < 2, "this torch can run FSDP")
    def test_fsdp_is_refused_with_the_reason_on_torch_before_2(self):
        why = xt.fsdp_unavailable()
        self.assertRegex(why, r"torch 1\.\S+ is older than 2\.0")
        plan = xt.parallel_plan({"parallel": "fsdp"}, 1)
        with self.assertRaisesRegex(SystemExit, "parallel fsdp cannot run here: torch 1"):
            xt.Parallel(tiny_model(), plan, xt.Dist(torch.device("cpu")), torch.device("cpu"))
        with tempfile.TemporaryDirectory() as d:
            job = {"parallel": "fsdp", "out_dir": d, "model_config": {}, "device": "cpu", "train": {"total_steps": 1}}
            with self.assertRaisesRegex(SystemExit, "use torch >= 2.0, or parallel ddp"):
                xt.run(job)

    @unittest.skipUnless(TORCH_MAJOR >= 2 and torch.cuda.is_available(), "FSDP runs here only with torch >= 2.0 and CUDA")
    def test_fsdp_one_gpu_trains_and_gathers_like_one_process(self):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ.get("XALIGN_TEST_PORT", "29533"), WORLD_SIZE="1", RANK="0", LOCAL_RANK="0")
        import torch.distributed as dist

        device = torch.device("cuda", 0)
        ids, labels, mask, segments = (x.to(device) for x in batch())
        plain = tiny_model().to(device)
        s, _ = plain(ids, labels, mask, segments)
        s.backward()
        plain_grads = {n: p.grad for n, p in plain.named_parameters()}
        dist.init_process_group("nccl", rank=0, world_size=1)
        try:
            par = xt.Parallel(tiny_model(), xt.parallel_plan({"parallel": "fsdp"}, 1), xt.Dist(device), device)
            self.assertEqual(type(par.model.model.layers[0]).__name__, "FullyShardedDataParallel")
            self.assertEqual(sorted(n for n, _ in par.named), sorted(plain_grads))
            s2, _ = par.wrapped(ids, labels, mask, segments)
            s2.backward()
            norm, _ = par.grad_norm()
            weights = par.full_weights()
        finally:
            dist.destroy_process_group()
        self.assertAlmostEqual(s2.item(), s.item(), places=4)
        self.assertAlmostEqual(norm, torch.norm(torch.stack([g.norm() for g in plain_grads.values()])).item(), places=3)
        self.assertEqual(sorted(weights), sorted(plain.state_dict()))


class Loading(unittest.TestCase):
    def test_hf_folders_sharded_safetensors_and_pytorch_bin_load_alike(self):
        model = tiny_model(seed=3)
        state = model.hf_state_dict()
        names = list(state)
        with tempfile.TemporaryDirectory() as d:
            sharded, binary = os.path.join(d, "sharded"), os.path.join(d, "bin")
            os.makedirs(sharded)
            os.makedirs(binary)
            half = len(names) // 2
            weight_map = {}
            for i, part in enumerate((names[:half], names[half:])):
                file = f"model-0000{i + 1}-of-00002.safetensors"
                # float16 on disk, as published LLaMA folders often are: loaded into fp32 master weights.
                xt.write_safetensors(os.path.join(sharded, file), {n: state[n].half() for n in part})
                weight_map.update({n: file for n in part})
            with open(os.path.join(sharded, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {}, "weight_map": weight_map}, f)
            torch.save({**state, "model.layers.0.self_attn.rotary_emb.inv_freq": torch.ones(2)}, os.path.join(binary, "pytorch_model.bin"))
            for folder, tol in ((sharded, 1e-3), (binary, 0.0)):
                loaded = xt.Llama(model.cfg)
                loaded.load_hf(xt.hf_tensors(folder))
                diff = max((loaded.hf_state_dict()[n] - state[n]).abs().max().item() for n in names)
                self.assertLessEqual(diff, tol, folder)
            with self.assertRaisesRegex(FileNotFoundError, "holds no model.safetensors"):
                list(xt.hf_tensors(d))
            partial = xt.Llama(model.cfg)
            with self.assertRaisesRegex(ValueError, "missing weights"):
                partial.load_hf({n: state[n] for n in names[:3]})

    def test_wrapper_prefixes_come_off_names(self):
        self.assertEqual(
            xt.clean_name("_fsdp_wrapped_module.model.layers.0._fsdp_wrapped_module._checkpoint_wrapped_module.mlp.up_proj.weight"),
            "model.layers.0.mlp.up_proj.weight",
        )


class Training(unittest.TestCase):
    def test_gradient_checkpointing_changes_nothing_but_memory(self):
        ids, labels, mask, segments = batch()
        results = []
        for on in (False, True):
            model = tiny_model(seed=5)
            model.checkpointing = on
            model.train()
            s, _ = model(ids, labels, mask, segments)
            s.backward()
            results.append((s.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
        self.assertEqual(results[0][0], results[1][0])
        for n, g in results[0][1].items():
            self.assertTrue(torch.equal(g, results[1][1][n]), n)

    def test_one_process_gathers_weights_and_moments_by_hf_name(self):
        model = tiny_model()
        device = torch.device("cpu")
        par = xt.Parallel(model, xt.parallel_plan({}, 1), xt.Dist(device), device)
        self.assertIs(par.wrapped, model)
        self.assertIs(par.eval_model, model)
        opt = xt.make_optimizer(par.named, {"lr": 1e-2, "weight_decay": 0.1}, device)
        decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
        self.assertNotIn(id(model.model.embed_tokens.weight), decayed)
        self.assertIn(id(model.model.layers[0].mlp.up_proj.weight), decayed)
        ids, labels, mask, segments = batch()
        s, _ = par.wrapped(ids, labels, mask, segments)
        s.backward()
        norm, grads = par.grad_norm()
        self.assertAlmostEqual(norm, torch.norm(torch.stack([g.norm() for g in grads])).item(), places=5)
        opt.step()
        weights, moments = par.full_weights(), par.full_moments(opt)
        self.assertEqual(list(weights), list(model.state_dict()))
        up = "model.layers.0.mlp.up_proj.weight"
        # Projection moments in the TF.js trainer's [in, out] layout.
        self.assertEqual(list(moments[f"{up}.exp_avg"].shape), list(reversed(model.state_dict()[up].shape)))
        fresh = xt.Parallel(tiny_model(), xt.parallel_plan({}, 1), xt.Dist(device), device)
        opt2 = xt.make_optimizer(fresh.named, {"lr": 1e-2, "weight_decay": 0.1}, device)
        fresh.load_moments(opt2, moments, 1)
        self.assertTrue(torch.equal(opt2.state[fresh.model.model.layers[0].mlp.up_proj.weight]["exp_avg"], opt.state[model.model.layers[0].mlp.up_proj.weight]["exp_avg"]))


class Benchmarks(unittest.TestCase):
    def test_benchmarks_train_the_runners_model(self):
        import importlib.util

        bench = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
        for path in (os.path.join(bench, "torch_baseline.py"), os.path.join(bench, "gpu", "torch_gpu.py")):
            spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            own = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module.__name__]
            self.assertEqual(own, [], f"{path} defines no model of its own")
            shape = dict(vocab=32, dim=8, layers=1, heads=2, hidden=16, seq=4, batch=1, eps=1e-5, tie=False)
            model = module.make_model(shape) if "baseline" in path else module.make_model(shape, torch.device("cpu"))
            self.assertIsInstance(model, xt.Llama, path)


class ProcessGroup(unittest.TestCase):
    def test_a_single_process_group_starts_on_a_free_port(self):
        saved = {k: os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")}
        for k in saved:
            os.environ.pop(k, None)
        try:
            d = xt.Dist(torch.device("cpu"), group=True)
            self.assertTrue(d.started and not d.on)
            self.assertEqual(d.all_sum([2.5], torch.device("cpu")), [2.5])
            d.close()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


class Torchrun(unittest.TestCase):
    def test_standalone_becomes_a_free_port_rendezvous(self):
        from torch.distributed import run as torch_run

        seen = []
        original = torch_run.main
        torch_run.main = seen.append
        try:
            xt.torchrun(["--standalone", "--nproc_per_node=2", "script.py", "--job", "j.json", "--standalone"])
        finally:
            torch_run.main = original
        argv = seen[0]
        self.assertNotIn("--standalone", argv[: argv.index("script.py")])
        self.assertEqual(argv[argv.index("script.py") :], ["script.py", "--job", "j.json", "--standalone"])
        self.assertIn("--rdzv_backend=c10d", argv)
        self.assertTrue(any(a.startswith("--rdzv_endpoint=127.0.0.1:") for a in argv))


if __name__ == "__main__":
    unittest.main()
