"""Lazy access to the CUDA kernel packages (mamba-ssm, causal-conv1d, FLA).

Nothing here imports a kernel package at module import time: CPU machines and CI never install
them. Each ``*_available`` check imports on first call (CUDA machines only) and caches the answer.
Submodules that wrap a kernel package (``short_conv``) import it at their top: the layers import
them inside their kernels path only.

The checks run inside the layers' forward, i.e. inside torch.compile'd code: they are marked
constant, so dynamo bakes their answer into the graph. Traced, ``importlib.import_module`` breaks
the graph: every short conv split its block's compiled graph in two
(benchmarks/reports/2026-12-06-pretrain-3-whole-model-compile.md).
"""

from __future__ import annotations

import functools
import importlib


def _compile_time_constant(fn):
    """``torch.compiler.assume_constant_result(fn)``, which only sets this flag, without importing
    torch._dynamo (and with it triton) when this package is imported. A CPU test compiles the
    checks with ``fullgraph=True``, so a torch that stops reading the flag fails it."""
    fn._dynamo_marked_constant = True
    return fn


@functools.cache
def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except Exception:  # ImportError, or a broken build raising at import
        return False


@_compile_time_constant
def fla_available() -> bool:
    return importable("fla.ops.gla") and importable("fla.ops.gated_delta_rule") and importable("fla.modules")


@_compile_time_constant
def mamba_ssm_available() -> bool:
    return importable("mamba_ssm.ops.selective_scan_interface") and importable(
        "mamba_ssm.ops.triton.selective_state_update"
    )


@_compile_time_constant
def causal_conv1d_available() -> bool:
    return importable("causal_conv1d")
