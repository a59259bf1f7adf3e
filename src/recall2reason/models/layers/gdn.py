"""Gated DeltaNet layer with FLA's ``GatedDeltaNet`` parameters and semantics.

    q, k, v = silu(shortconv(W_q x)), silu(shortconv(W_k x)), silu(shortconv(W_v x))   (per head)
    q, k    = l2norm(q), l2norm(k)
    g_t     = -exp(A_log) * softplus(W_a x_t + dt_bias)     (scalar log decay per head)
    beta_t  = sigmoid(W_b x_t)                              (scalar write strength per head)
    S_t     = exp(g_t) S_{t-1} + k_t (beta_t (v_t - exp(g_t) S_{t-1}^T k_t))^T,   o_t = S_t^T q_t / sqrt(d_k)
    out     = W_o rmsnorm_head(o)                           (times swish(W_g x) with use_gate)

State-dict keys equal FLA's (q_proj, k_proj, v_proj, a_proj, b_proj, A_log, dt_bias, q/k/v_conv1d,
o_norm, g_proj, o_proj), so weights load into ``fla.layers.GatedDeltaNet`` (head_dim =
d_model * expand_k / n_heads = 64 for the paper). Backends: ``kernels`` calls FLA's
chunk_gated_delta_rule / fused_recurrent_gated_delta_rule (gate, beta sigmoid and q/k L2 norm
fused in the kernel); ``reference`` runs :mod:`recall2reason.models.ops.delta_rule`.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from recall2reason.models import kernels
from recall2reason.models.layers.base import Mixer, project, register_mixer, scaled_dim
from recall2reason.models.ops import conv as conv_ops
from recall2reason.models.ops.delta_rule import chunk_gated_delta_rule, recurrent_gated_delta_rule_step
from recall2reason.models.ops.norm import HeadRMSNorm


@register_mixer("gdn")
class GatedDeltaNet(Mixer):
    def __init__(self, cfg, layer_idx: int, backend: str = "reference"):
        super().__init__(cfg, layer_idx, backend)
        c = cfg.gdn
        d, H = cfg.d_model, cfg.n_heads
        self.c, self.n_heads = c, H
        self.head_k_dim = scaled_dim("gdn", d, c.expand_k, H) // H
        self.head_v_dim = scaled_dim("gdn", self.head_k_dim, c.expand_v)  # FLA scales v per head
        self.key_dim, self.value_dim = H * self.head_k_dim, H * self.head_v_dim
        self.q_proj = nn.Linear(d, self.key_dim, bias=False)
        self.k_proj = nn.Linear(d, self.key_dim, bias=False)
        self.v_proj = nn.Linear(d, self.value_dim, bias=False)
        self.a_proj = nn.Linear(d, H, bias=False)
        self.b_proj = nn.Linear(d, H, bias=False)
        self.A_log = nn.Parameter(torch.zeros(H))
        self.dt_bias = nn.Parameter(torch.zeros(H))
        self.A_log._no_weight_decay = self.dt_bias._no_weight_decay = True
        if c.use_short_conv:
            self.q_conv1d = conv_ops.short_conv(self.key_dim, c.conv_size, c.conv_bias)
            self.k_conv1d = conv_ops.short_conv(self.key_dim, c.conv_size, c.conv_bias)
            self.v_conv1d = conv_ops.short_conv(self.value_dim, c.conv_size, c.conv_bias)
        if c.use_gate:
            self.g_proj = nn.Linear(d, self.value_dim, bias=False)
        self.o_norm = HeadRMSNorm(self.head_v_dim, cfg.norm_eps, "swish")
        self.o_proj = nn.Linear(self.value_dim, d, bias=False)
        self._init_special()

    @classmethod
    def kernels_available(cls) -> bool:
        return kernels.fla_available()

    @torch.no_grad()
    def _init_special(self) -> None:
        """FLA's init: A ~ U(0, 16) (A_log = log A); dt log-uniform in [1e-3, 0.1], dt_bias = softplus^-1(dt)."""
        H = self.n_heads
        self.A_log.copy_(torch.empty(H).uniform_(0, 16).log())
        dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    # -- shared pieces -----------------------------------------------------------------------
    def _inputs(self, x, conv):
        """q, k, v as (B, T, H, d) and the gate / beta logits; the five projections of x are one GEMM."""
        B, T, _ = x.shape
        q, k, v, a, b = project(x, self.q_proj, self.k_proj, self.v_proj, self.a_proj, self.b_proj)
        if self.c.use_short_conv:
            q, k, v = conv("q", self.q_conv1d, q), conv("k", self.k_conv1d, k), conv("v", self.v_conv1d, v)
        else:  # FLA applies silu in place of the conv's activation
            q, k, v = F.silu(q), F.silu(k), F.silu(v)
        H = self.n_heads
        return q.view(B, T, H, -1), k.view(B, T, H, -1), v.view(B, T, H, -1), a, b

    def _gate_beta(self, a, b):
        g = -self.A_log.float().exp() * F.softplus(a.float() + self.dt_bias.float())
        return g, b.float().sigmoid()

    def _output(self, o, x):
        B, T = o.shape[:2]
        gate = self.g_proj(x).view(B, T, self.n_heads, -1) if self.c.use_gate else None
        return self.o_proj(self.o_norm(o, gate).reshape(B, T, -1).to(x.dtype))

    def _mix(self, q, k, v, a, b, initial_state=None, output_final_state=False):
        if self.backend == "kernels":
            from fla.ops.gated_delta_rule import chunk_gated_delta_rule as fla_chunk, fused_recurrent_gated_delta_rule

            # FLA's layer: chunk when training; fused_recurrent for short inference inputs
            fn = fused_recurrent_gated_delta_rule if (not torch.is_grad_enabled() and q.shape[1] <= 64) else fla_chunk
            return fn(q=q, k=k, v=v, g=a, beta=b, initial_state=initial_state, output_final_state=output_final_state,
                      use_qk_l2norm_in_kernel=self.c.use_qk_norm, use_beta_sigmoid_in_kernel=True,
                      use_gate_in_kernel=True, A_log=self.A_log, dt_bias=self.dt_bias)
        g, beta = self._gate_beta(a, b)
        return chunk_gated_delta_rule(q, k, v, g, beta, initial_state=initial_state,
                                      output_final_state=output_final_state, use_qk_l2norm=self.c.use_qk_norm)

    # -- Mixer interface ---------------------------------------------------------------------
    def forward(self, x):
        q, k, v, a, b = self._inputs(x, lambda n, m, t: conv_ops.short_conv_forward(m, t, self.backend, self.kernels.short_conv))
        o, _ = self._mix(q, k, v, a, b)
        return self._output(o, x)

    def init_state(self, batch_size, max_len, device, dtype):
        st = {"h": torch.zeros(batch_size, self.n_heads, self.head_k_dim, self.head_v_dim, device=device,
                               dtype=torch.float32)}
        if self.c.use_short_conv:
            for n, dim in (("q", self.key_dim), ("k", self.key_dim), ("v", self.value_dim)):
                st[f"conv_{n}"] = torch.zeros(batch_size, dim, self.c.conv_size, device=device, dtype=dtype)
        return st

    def prefill(self, x, state, slot):
        q, k, v, a, b = self._inputs(x, functools.partial(conv_ops.prefill_conv, state, slot, self.backend, self.kernels.short_conv))
        o, h = self._mix(q, k, v, a, b, output_final_state=True)
        state["h"][slot] = h[0].float()
        return self._output(o, x)

    def step(self, x, state, pos, decode_attention="sdpa"):  # decode_attention: attention layers only
        def conv(name, m, t):
            return conv_ops.causal_conv1d_step(t[:, 0], state[f"conv_{name}"], m.weight, m.bias)[:, None]

        q, k, v, a, b = self._inputs(x, conv)
        if self.backend == "kernels":
            from fla.ops.gated_delta_rule import fused_recurrent_gated_delta_rule

            o, h = fused_recurrent_gated_delta_rule(
                q=q, k=k, v=v, g=a, beta=b, initial_state=state["h"], output_final_state=True,
                use_qk_l2norm_in_kernel=self.c.use_qk_norm, use_beta_sigmoid_in_kernel=True,
                use_gate_in_kernel=True, A_log=self.A_log, dt_bias=self.dt_bias)
            state["h"].copy_(h)
        else:
            g, beta = self._gate_beta(a, b)
            o = recurrent_gated_delta_rule_step(q[:, 0], k[:, 0], v[:, 0], g[:, 0], beta[:, 0], state["h"],
                                                use_qk_l2norm=self.c.use_qk_norm)[:, None]
        return self._output(o, x)
