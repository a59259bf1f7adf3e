"""One-node data parallelism: torchrun detection, self-relaunch, process group, reductions.

A pretrain job given more than one GPU re-launches *itself* under
``python -m torch.distributed.run --standalone --nproc-per-node N`` (so the Snakemake rule stays
one plain command whatever ``resources.gpus`` is). N is ``--nproc`` when given, else the number of
visible CUDA devices (``torch.cuda.device_count()``, which honours ``CUDA_VISIBLE_DEVICES`` as set
by SLURM for ``--gpus`` / ``SLURM_GPUS_ON_NODE``). Under torchrun each rank uses
``cuda:LOCAL_RANK`` with NCCL, or the CPU with gloo (tests). The model is replicated (150M
parameters: optimizer state fits every GPU many times, so FSDP would only add traffic) and its
gradients averaged either by DDP or, when the micro-step is a CUDA-graph replay, by
``Dist.average_grads`` after the accumulation (``train.grad_sync``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as td


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def visible_gpus() -> int:
    if not torch.cuda.is_available():
        return 0
    n = torch.cuda.device_count()
    slurm = os.environ.get("SLURM_GPUS_ON_NODE")
    if slurm and slurm.isdigit() and "CUDA_VISIBLE_DEVICES" not in os.environ:
        n = min(n, int(slurm))
    return n


def relaunch_with_torchrun(nproc: int, argv: list[str]) -> None:
    """Replace this process with torchrun running the same stage command on ``nproc`` ranks."""
    # drop our --nproc: torchrun's parser would take it for an abbreviation of its --nproc-per-node
    rest, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "recall2reason.pretrain", *rest]
    print(f"pretrain: {nproc} devices -> re-launching under torchrun: {' '.join(cmd)}", file=sys.stderr, flush=True)
    os.execv(sys.executable, cmd)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            td.barrier()

    def mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            t = t.clone()
            td.all_reduce(t, op=td.ReduceOp.SUM)
            t /= self.world
        return t

    def broadcast_params(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers to every rank (what DDP does when it wraps a module)."""
        if self.enabled:
            with torch.no_grad():
                for t in [*module.parameters(), *module.buffers()]:
                    td.broadcast(t, src=0)

    def average_grads(self, params: list[torch.Tensor], bucket_elems: int = 1 << 24) -> None:
        """Mean of every ``.grad`` over ranks, in place: all-reduces of flat buckets of ~64 MB
        (fp32), once per optimizer step. The alternative to DDP's hooks when the backward is a
        CUDA-graph replay (``train.grad_sync``)."""
        if not self.enabled:
            return
        for p in params:
            if p.grad is None:  # every rank must reduce the same list
                p.grad = torch.zeros_like(p)
        bucket: list[torch.Tensor] = []
        size = 0
        for i, p in enumerate(params):
            bucket.append(p.grad)
            size += p.grad.numel()
            if size >= bucket_elems or i == len(params) - 1:
                flat = torch._utils._flatten_dense_tensors(bucket)
                td.all_reduce(flat, op=td.ReduceOp.SUM)
                flat /= self.world
                for g, r in zip(bucket, torch._utils._unflatten_dense_tensors(flat, bucket)):
                    g.copy_(r)
                bucket, size = [], 0

    def any(self, flags: list[bool]) -> list[bool]:
        """Element-wise OR of host-side flags over ranks (one small collective)."""
        if not self.enabled:
            return flags
        t = torch.tensor([float(f) for f in flags], device=self.device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def close(self) -> None:
        if self.enabled and td.is_initialized():
            td.destroy_process_group()


def init_distributed(device: str = "auto") -> Dist:
    """Set up this process: a single process, or one rank of a torchrun job."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but CUDA is not available")
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return Dist(device=torch.device("cuda", 0) if use_cuda else torch.device("cpu"))
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
        td.init_process_group("nccl", device_id=dev)
    else:
        dev = torch.device("cpu")
        td.init_process_group("gloo")
    return Dist(rank=rank, world=world, local_rank=local, device=dev)
