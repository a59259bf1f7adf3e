"""Kernel (mamba-ssm / FLA) vs pure-PyTorch reference: agreement and fwd+bwd time per mixer layer.

    source .gpu/setup.sh && python benchmarks/mixer_kernels.py --out $OUT/mixer_kernels.json

At the paper's shapes (d_model 768, 12 heads, batch 4, length 2048). Agreement: relative L2 error
||kernels - reference|| / ||reference|| of the output, the input gradient and the worst parameter
gradient, in fp32 and in bf16 autocast (fp32 weights, the trainer's regime). Timing: median of 10
fwd+bwd under bf16 autocast, eager (wall time between syncs: GPU work plus the Python launch
overhead of the kernel wrappers) and replayed from a CUDA graph as the trainer does (CUDA events:
the GPU time alone). ``--dry-run`` exercises the plumbing on CPU (reference
vs reference, tiny shapes); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from agreement import compare, layer_pair, paper_cfg, time_fwd_bwd, time_fwd_bwd_graphed
from recall2reason.models.layers import get_mixer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seqlen", type=int, default=2048)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--timing-only", action="store_true", help="skip the agreement part (tests/test_gpu_kernels.py measures it too)")
    ap.add_argument("--mixers", default="attention,mamba,gla,gdn", help="which layers to time, in this order")
    args = ap.parse_args()
    dry = args.dry_run
    device, other = ("cpu", "reference") if dry else ("cuda", "kernels")
    B, T = (2, 64) if dry else (args.batch, args.seqlen)
    res = {"device": "cpu (dry run)" if dry else torch.cuda.get_device_name(), "torch": torch.__version__,
           "batch": B, "seqlen": T, "agreement": [], "timing_ms": []}
    if not dry:
        import importlib

        for pkg in ("fla", "mamba_ssm", "triton"):  # a missing one shows up as that mixer's error below
            try:
                res[pkg] = importlib.import_module(pkg).__version__
            except ImportError:
                res[pkg] = "not importable"

    def save():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))

    for name in () if args.timing_only else ("mamba", "gla", "gdn"):
        for dtype in (torch.float32, torch.bfloat16):
            t0 = time.time()
            try:
                r = compare(name, dtype, B, T, device=device, other=other)
            except Exception as e:  # record and go on: one broken path must not hide the others
                r = {"mixer": name, "dtype": str(dtype), "error": f"{type(e).__name__}: {e}"[:500]}
            r["wall_s"] = round(time.time() - t0, 1)
            res["agreement"].append(r)
            print(json.dumps(r), flush=True)
            save()
    for name in args.mixers.split(","):
        row = {"mixer": name}
        res["timing_ms"].append(row)  # filled in place, saved after each figure (a killed run keeps them)
        if not dry and name != "attention" and not get_mixer(name).kernels_available():
            row["kernels"] = "kernel package not importable"
            other_name = "reference"
        else:
            other_name = other
        ref, ker = layer_pair(name, paper_cfg(name), device=device, other=other_name)
        row["params"] = sum(p.numel() for p in ref.parameters())
        for backend, mod in (("reference", ref), ("kernels", ker)):
            if backend == "kernels" and (name == "attention" or other_name != other):
                continue  # attention: one implementation (SDPA) for both names; or no kernel package here
            d = paper_cfg(name).d_model
            timers = {backend: lambda: time_fwd_bwd(mod, d, B, T, iters=2 if dry else 10, warmup=1 if dry else 3, device=device)}
            if device == "cuda":
                timers[f"{backend}_graphed"] = lambda: time_fwd_bwd_graphed(mod, d, B, T)
            for key, timer in timers.items():
                t0 = time.time()
                try:
                    row[key] = round(timer(), 2)
                except Exception as e:
                    row[key] = f"{type(e).__name__}: {e}"[:300]
                print(f"  {name} {key}: {row[key]} ({time.time() - t0:.0f} s incl. warm-up)", flush=True)
                save()
                if device == "cuda":
                    torch.cuda.empty_cache()
        print(json.dumps(row), flush=True)
        save()
        del ref, ker

    print("\n| mixer | dtype | out | dx | worst param grad |")
    print("|---|---|---|---|---|")
    for r in res["agreement"]:
        if "error" in r:
            print(f"| {r['mixer']} | {r['dtype']} | ERROR {r['error'][:80]} | | |")
        else:
            print(f"| {r['mixer']} | {r['dtype']} | {r['out']:.1e} | {r['dx']:.1e} | {r['dparam_max']:.1e} ({r['dparam_worst']}) |")
    print("\n| mixer | params | kernels ms eager | kernels ms graphed | reference ms eager | reference ms graphed |")
    print("|---|---|---|---|---|---|")
    for r in res["timing_ms"]:
        cells = " | ".join(str(r.get(k, "-")) for k in ("kernels", "kernels_graphed", "reference", "reference_graphed"))
        print(f"| {r['mixer']} | {r['params'] / 1e6:.2f}M | {cells} |")


if __name__ == "__main__":
    main()
