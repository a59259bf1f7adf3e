"""Depthwise causal 1-D convolution (the "short conv" of Mamba, GLA and GDN).

Weights use ``nn.Conv1d``'s depthwise layout ``(D, 1, W)``, as mamba-ssm's ``conv1d`` and FLA's
``ShortConvolution`` do, so checkpoints interoperate. For channel ``d``:

    y_t = act(bias + sum_{j=0}^{W-1} weight[d, 0, j] * x_{t-W+1+j})      (x_{<0} = 0)

The decoding state is the window of the last ``W`` inputs, ``(B, D, W)`` (newest last), the
layout of mamba-ssm's ``conv_state`` and FLA's conv cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recall2reason.models import kernels  # lazy: imports no kernel package itself
from recall2reason.models.config import SHORT_CONV_FORMS


def _act(y: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation in ("silu", "swish"):
        return F.silu(y)
    if activation is None:
        return y
    raise ValueError(f"unsupported conv activation {activation!r}")


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  activation: str | None = "silu") -> torch.Tensor:
    """x (B, T, D) -> (B, T, D); one ``F.conv1d`` with left padding W-1 (cuDNN / oneDNN)."""
    W = weight.shape[-1]
    xt = F.pad(x.transpose(1, 2), (W - 1, 0))
    y = F.conv1d(xt, weight.to(x.dtype), None if bias is None else bias.to(x.dtype), groups=x.shape[-1])
    return _act(y, activation).transpose(1, 2)


def conv_window(x: torch.Tensor, width: int) -> torch.Tensor:
    """The decoding state after reading x (B, T, D): its last ``width`` inputs, (B, D, width),
    zero-padded on the left when T < width."""
    xt = x.transpose(1, 2)
    T = xt.shape[-1]
    return F.pad(xt, (width - T, 0)) if T < width else xt[..., T - width:]


def causal_conv1d_step(x: torch.Tensor, state: torch.Tensor, weight: torch.Tensor,
                       bias: torch.Tensor | None = None, activation: str | None = "silu") -> torch.Tensor:
    """One token x (B, D): shift it into ``state`` (B, D, W) in place and return y (B, D).
    In-place copy, no new state tensor: safe inside a CUDA graph."""
    state.copy_(torch.cat([state[..., 1:], x[..., None].to(state.dtype)], dim=-1))
    y = (state.to(x.dtype) * weight[:, 0].to(x.dtype)).sum(-1)
    if bias is not None:
        y = y + bias.to(x.dtype)
    return _act(y, activation)


def short_conv(dim: int, size: int, bias: bool) -> torch.nn.Conv1d:
    """Depthwise conv module with FLA ``ShortConvolution`` / mamba-ssm ``conv1d`` parameters (D, 1, W)."""
    return torch.nn.Conv1d(dim, dim, size, groups=dim, padding=size - 1, bias=bias)


def kernel_form(form: str = "auto") -> str:
    """A short-conv form (``KernelConfig.short_conv``) with "auto" resolved: "mix" when
    causal-conv1d is installed, else "triton" (imports causal-conv1d to check: call on CUDA machines only).
    GLA50 on one H100
    (benchmarks/reports/2026-12-06-pretrain-5-micro-batch-64.md): gluon 400.2k tok/s, mix 399.2k,
    triton 389.8k; GDN50 gluon = mix. "gluon" is not yet the fallback of "auto": it has not run in
    prefill / decoding on a GPU."""
    if form not in SHORT_CONV_FORMS:
        raise ValueError(f"short conv: unknown form {form!r}; known: {SHORT_CONV_FORMS}")
    return form if form != "auto" else ("mix" if kernels.causal_conv1d_available() else "triton")


def short_conv_forward(conv: torch.nn.Conv1d, x: torch.Tensor, backend: str, form: str = "auto") -> torch.Tensor:
    """silu(causal depthwise conv) of x (B, T, D): FLA's op in ``form`` (``KernelConfig.short_conv``)
    on ``kernels``, F.conv1d otherwise.

    The "mix" form made GLA50 2.3 % and GDN50 2.8 % faster end to end than the all-Triton form
    (H200, benchmarks/reports/2026-12-04-pretrain-3-loss-kernel-mix-conv.md)."""
    if backend == "kernels":
        form = kernel_form(form)
        if form == "gluon":
            from recall2reason.models.kernels.short_conv import gluon_short_conv

            return gluon_short_conv(x, conv.weight.squeeze(1), conv.bias, "silu")
        from fla.modules.causal_conv1d import causal_conv1d as fla_causal_conv1d

        return fla_causal_conv1d(x=x, weight=conv.weight.squeeze(1), bias=conv.bias, activation="silu", backend=form)[0]
    return causal_conv1d(x, conv.weight, conv.bias, "silu")


def prefill_conv(state: dict, slot: int, backend: str, form: str, name: str, conv: torch.nn.Conv1d,
                 x: torch.Tensor) -> torch.Tensor:
    """A prompt's short conv (x: (1, T, D)) that also stores its last inputs, the decoding window,
    in ``state[f"conv_{name}"][slot]`` (GLA / GDN ``prefill``)."""
    window = state[f"conv_{name}"]
    window[slot] = conv_window(x, conv.kernel_size[0])[0].to(window.dtype)
    return short_conv_forward(conv, x, backend, form)
