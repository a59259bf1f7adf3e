"""The memory roofline of one decode step: the bytes it must move through HBM, over the bandwidth.

A decode step of B rows is memory-bound at the study's sizes: it reads every weight once (the
embedding only its B rows), each attention layer's K / V cache up to each row's own position (and
writes one new entry), each recurrent layer's state once and writes it back, and writes the
logits that the sampler then reads. The step cannot be faster than those bytes / HBM bandwidth;
``benchmarks/sample_throughput.py`` reports its measured ms per step against this bound.

    python benchmarks/decode_roofline.py --models transformer mamba100 --batch 512 --context 640

Lower bound, by design: activations between kernels, the sampler's own passes beyond one read of
the logits, and cache lines read twice are not counted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "src"))

# HBM bandwidth (bytes / s) by the name torch.cuda.get_device_name reports (datasheet figures)
HBM_BYTES_PER_S = {"H100": 3.35e12, "H200": 4.8e12, "A100-SXM4-80GB": 2.04e12, "A100-SXM4-40GB": 1.56e12}


def hbm_bandwidth(device_name: str) -> float:
    """The datasheet HBM bandwidth of a GPU named like ``NVIDIA H100 80GB HBM3``; an unknown GPU is an error."""
    for key in sorted(HBM_BYTES_PER_S, key=len, reverse=True):
        if key in device_name:
            return HBM_BYTES_PER_S[key]
    raise KeyError(f"no HBM bandwidth known for {device_name!r} (known: {sorted(HBM_BYTES_PER_S)}): pass --hbm-gbs")


def decode_step_bytes(model, batch: int, context: float, dtype: torch.dtype = torch.bfloat16) -> dict[str, float]:
    """Bytes one decode step of ``batch`` rows at mean ``context`` tokens (prompt + generated so
    far) must read and write, by kind; the model's weights counted at ``dtype``."""
    el = torch.empty((), dtype=dtype).element_size()
    embed = model.embed.weight
    weights = sum(p.numel() for p in model.parameters()) * el
    if embed is not model.lm_head.weight:  # a separate input table: only the rows of this step's tokens
        weights -= embed.numel() * el - batch * embed.shape[1] * el
    kv = recurrent = 0.0
    states = model.init_state(batch, 1, torch.device("meta"), dtype)
    for kind, state in zip(model.cfg.layers, states):
        for t in state.values():
            if kind == "attention":  # (B, H_kv, max_len, hd): read up to each row's position, write one
                per_position = t.numel() // t.shape[2] * t.element_size()
                kv += per_position * (context + 1)
            else:  # the whole state in and out
                recurrent += 2 * t.numel() * t.element_size()
    logits = 2 * batch * model.cfg.vocab_size * el  # written by the LM head, read once by the sampler
    return {"weights": weights, "kv_cache": kv, "recurrent_state": recurrent, "logits": logits,
            "total": weights + kv + recurrent + logits}


def main() -> int:
    from recall2reason.models import build_model
    from sample_throughput import model_configs

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["transformer", "mamba50", "gla50", "gdn50", "mamba100", "gla100", "gdn100"])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--context", type=float, default=128 + 512, help="mean tokens per row (prompt + half the new tokens)")
    p.add_argument("--gpu", default="H100", help="a name in HBM_BYTES_PER_S")
    p.add_argument("--hbm-gbs", type=float, default=None, help="HBM bandwidth in GB/s (instead of --gpu)")
    args = p.parse_args()
    bw = args.hbm_gbs * 1e9 if args.hbm_gbs else hbm_bandwidth(args.gpu)
    cfgs = model_configs(tiny=False)
    print(f"| model | weights MB | K/V MB | state MB | logits MB | roofline ms per step ({bw / 1e12:.2f} TB/s) |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        with torch.device("meta"):
            model = build_model({**cfgs[name], "backend": "reference"})
        b = decode_step_bytes(model, args.batch, args.context)
        print(f"| {name} | {b['weights'] / 1e6:.0f} | {b['kv_cache'] / 1e6:.0f} | {b['recurrent_state'] / 1e6:.0f} | "
              f"{b['logits'] / 1e6:.0f} | {b['total'] / bw * 1e3:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
