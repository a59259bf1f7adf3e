"""Mamba (v1) layer with mamba-ssm's ``Mamba`` (modules/mamba_simple.py) parameters and semantics.

    x, z   = split(W_in u)                              (d_inner each)
    x      = silu(conv1d(x))                            (depthwise causal, width d_conv, with bias)
    dt, B, C = split(W_x x)                             (dt_rank, d_state, d_state)
    Δ      = softplus(W_dt dt + b_dt)                   (per channel)
    h_t    = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t,  y_t = C_t h_t + D x_t     (A = -exp(A_log), (d_inner, d_state))
    out    = W_out (y * silu(z))

Two knobs beyond mamba-ssm's Mamba1 (ablations, Appendix A.3; defaults give the block above):

- ``d_xb`` < d_inner: x is projected and convolved at d_xb, W_x reads it there, and each head of
  d_state channels is shared by d_inner / d_xb heads of the scan (Mamba-in-the-Llama's
  ``repeat_kv`` of x, with heads of size d_state). z, Δ, A, D stay d_inner wide. B is Mamba1's, one
  d_state vector shared by every channel; Mamba-in-the-Llama's B and C are grouped per head
  instead, which at d_xb = d_inner is another model than Table 3's Mamba, so they are not.
- ``dt_limit`` [lo, hi]: Δ = clamp(softplus(W_dt dt + b_dt), lo, hi), mamba-ssm Mamba2's dt_limit.

State-dict keys equal mamba-ssm's (in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj), so weights
load into ``mamba_ssm.modules.mamba_simple.Mamba``. Backends: ``kernels`` runs mamba-ssm's CUDA
``selective_scan_fn`` (the module's non-fused path; causal-conv1d's conv when installed, else
cuDNN) and ``selective_state_update`` for decoding; ``reference`` runs
:mod:`recall2reason.models.ops.selective_scan` (parallel scan, pure PyTorch).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from recall2reason.models import kernels
from recall2reason.models.config import mamba_dt_limit, mamba_repeat, mamba_widths
from recall2reason.models.layers.base import Mixer, register_mixer
from recall2reason.models.ops import conv as conv_ops
from recall2reason.models.ops.selective_scan import selective_scan, selective_state_step, state_update_bias


@register_mixer("mamba")
class Mamba(Mixer):
    def __init__(self, cfg, layer_idx: int, backend: str = "reference"):
        super().__init__(cfg, layer_idx, backend)
        c = cfg.mamba
        d = cfg.d_model
        self.c = c
        self.d_inner, self.dt_rank, self.d_xb = mamba_widths(d, c.expand, c.d_inner, c.dt_rank, c.d_xb)
        self.d_state, self.d_conv = c.d_state, c.d_conv
        self.repeat = mamba_repeat(self.d_inner, self.d_xb, self.d_state)
        self.dt_limit = mamba_dt_limit(c.dt_limit)
        self.in_proj = nn.Linear(d, self.d_xb + self.d_inner, bias=c.bias)  # [x (d_xb) | z (d_inner)]
        self.conv1d = nn.Conv1d(self.d_xb, self.d_xb, c.d_conv, groups=self.d_xb, padding=c.d_conv - 1,
                                bias=c.conv_bias)
        self.x_proj = nn.Linear(self.d_xb, self.dt_rank + 2 * self.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.zeros(self.d_inner, self.d_state))  # kept fp32 by the trainer's policy
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.A_log._no_weight_decay = self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d, bias=c.bias)
        self._init_special()

    @classmethod
    def kernels_available(cls) -> bool:
        return kernels.mamba_ssm_available()

    @torch.no_grad()
    def _init_special(self) -> None:
        """mamba-ssm's init: dt_proj.weight ~ U(±dt_rank^-1/2); dt log-uniform in [dt_min, dt_max]
        with dt_proj.bias = softplus^-1(dt); A = 1..d_state per channel (S4D-real); D = 1."""
        c = self.c
        std = self.dt_rank ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(c.dt_max) - math.log(c.dt_min)) + math.log(c.dt_min))
        dt = dt.clamp(min=c.dt_init_floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log.copy_(torch.arange(1, self.d_state + 1, dtype=torch.float32).log().expand(self.d_inner, -1))
        self.D.fill_(1.0)
        for lin in (self.in_proj, self.out_proj):
            if lin.bias is not None:
                lin.bias.zero_()

    # -- pieces --------------------------------------------------------------------------------
    def _conv(self, x):  # x (B, T, d_xb) -> silu(conv(x))
        if self.backend == "kernels" and kernels.causal_conv1d_available():
            from causal_conv1d import causal_conv1d_fn

            w = self.conv1d.weight.squeeze(1)
            return causal_conv1d_fn(x.transpose(1, 2), w, self.conv1d.bias, activation="silu").transpose(1, 2)
        return conv_ops.causal_conv1d(x, self.conv1d.weight, self.conv1d.bias, "silu")

    def _ssm_inputs(self, x):
        """x (..., d_xb) -> x shared out to (..., d_inner), dt (pre-bias; Δ itself under dt_limit), B, C."""
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)
        if self.dt_limit is not None:  # the kernels apply bias + softplus inside: do it here to clamp after
            lo, hi = self.dt_limit
            dt = F.softplus(dt.float() + self.dt_proj.bias.float()).clamp(lo, hi).to(x.dtype)
        return share_heads(x, self.repeat, self.d_state), dt, B, C

    def _delta_kw(self) -> dict:  # what the scan still applies to dt: bias + softplus, unless _ssm_inputs did
        if self.dt_limit is not None:
            return {"delta_bias": None, "delta_softplus": False}
        return {"delta_bias": self.dt_proj.bias.float(), "delta_softplus": True}

    def _scan(self, x, z, return_last_state=False):
        """x (B, T, d_xb), z (B, T, d_inner) -> y (B, T, d_inner) [, last ssm state (B, d_inner, d_state)]."""
        x, dt, Bm, Cm = self._ssm_inputs(x)
        A = -torch.exp(self.A_log.float())
        args = (x.transpose(1, 2), dt.transpose(1, 2), A, Bm.transpose(1, 2).contiguous(),
                Cm.transpose(1, 2).contiguous(), self.D.float())
        kw = dict(z=z.transpose(1, 2), **self._delta_kw(), return_last_state=return_last_state)
        if self.backend == "kernels":
            from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

            args = tuple(a.contiguous() for a in args)
            out = selective_scan_fn(*args, z=kw.pop("z").contiguous(), **kw)
        else:
            out = selective_scan(*args, **kw)
        if return_last_state:
            return out[0].transpose(1, 2), out[1]
        return out.transpose(1, 2)

    # -- Mixer interface ---------------------------------------------------------------------
    def forward(self, u):
        x, z = self.in_proj(u).split([self.d_xb, self.d_inner], dim=-1)
        return self.out_proj(self._scan(self._conv(x), z))

    def init_state(self, batch_size, max_len, device, dtype):
        return {
            "conv": torch.zeros(batch_size, self.d_xb, self.d_conv, device=device, dtype=dtype),
            "ssm": torch.zeros(batch_size, self.d_inner, self.d_state, device=device, dtype=torch.float32),
        }

    def prefill(self, u, state, slot):
        x, z = self.in_proj(u).split([self.d_xb, self.d_inner], dim=-1)
        state["conv"][slot] = conv_ops.conv_window(x, self.d_conv)[0].to(state["conv"].dtype)
        y, last = self._scan(self._conv(x), z, return_last_state=True)
        state["ssm"][slot] = last[0].float()
        return self.out_proj(y)

    def step(self, u, state, pos, decode_attention="sdpa"):  # decode_attention: attention layers only
        x, z = self.in_proj(u[:, 0]).split([self.d_xb, self.d_inner], dim=-1)  # (B, d_xb), (B, d_inner)
        if self.backend == "kernels" and kernels.causal_conv1d_available():
            from causal_conv1d import causal_conv1d_update

            x = causal_conv1d_update(x, state["conv"], self.conv1d.weight.squeeze(1), self.conv1d.bias, "silu")
        else:
            x = conv_ops.causal_conv1d_step(x, state["conv"], self.conv1d.weight, self.conv1d.bias, "silu")
        x, dt, Bm, Cm = self._ssm_inputs(x)
        A = -torch.exp(self.A_log.float())
        kw = self._delta_kw()
        kw = {"dt_bias": kw["delta_bias"], "dt_softplus": kw["delta_softplus"]}
        if self.backend == "kernels":
            from mamba_ssm.ops.triton.selective_state_update import selective_state_update

            kw["dt_bias"] = state_update_bias(kw["dt_bias"], self.D)
            y = selective_state_update(state["ssm"], x.contiguous(), dt, A, Bm, Cm, self.D.float(), z=z, **kw)
        else:
            y = selective_state_step(state["ssm"], x, dt, A, Bm, Cm, self.D, z=z, **kw)
        return self.out_proj(y.to(u.dtype))[:, None]


def share_heads(x: torch.Tensor, repeat: int, head: int) -> torch.Tensor:
    """(..., n * head) -> (..., n * repeat * head): head i of x feeds heads i*repeat .. i*repeat+repeat-1,
    Mamba-in-the-Llama's repeat_kv order."""
    if repeat == 1:
        return x
    *lead, width = x.shape
    n = width // head
    return x.unflatten(-1, (n, 1, head)).expand(*lead, n, repeat, head).reshape(*lead, n * repeat * head)
