"""Two ranks over gloo (torchrun, CPU) train like one process at the same global batch."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from test_pretrain import TINY_MODEL, job_cfg, make_data, read_rows, run_cli


# ddp: DistributedDataParallel's hooks; allreduce: Dist.average_grads after the accumulation (what a
# CUDA-graph micro-step uses on GPUs; the CPU has no graphs, so "auto" means ddp here)
@pytest.mark.parametrize("grad_sync", ["ddp", "allreduce"])
def test_two_processes_match_one_at_the_same_global_batch(tmp_path, grad_sync):
    manifest, tok = make_data(tmp_path / "data", n_tokens=30_000)
    # global batch 16 sequences: 1 process = 2 micro-batches of 8; 2 ranks = 1 micro-batch of 8 each
    cfg = job_cfg(max_steps=12, global_batch_tokens=512, micro_batch_size=8, warmup_steps=3, grad_sync=grad_sync)
    one = run_cli(cfg, manifest, tok, tmp_path / "one", tmp_path / "s1", timeout=80)
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_cli(cfg, manifest, tok, tmp_path / "two", tmp_path / "s2", extra=["--nproc", "2"], timeout=80)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "re-launching under torchrun" in two.stderr and "x 2 ranks" in two.stderr
    how = "DDP" if grad_sync == "ddp" else "all-reduce after accumulation"
    assert f"gradients averaged by {how}" in two.stderr

    r1, r2 = read_rows(tmp_path / "one" / "metrics.jsonl"), read_rows(tmp_path / "two" / "metrics.jsonl")
    assert [r["step"] for r in r1] == [r["step"] for r in r2] == list(range(1, 13))
    for a, b in zip(r1, r2):
        assert a["tokens"] == b["tokens"] and a["lr"] == b["lr"]
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-6)
        assert b["grad_norm"] == pytest.approx(a["grad_norm"], rel=1e-4)
    assert r1[-1]["loss"] < r1[0]["loss"]
    w1, w2 = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    for n in w1:
        torch.testing.assert_close(w2[n], w1[n], rtol=1e-4, atol=1e-5)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
