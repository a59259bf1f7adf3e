"""GLA training kernels alone: FLA's chunk_gla (``gla_train: fla``) against ours
(``ops.fused_chunk_gla``, ``gla_train: fused``), forward and forward + backward, at the paper's head
shapes. (BENCHMARKS.md's "fla" rows before 2026-12-07 timed our wrapper keeping FLA's chunk states
for the backward, since deleted; FLA's own chunk_gla recomputes them.)

    source benchmarks/gpu_toolkit.sh && python benchmarks/gla_kernel.py --batch 16,64

Also prints how far each is from an fp64 evaluation of the PyTorch twin (``ops.gla``), as the
relative L2 error of the output and the four gradients, and the time of our exact per-column
path (taken only by chunks whose gate decays by more than 2^96 inside the chunk).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from fla.ops.gla import chunk_gla as fla_chunk_gla
from triton.testing import do_bench

from agreement import rel_err
from recall2reason.models.ops.fused_chunk_gla import fused_chunk_gla
from recall2reason.models.ops.gla import chunk_gla as reference_gla

KERNELS = {
    "fla": lambda q, k, v, g: fla_chunk_gla(q=q, k=k, v=v, g=g)[0],
    "fused": lambda q, k, v, g: fused_chunk_gla(q, k, v, g),
    "fused-exact": lambda q, k, v, g: fused_chunk_gla(q, k, v, g, exact=True),
}


def inputs(B, T, H, K, V, gate_scale=1.0, seed=0):
    """q, k, v as the layer feeds them (silu of a projection), the gate as FLA's GLA layer (logsigmoid / 16)."""
    torch.manual_seed(seed)
    q, k = (F.silu(torch.randn(B, T, H, K, device="cuda")).bfloat16() for _ in range(2))
    v = F.silu(torch.randn(B, T, H, V, device="cuda")).bfloat16()
    g = (F.logsigmoid(torch.randn(B, T, H, K, device="cuda") * gate_scale) / 16).bfloat16()
    return [x.requires_grad_() for x in (q, k, v, g)]


def agreement(args):
    print("| gate | kernel | o | dq | dk | dv | dg |  (relative L2 error vs fp64, batch 2 x 2048)")
    print("|---|---|---|---|---|---|---|")
    for gate_scale in (1.0, 400.0):  # the layer's init; a gate saturated to ~-1.6 per token (exact path)
        xs = inputs(2, 2048, args.heads, args.head_dim, args.head_dim, gate_scale)
        do = torch.randn_like(xs[2])
        ref_o = reference_gla(*[x.double() for x in xs])[0]
        ref = (ref_o, *torch.autograd.grad(ref_o, xs, do.double()))
        for name, fn in KERNELS.items():
            o = fn(*xs)
            got = (o, *torch.autograd.grad(o, xs, do))
            print(f"| x{gate_scale:g} | {name} | " + " | ".join(f"{rel_err(a, b):.2e}" for a, b in zip(got, ref)) + " |")


def timing(args):
    print("\n| batch | kernel | forward (ms) | forward + backward (ms) | per 16 x 2048 (ms) |")
    print("|---|---|---|---|---|")
    for B in (int(b) for b in args.batch.split(",")):
        xs = inputs(B, args.seqlen, args.heads, args.head_dim, args.head_dim)
        do = torch.randn_like(xs[2])
        for name in args.kernels.split(","):
            fn = KERNELS[name]
            fwd = do_bench(lambda: fn(*[x.detach() for x in xs]), warmup=5, rep=50)
            both = do_bench(lambda: torch.autograd.grad(fn(*xs), xs, do), warmup=5, rep=50)
            print(f"| {B} | {name} | {fwd:.3f} | {both:.3f} | {both * 16 / B:.3f} |", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", default="16,64", help="batch sizes to time, comma-separated")
    p.add_argument("--seqlen", type=int, default=2048)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--head-dim", type=int, default=64)
    p.add_argument("--kernels", default="fla,fused", help=f"of {sorted(KERNELS)}, comma-separated")
    p.add_argument("--no-agreement", action="store_true")
    args = p.parse_args()
    print(torch.cuda.get_device_name(), flush=True)
    if not args.no_agreement:
        agreement(args)
    timing(args)


if __name__ == "__main__":
    main()
