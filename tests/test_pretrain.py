"""Pretrain stage: recipe (schedule, decay groups), data order, fused loss, input checks, CLI run."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recall2reason.common.cfg import ConfigError
from recall2reason.models import build_model, load_model
from recall2reason.pretrain.config import PretrainJob, TrainConfig
from recall2reason.pretrain.data import DataOrder
from recall2reason.pretrain.flops import train_flops_per_token
from recall2reason.pretrain.loss import fused_linear_cross_entropy
from recall2reason.pretrain.schedule import build_optimizer, lr_at, param_groups

VOCAB = 96
TINY_MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "n_kv_heads": 2, "vocab_size": VOCAB, "max_seq_len": 64,
              "backend": "reference"}


def make_data(root: Path, n_tokens: int = 40_000, seq_len: int = 32, epochs: float = 1.0, vocab: int = VOCAB,
              n_shards: int = 2, seed: int = 0) -> tuple[Path, Path]:
    """A tokenizer file and an r2r-tokens-v1 manifest over uint16 shards of learnable documents
    (arithmetic progressions mod vocab, each ended by EOS=2)."""
    root.mkdir(parents=True, exist_ok=True)
    tok = root / "tokenizer.model"
    tok.write_bytes(b"fake sentencepiece model " + str(seed).encode())
    rng = np.random.default_rng(seed)
    docs = []
    total = 0
    while total < n_tokens:
        n, a, b = rng.integers(5, 40), rng.integers(3, vocab), rng.integers(1, 7)
        d = np.concatenate([3 + (a + b * np.arange(n)) % (vocab - 3), [2]])
        docs.append(d)
        total += len(d)
    stream = np.concatenate(docs)[:n_tokens].astype(np.uint16)
    shards = []
    for k, part in enumerate(np.array_split(stream, n_shards)):
        f = root / f"shard_{k:05d}.bin"
        f.write_bytes(part.tobytes())
        shards.append({"file": f.name, "n_tokens": int(len(part)), "sha256": hashlib.sha256(part.tobytes()).hexdigest()})
    manifest = {
        "format": "r2r-tokens-v1", "tokenizer_sha256": hashlib.sha256(tok.read_bytes()).hexdigest(),
        "vocab_size": vocab, "bos_id": 1, "eos_id": 2, "dtype": "uint16", "seq_len": seq_len, "shards": shards,
        "n_sequences": (n_tokens - 1) // seq_len, "tokens_per_epoch": n_tokens, "epochs": epochs,
        "total_tokens": int(n_tokens * epochs), "seed": seed,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root / "manifest.json", tok


def job_cfg(name="tiny", model=None, **train) -> dict:
    t = {"global_batch_tokens": 256, "micro_batch_size": 4, "warmup_steps": 5, "precision": "fp32", "compile": False,
         "log_every": 1, "max_steps": 20}
    t.update(train)
    return {"name": name, "model": model or TINY_MODEL, "train": t}


def run_cli(cfg: dict, manifest: Path, tok: Path, out: Path, state: Path, extra=(), **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "recall2reason.pretrain", "--cfg", json.dumps(cfg), "--data", str(manifest),
           "--tokenizer", str(tok), "--out-dir", str(out), "--state-dir", str(state), "--device", "cpu", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- recipe ------------------------------------------------------------------------------------

def test_schedule_values_at_given_steps():
    peak, warm, total, r = 1e-3, 5000, 70_000, 0.1
    assert lr_at(1, peak, warm, total, r) == pytest.approx(peak / 5000)
    assert lr_at(2500, peak, warm, total, r) == pytest.approx(peak / 2)
    assert lr_at(5000, peak, warm, total, r) == pytest.approx(peak)
    mid = warm + (total - warm) // 2
    assert lr_at(mid, peak, warm, total, r) == pytest.approx(peak * (r + (1 - r) * 0.5))  # cosine midpoint
    q = warm + (total - warm) // 4
    assert lr_at(q, peak, warm, total, r) == pytest.approx(peak * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi / 4))))
    assert lr_at(total, peak, warm, total, r) == pytest.approx(peak * r)  # 10 % of peak at the end
    assert lr_at(total + 100, peak, warm, total, r) == pytest.approx(peak * r)
    lrs = [lr_at(s, peak, warm, total, r) for s in range(warm, total + 1, 997)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # monotone decay after warmup
    with pytest.raises(ValueError):
        lr_at(0, peak, warm, total, r)


def test_weight_decay_on_every_parameter_by_default():
    model = build_model(TINY_MODEL)
    cfg = TrainConfig()
    groups = param_groups(model, cfg)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.1
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.parameters()}
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    g = opt.param_groups[0]
    assert g["lr"] == 1e-3 and g["betas"] == (0.9, 0.95) and g["eps"] == 1e-8 and g["weight_decay"] == 0.1
    # the OLMo switches move norms/biases and the embedding out of the decay group
    off = param_groups(model, TrainConfig(decay_norm_and_bias=False, decay_embeddings=False))
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = sorted(names[id(p)] for p in off[1]["params"])
    assert off[1]["weight_decay"] == 0.0
    assert "embed.weight" in no_decay and "final_norm.weight" in no_decay
    assert all(n == "embed.weight" or "norm" in n for n in no_decay)
    assert not any(n.endswith(("q_proj.weight", "lm_head.weight")) for n in no_decay)


def test_config_is_strict():
    with pytest.raises(ConfigError, match="train.lr_peak"):
        PretrainJob.from_dict({"name": "x", "model": {}, "train": {"lr_peak": 1}})
    with pytest.raises(ConfigError, match="final_lr_ratio"):
        TrainConfig(final_lr_ratio=1.5)
    job = PretrainJob.from_dict(job_cfg())
    assert job.train.betas == (0.9, 0.95) and job.train.max_steps == 20


def test_config_yaml_train_section_builds():
    import yaml

    root = Path(__file__).resolve().parents[1]
    train = yaml.safe_load((root / "config.yaml").read_text())["train"]
    cfg = PretrainJob.from_dict({"name": "t", "model": {}, "train": train}).train
    assert cfg.global_batch_tokens == 524288 and cfg.warmup_steps == 5000 and cfg.precision == "bf16"
    schema = yaml.safe_load((root / "workflow/schemas/sections/train.schema.yaml").read_text())
    assert set(schema["properties"]) == set(TrainConfig.__dataclass_fields__) - {"RESUME_KEYS"}
    import jsonschema

    jsonschema.validate(train, schema)


def test_micro_batch_per_model_resolves_for_each_job():
    from recall2reason.pretrain.config import job_train_section, micro_batch_errors

    train = {"global_batch_tokens": 4096, "micro_batch_size": {"default": 8, "transformer": 16}}
    assert job_train_section("transformer", train)["micro_batch_size"] == 16
    assert job_train_section("gla50", train)["micro_batch_size"] == 8
    assert job_train_section("gla50", {"micro_batch_size": 4}) == {"micro_batch_size": 4}
    assert PretrainJob.from_dict({"name": "transformer", "model": {}, "train": train}).train.micro_batch_size == 16
    with pytest.raises(ConfigError, match="needs a 'default' entry"):
        job_train_section("gla50", {"micro_batch_size": {"transformer": 16}})
    assert micro_batch_errors(train, ["transformer", "gla50"]) == []
    assert micro_batch_errors({"micro_batch_size": {"default": 8, "gla5": 4}}, ["gla50"]) == [
        "train.micro_batch_size.gla5: no model of that name; models: gla50"]


def test_flop_convention():
    # 6N + 12 d T per attention layer
    assert train_flops_per_token(100, 8, 2, 16) == 600 + 12 * 8 * 16 * 2


# ---- data order -------------------------------------------------------------------------------

def test_data_order_is_a_function_of_seed_epoch_step():
    a, b = DataOrder(100, 16, seed=7), DataOrder(100, 16, seed=7)
    assert np.array_equal(a.step_ids(5), b.step_ids(5))
    assert not np.array_equal(a.step_ids(1), DataOrder(100, 16, seed=8).step_ids(1))
    # steps 1..ceil cover epoch 0 exactly once, then epoch 1 starts with a different permutation
    first = np.concatenate([a.step_ids(s) for s in range(1, 8)])[:100]
    assert sorted(first.tolist()) == list(range(100))
    ids7 = a.step_ids(7)  # global positions 96..111: 4 from epoch 0, 12 from epoch 1
    assert np.array_equal(ids7[:4], a.permutation(0)[96:])
    assert np.array_equal(ids7[4:], a.permutation(1)[:12])
    assert not np.array_equal(a.permutation(0), a.permutation(1))


# ---- loss ---------------------------------------------------------------------------------------

def test_fused_loss_matches_model_loss_and_grads():
    torch.manual_seed(0)
    model = build_model(TINY_MODEL)
    x = torch.randint(0, VOCAB, (3, 41))
    ref = torch.nn.functional.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())
    ref.backward()
    g_ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    out = fused_linear_cross_entropy(model.hidden(x[:, :-1]), model.lm_head.weight, x[:, 1:], chunk_tokens=37)
    (2 * out).backward()  # the incoming gradient scales the stored ones
    assert out.item() == pytest.approx(ref.item(), rel=1e-6)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, 2 * g_ref[n], rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        assert fused_linear_cross_entropy(model.hidden(x[:, :-1]), model.lm_head.weight, x[:, 1:]).item() == pytest.approx(ref.item(), rel=1e-6)


def test_residual_stream_dtype_under_bf16_autocast():
    """train.residual_dtype: "compute" carries the stream between blocks in bf16 (as OLMo's bf16
    parameters do), "fp32" leaves plain autocast's fp32 stream; both train the same function."""
    from recall2reason.pretrain.train import LossModule

    x = torch.randint(0, VOCAB, (2, 33), generator=torch.Generator().manual_seed(1))
    losses, grads = {}, {}
    for mode in ("compute", "fp32"):
        torch.manual_seed(0)
        model = build_model(TINY_MODEL)
        seen = []
        for block in model.blocks:
            block.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
        step = LossModule(model, TrainConfig(precision="bf16", residual_dtype=mode, compile=False))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = step(x[:, :-1], x[:, 1:])
        loss.backward()
        assert seen == [torch.bfloat16 if mode == "compute" else torch.float32] * len(model.blocks)
        assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
        losses[mode], grads[mode] = loss.item(), model.embed.weight.grad
    assert losses["compute"] == pytest.approx(losses["fp32"], rel=2e-2)
    assert torch.nn.functional.cosine_similarity(grads["compute"].flatten(), grads["fp32"].flatten(), dim=0) > 0.99
    with pytest.raises(ConfigError, match="residual_dtype"):
        PretrainJob.from_dict(job_cfg(residual_dtype="bf16"))


def test_compile_scopes_train_the_eager_function():
    """train.compile_scope: one graph over the whole model ("model") or one per block ("blocks")
    computes the eager loss and gradients and keeps the state-dict keys (checkpoints load either way)."""
    from recall2reason.pretrain.train import LossModule, compile_model

    x = torch.randint(0, VOCAB, (2, 33), generator=torch.Generator().manual_seed(1))
    cfg = TrainConfig(precision="fp32", compile=False)

    def loss_and_grads(scope):
        torch.manual_seed(0)
        model = build_model(TINY_MODEL)
        keys = list(model.state_dict())
        if scope:
            compile_model(model, scope)
        loss = LossModule(model, cfg)(x[:, :-1], x[:, 1:])
        loss.backward()
        assert list(model.state_dict()) == keys
        return loss.item(), {n: p.grad for n, p in model.named_parameters()}

    want_loss, want_grads = loss_and_grads(None)
    for scope in ("model", "blocks"):
        torch._dynamo.reset()
        torch._dynamo.utils.counters.clear()
        loss, grads = loss_and_grads(scope)
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, f"{scope}: nothing was compiled"
        assert loss == pytest.approx(want_loss, rel=1e-5), scope
        for n, g in want_grads.items():
            torch.testing.assert_close(grads[n], g, rtol=1e-4, atol=1e-6, msg=lambda m: f"{scope}, {n}: {m}")
    with pytest.raises(ValueError, match="compile scope"):
        compile_model(build_model(TINY_MODEL), "layers")
    with pytest.raises(ConfigError, match="compile_scope"):
        PretrainJob.from_dict(job_cfg(compile_scope="layers"))



def test_build_run_restores_before_compile_and_steps_as_train_step():
    """build_run: the trainer's step, wired once (train(), benchmarks/train_throughput.py,
    benchmarks/profile_gpu.py). The resume hook sees the bare model and optimizer, before
    torch.compile wraps the model; TrainRun.step is train_step over the run's pieces."""
    from recall2reason.models import ModelConfig
    from recall2reason.pretrain.train import LossModule, build_run, train_step

    cfg = TrainConfig(precision="fp32", compile=True, seed=7)
    seen = []
    run = build_run(cfg, ModelConfig.from_dict(TINY_MODEL), torch.device("cpu"), n_micro=2,
                    restore=lambda model, opt: seen.append(("hidden" in vars(model), len(opt.param_groups))))
    assert seen == [(False, 1)] and "hidden" in vars(run.model)  # compiled (lazily) after the restore
    assert run.graphed is None and run.ddp is None and run.grad_sync is None  # CPU, one process
    torch.manual_seed(7)
    fresh = build_model(TINY_MODEL)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), run.model.state_dict().values()))

    cfg = TrainConfig(precision="fp32", compile=False, seed=7)
    a = build_run(cfg, ModelConfig.from_dict(TINY_MODEL), torch.device("cpu"), n_micro=2)
    torch.manual_seed(7)
    model = build_model(TINY_MODEL)
    opt = build_optimizer(model, cfg, torch.device("cpu"))
    b = LossModule(model, cfg)
    x = torch.randint(0, VOCAB, (3, 2, 2, 33), generator=torch.Generator().manual_seed(1))
    for step in range(3):
        micro = [(x[step, i, :, :-1], x[step, i, :, 1:]) for i in range(2)]
        la, ga = a.step(micro, 1e-3)
        lb, gb = train_step(b, None, opt, list(model.parameters()), micro, 2, 1e-3, cfg, torch.device("cpu"))
        assert torch.equal(la, lb) and torch.equal(ga, gb), step
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), model.parameters()))

# ---- the stage end to end -----------------------------------------------------------------------

def test_cli_trains_and_writes_outputs(tmp_path):
    manifest, tok = make_data(tmp_path / "data", epochs=2.0)
    out, state = tmp_path / "out", tmp_path / "state"
    cfg = job_cfg(max_steps=None, global_batch_tokens=512, micro_batch_size=8, log_every=10, warmup_steps=10, lr=3e-3)
    r = run_cli(cfg, manifest, tok, out, state, timeout=80)
    assert r.returncode == 0, r.stderr[-3000:]
    n_seq = (40_000 - 1) // 32
    total = math.floor(n_seq * 2.0 / 16)  # two epochs of 16-sequence batches
    rows = read_rows(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1] + list(range(10, total, 10)) + [total]
    assert set(rows[0]) == {"step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "elapsed_s"}
    assert rows[-1]["tokens"] == total * 512 and rows[-1]["lr"] == pytest.approx(3e-4)
    assert rows[-1]["loss"] < rows[0]["loss"] - 1.0  # it learns the progressions
    meta = json.loads((out / "config.json").read_text())
    assert meta["name"] == "tiny" and meta["tokens_seen"] == total * 512 and meta["train"]["lr"] == 3e-3
    assert meta["tokenizer_sha256"] == json.loads(manifest.read_text())["tokenizer_sha256"]
    model, _ = load_model(out)
    assert model.cfg.vocab_size == VOCAB
    assert "it/s" in r.stderr or "step/s" in r.stderr or "s/step" in r.stderr  # the progress bar
    # a re-run (e.g. Snakemake deleted the outputs) restores them from the finished state without training
    for f in out.iterdir():
        f.unlink()
    r2 = run_cli(cfg, manifest, tok, out, state, timeout=60)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert read_rows(out / "metrics.jsonl") == rows


def test_refuses_other_tokenizer_and_small_vocab(tmp_path):
    manifest, tok = make_data(tmp_path / "data", n_tokens=5000)
    other = tmp_path / "other.model"
    other.write_bytes(b"another tokenizer")
    r = run_cli(job_cfg(), manifest, other, tmp_path / "o", tmp_path / "s", timeout=60)
    assert r.returncode == 2 and "tokenizer sha256" in r.stderr and not (tmp_path / "o").exists()
    r = run_cli(job_cfg(model={**TINY_MODEL, "vocab_size": VOCAB - 1}), manifest, tok, tmp_path / "o", tmp_path / "s", timeout=60)
    assert r.returncode == 2 and "smaller than the tokenizer" in r.stderr
    r = run_cli(job_cfg(global_batch_tokens=96), manifest, tok, tmp_path / "o", tmp_path / "s", timeout=60)
    assert r.returncode == 2 and "micro_batch_size" in r.stderr
    r = run_cli({**job_cfg(), "train": {"warmup": 3}}, manifest, tok, tmp_path / "o", tmp_path / "s", timeout=60)
    assert r.returncode == 2 and "train.warmup" in r.stderr


def test_failed_capture_before_any_backward_trains_eagerly(monkeypatch):
    """A capture that fails before the first backward (an OOM in warm-up while other jobs share the
    GPU) leaves no .grad at all: the step must fall back to eager, as the docstring promises."""
    from recall2reason.pretrain.graphs import GraphedMicroStep

    def oom(self, inputs, targets):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.95 GiB")

    monkeypatch.setattr(GraphedMicroStep, "capture", oom)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 1)
    loss_fn = lambda x, y: torch.nn.functional.mse_loss(lin(x).squeeze(-1), y)  # noqa: E731
    step = GraphedMicroStep(loss_fn, lin.parameters(), n_micro=2, bf16=False)
    x, y = torch.randn(8, 4), torch.randn(8)
    assert step(x, y).item() == loss_fn(x, y).item()
    assert "OutOfMemoryError" in step.failed and step.graph is None
    g = lin.weight.grad.clone()
    step(x, y)  # eager from now on: the second micro-batch accumulates
    torch.testing.assert_close(lin.weight.grad, 2 * g)
