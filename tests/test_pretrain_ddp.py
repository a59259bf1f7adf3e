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


def _average_grads_rank(rank: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as td

    from recall2reason.pretrain.distributed import Dist

    td.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)  # the same parameters on both ranks, rank-dependent gradients
        params = [torch.nn.Parameter(torch.zeros(n)) for n in (3, 4, 1, 6, 2)]
        for i, p in enumerate(params[:-1]):  # the last has no gradient on rank 1
            p.grad = torch.full_like(p, float(10 * i + rank))
        if rank == 0:
            params[-1].grad = torch.full_like(params[-1], 4.0)
        Dist(rank=rank, world=2).average_grads(params, bucket_elems=5)  # several buckets, one split mid-list
        torch.save([p.grad for p in params], f"{out_dir}/grads{rank}.pt")
    finally:
        td.destroy_process_group()


def test_average_grads_is_the_mean_over_ranks_bucket_by_bucket(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_average_grads_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        grads = torch.load(tmp_path / f"grads{rank}.pt")
        for i, g in enumerate(grads[:-1]):
            torch.testing.assert_close(g, torch.full_like(g, 10 * i + 0.5))
        torch.testing.assert_close(grads[-1], torch.full((2,), 2.0))  # (4 + 0) / 2: a missing grad counts as zero
