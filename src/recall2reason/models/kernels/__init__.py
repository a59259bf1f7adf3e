"""Lazy access to the CUDA kernel packages (mamba-ssm, causal-conv1d, FLA).

Nothing here imports a kernel package at module import time: CPU machines and CI never install
them. Each ``*_available`` check imports on first call (CUDA machines only) and caches the answer.
Submodules that wrap a kernel package (``chunk_gla``) import it at their top: the layers import
them inside their kernels path only.
"""

from __future__ import annotations

import functools
import importlib


@functools.cache
def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
        return True
    except Exception:  # ImportError, or a broken build raising at import
        return False


def fla_available() -> bool:
    return importable("fla.ops.gla") and importable("fla.ops.gated_delta_rule") and importable("fla.modules")


def mamba_ssm_available() -> bool:
    return importable("mamba_ssm.ops.selective_scan_interface") and importable(
        "mamba_ssm.ops.triton.selective_state_update"
    )


def causal_conv1d_available() -> bool:
    return importable("causal_conv1d")
