"""Gated Linear Attention layer with FLA's ``GatedLinearAttention`` parameters and semantics.

    q, k, v = silu(shortconv(W_q x)), silu(shortconv(W_k x)), silu(shortconv(W_v x))   (per head)
    g       = logsigmoid(W_g2 W_g1 x + b) / gate_logit_normalizer                     (low-rank gate)
    S_t     = diag(exp(g_t)) S_{t-1} + k_t v_t^T,     o_t = S_t^T q_t / sqrt(d_k)
    out     = W_o rmsnorm_head(o)                     (times gate_fn(W_gate x) with an output gate)

State-dict keys equal FLA's (q_proj, k_proj, v_proj, gk_proj.{0,1}, q/k/v_conv1d, g_norm or
g_norm_swish_gate, g_proj, o_proj), so weights load into ``fla.layers.GatedLinearAttention``.
Backends: ``kernels`` calls FLA's chunk_gla / fused_recurrent_gla and its short conv (ops.conv);
training runs ``cfg.kernels.gla_train``: "fused" (``ops.fused_chunk_gla``, our two-kernel chunked
GLA) or "fla" (FLA's own chunk_gla);
``reference`` runs :mod:`recall2reason.models.ops.gla` (chunked, pure PyTorch).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from recall2reason.models import kernels
from recall2reason.models.layers.base import Mixer, project, register_mixer, scaled_dim
from recall2reason.models.ops import conv as conv_ops
from recall2reason.models.ops.gla import chunk_gla, recurrent_gla_step
from recall2reason.models.ops.norm import ACT as _ACT, HeadRMSNorm

# the training kernel (KernelConfig.gla_train): with "fused" GLA50 ran at 0.906x of the Transformer
# on an H100, with FLA's chunk_gla (keeping its chunk states) at 0.83x (the kernel alone: 1.8x
# faster; benchmarks/reports/2026-12-06-pretrain-6-fused-gla.md). "fla" is FLA's chunk_gla as FLA ships it.


@register_mixer("gla")
class GatedLinearAttention(Mixer):
    def __init__(self, cfg, layer_idx: int, backend: str = "reference"):
        super().__init__(cfg, layer_idx, backend)
        c = cfg.gla
        d, H = cfg.d_model, cfg.n_heads
        self.c, self.n_heads = c, H
        self.key_dim, self.value_dim = scaled_dim("gla", d, c.expand_k, H), scaled_dim("gla", d, c.expand_v, H)
        if c.feature_map is not None and c.feature_map not in _ACT:
            raise ValueError(f"gla: unsupported feature_map {c.feature_map!r}")
        if c.gate_fn not in _ACT:
            raise ValueError(f"gla: unsupported gate_fn {c.gate_fn!r}; known: {sorted(_ACT)}")
        self.head_k_dim, self.head_v_dim = self.key_dim // H, self.value_dim // H
        self.q_proj = nn.Linear(d, self.key_dim, bias=False)
        self.k_proj = nn.Linear(d, self.key_dim, bias=False)
        self.v_proj = nn.Linear(d, self.value_dim, bias=False)
        if c.use_output_gate:
            self.g_proj = nn.Linear(d, self.value_dim, bias=False)
        if c.use_short_conv:
            self.q_conv1d = conv_ops.short_conv(self.key_dim, c.conv_size, c.conv_bias)
            self.k_conv1d = conv_ops.short_conv(self.key_dim, c.conv_size, c.conv_bias)
            self.v_conv1d = conv_ops.short_conv(self.value_dim, c.conv_size, c.conv_bias)
        self.gk_proj = nn.Sequential(
            nn.Linear(d, c.gate_low_rank_dim, bias=False), nn.Linear(c.gate_low_rank_dim, self.key_dim, bias=True)
        )
        self.o_proj = nn.Linear(self.value_dim, d, bias=False)
        # FLA fuses norm and gate only for a swish output gate; the parameter name follows that choice
        self.fuse_norm_and_gate = c.gate_fn == "swish" and c.fuse_norm and c.use_output_gate
        if self.fuse_norm_and_gate:
            self.g_norm_swish_gate = HeadRMSNorm(self.head_v_dim, cfg.norm_eps, "swish")
        else:
            self.g_norm = HeadRMSNorm(self.head_v_dim, cfg.norm_eps, c.gate_fn)

    @classmethod
    def kernels_available(cls) -> bool:
        return kernels.fla_available()

    def _init_special(self) -> None:
        # FLA's _init_weights zeroes Linear biases (the generic init leaves 1-D tensors alone)
        nn.init.zeros_(self.gk_proj[1].bias)

    # -- shared pieces -----------------------------------------------------------------------
    def _inputs(self, x, conv):
        """q, k, v, log-gate as (B, T, H, d); ``conv(name, module, x)`` runs a short convolution.
        The four projections of x (q, k, v, the gate's low-rank input) are one GEMM."""
        B, T, _ = x.shape
        q, k, v, gk_low = project(x, self.q_proj, self.k_proj, self.v_proj, self.gk_proj[0])
        if self.c.use_short_conv:
            q, k, v = conv("q", self.q_conv1d, q), conv("k", self.k_conv1d, k), conv("v", self.v_conv1d, v)
        gk = F.logsigmoid(self.gk_proj[1](gk_low).float()) / self.c.gate_logit_normalizer
        if self.c.clamp_min is not None:
            gk = gk.clamp_min(self.c.clamp_min)
        if self.c.feature_map is not None:
            q, k = _ACT[self.c.feature_map](q), _ACT[self.c.feature_map](k)
        H = self.n_heads
        return (q.view(B, T, H, -1), k.view(B, T, H, -1), v.view(B, T, H, -1), gk.view(B, T, H, -1))

    def _output(self, o, x):
        """o (B, T, H, dv) -> (B, T, d_model): per-head norm (and output gate), then o_proj."""
        B, T = o.shape[:2]
        if self.c.use_output_gate:
            g = self.g_proj(x).view(B, T, self.n_heads, -1)
            if self.fuse_norm_and_gate:
                o = self.g_norm_swish_gate(o, g)
            else:
                o = self.g_norm(o) * _ACT[self.c.gate_fn](g)
        else:
            o = self.g_norm(o)
        return self.o_proj(o.reshape(B, T, -1).to(x.dtype))

    def _mix(self, q, k, v, gk, initial_state=None, output_final_state=False):
        if self.backend == "kernels":
            state = {"initial_state": initial_state, "output_final_state": output_final_state}
            if q.shape[1] <= 64:  # FLA's own choice of the recurrent form for short inputs
                from fla.ops.gla import fused_recurrent_gla

                return fused_recurrent_gla(q=q, k=k, v=v, gk=gk, **state)
            if (initial_state is None and not output_final_state and q.requires_grad
                    and self.kernels.gla_train == "fused"):  # training
                from recall2reason.models.ops.fused_chunk_gla import fused_chunk_gla

                return fused_chunk_gla(q, k, v, gk), None
            from fla.ops.gla import chunk_gla as fla_chunk_gla

            return fla_chunk_gla(q=q, k=k, v=v, g=gk, **state)
        return chunk_gla(q, k, v, gk, initial_state=initial_state, output_final_state=output_final_state)

    # -- Mixer interface ---------------------------------------------------------------------
    def forward(self, x):
        q, k, v, gk = self._inputs(x, lambda n, m, t: conv_ops.short_conv_forward(m, t, self.backend, self.kernels.short_conv))
        o, _ = self._mix(q, k, v, gk.to(q.dtype) if self.backend == "kernels" else gk)
        return self._output(o, x)

    def init_state(self, batch_size, max_len, device, dtype):
        st = {"h": torch.zeros(batch_size, self.n_heads, self.head_k_dim, self.head_v_dim, device=device,
                               dtype=torch.float32)}  # the matrix memory stays fp32, as in FLA
        if self.c.use_short_conv:
            for n, dim in (("q", self.key_dim), ("k", self.key_dim), ("v", self.value_dim)):
                st[f"conv_{n}"] = torch.zeros(batch_size, dim, self.c.conv_size, device=device, dtype=dtype)
        return st

    def prefill(self, x, state, slot):
        q, k, v, gk = self._inputs(x, functools.partial(conv_ops.prefill_conv, state, slot, self.backend, self.kernels.short_conv))
        o, h = self._mix(q, k, v, gk.to(q.dtype) if self.backend == "kernels" else gk, output_final_state=True)
        state["h"][slot] = h[0].float()
        return self._output(o, x)

    def step(self, x, state, pos, decode_attention="sdpa"):  # decode_attention: attention layers only
        def conv(name, m, t):  # t: (B, 1, D); shifts the token into this row's conv window in place
            return conv_ops.causal_conv1d_step(t[:, 0], state[f"conv_{name}"], m.weight, m.bias)[:, None]

        q, k, v, gk = self._inputs(x, conv)
        if self.backend == "kernels":
            from recall2reason.models.kernels.gla_step import gla_recurrent_step

            o = gla_recurrent_step(q, k, v, gk.to(q.dtype), state["h"])  # updates state["h"]
        else:
            o = recurrent_gla_step(q[:, 0], k[:, 0], v[:, 0], gk[:, 0], state["h"])[:, None]
        return self._output(o, x)
