"""Kernel-vs-reference agreement of the recurrent mixers at the paper's shapes, one line per case,
flushed as it goes (for short device leases). The pytest version is tests/test_gpu_kernels.py."""

import sys
import time

import torch

from agreement import compare

CASES = [(n, d) for n in sys.argv[1].split(",") for d in sys.argv[2].split(",")] if len(sys.argv) > 2 else [
    ("gdn", "fp32"), ("gdn", "bf16"), ("gla", "bf16")]
DT = {"fp32": torch.float32, "bf16": torch.bfloat16}
print("device:", torch.cuda.get_device_name(), flush=True)
for name, dt in CASES:
    t = time.time()
    r = compare(name, DT[dt], batch=4, seqlen=2048)
    print(f"{name} {dt} ({time.time() - t:.0f}s incl. first-call compile):", {k: (round(v, 7) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
