"""mamba-ssm's argument contracts, computed with the project's PyTorch twin (CPU tests may not
install mamba-ssm: it ships CUDA sources only)."""

from __future__ import annotations

from recall2reason.models.ops.selective_scan import selective_state_step


def selective_state_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    """mamba-ssm 2.3.2's ``ops.triton.selective_state_update``: its launcher passes
    ``*(dt_bias.stride(0), dt_bias.stride(1)) if dt_bias is not None else 0``, which raises this
    TypeError for dt_bias=None (found on an H100 by test_gpu_kernels' dt_limit cases)."""
    if dt_bias is None:
        raise TypeError("Value after * must be an iterable, not int")
    return selective_state_step(state, x, dt, A, B, C, D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus)
