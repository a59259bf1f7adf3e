"""FLA's Gluon short convolution (fla 0.6.0, ``fla.modules.causal_conv1d.backends.gluon``) both ways.

FLA ships these kernels but runs them only when ``FLA_CONV_GLUON=1`` is set in the environment
(its backend dispatch reads it on every call). Here they are called directly, so choosing them is
a setting of ours (``KernelConfig.short_conv = "gluon"``, models/config.py), not an environment variable. The forward reads a
strided x (a slice of the mixer's packed projection) without copying it; the backward recomputes
the activation from x, as FLA's Triton form does, and never stores the pre-activation.

Only FLA's own functions are called; this module imports FLA (and Triton's Gluon), so import it
only inside the kernels path (never on CPU machines or in CI).
"""

from __future__ import annotations

import torch
from fla.modules.causal_conv1d.backends.gluon import causal_conv1d_bwd_gluon, causal_conv1d_fwd_gluon


class _GluonShortConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, activation):
        y, _ = causal_conv1d_fwd_gluon(x=x, weight=weight, bias=bias, activation=activation)
        ctx.save_for_backward(x, weight, bias)
        ctx.activation = activation
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias = ctx.saved_tensors
        dx, dw, db, _, _ = causal_conv1d_bwd_gluon(x=x, dy=dy, dht=None, weight=weight, bias=bias,
                                                   activation=ctx.activation)
        return dx, dw, db, None


@torch.compiler.disable
def gluon_short_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     activation: str | None = "silu") -> torch.Tensor:
    """y (B, T, D) = act(depthwise causal conv of x (B, T, D) with weight (D, W) + bias); W in 2..4.
    x may be strided along T (its channels must be contiguous)."""
    if x.ndim != 3 or x.stride(-1) != 1 or weight.shape != (x.shape[-1], weight.shape[-1]) or not 2 <= weight.shape[-1] <= 4:
        raise ValueError(f"gluon_short_conv: needs x (B, T, D) with contiguous channels and weight (D, 2..4); "
                         f"got x {tuple(x.shape)} strides {x.stride()}, weight {tuple(weight.shape)}")
    return _GluonShortConv.apply(x, weight.contiguous(), None if bias is None else bias.contiguous(), activation)
