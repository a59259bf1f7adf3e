"""Causal softmax attention with RoPE (the Transformer's mixer and the hybrids' attention layers).

Training uses ``F.scaled_dot_product_attention`` (flash / cuDNN kernels on GPU). Decoding keeps a
preallocated KV cache of shape (B, n_kv_heads, max_len, head_dim); each batch row may sit at a
different position, so ``step`` masks keys beyond each row's own position.

RoPE's cos/sin come from fp32 tables built once per device (non-persistent buffers, so the state
dict is unchanged, and kept fp32 when the weights are cast to bf16): computed inline, the compiler
fused cos/sin/pow into every q/k element and spent 13 % of a training step on it
(benchmarks/reports/2026-11-29-pretrain-2-rope-loss-fixes.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from recall2reason.models.layers.base import Mixer, packed_linear, register_mixer
from recall2reason.models.ops.qkv_rope import qkv_rope, qkv_rope_reference
from recall2reason.models.ops.rope import apply_rope, rope_cos_sin

DECODE_ATTENTION = ("sdpa", "triton")


@register_mixer("attention")
class Attention(Mixer):
    # q / k / v of whole sequences: one GEMM, then models/ops/qkv_rope.py splits and rotates (a
    # Triton kernel each way on the kernels backend, its PyTorch twin on the reference one): the
    # Transformer trained 0.7-0.9 % faster than with three GEMMs and RoPE left to the compiler
    # (H100, benchmarks/reports/2026-12-06-pretrain-1-packed-qkv.md). Decode steps (one token per row at its
    # own position) run the three projections and RoPE at each row's position.

    def __init__(self, cfg, layer_idx: int, backend: str = "reference"):
        super().__init__(cfg, layer_idx, backend)
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.rope_theta = cfg.rope_theta
        d = cfg.d_model
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)
        self.register_buffer("rope_cos", torch.empty(0), persistent=False)
        self.register_buffer("rope_sin", torch.empty(0), persistent=False)
        self._build_rope(cfg.max_seq_len, self.q_proj.weight.device)

    def _build_rope(self, n: int, device) -> None:
        self.rope_cos, self.rope_sin = rope_cos_sin(torch.arange(n, device=device), self.head_dim, self.rope_theta)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        if self.rope_cos.dtype != torch.float32:  # a dtype cast: rebuild the tables in fp32 where they now live
            self._build_rope(self.rope_cos.shape[0], self.rope_cos.device)
        return self

    @classmethod
    def kernels_available(cls) -> bool:
        return True  # SDPA picks flash / cuDNN / efficient kernels itself

    def _qkv(self, x: torch.Tensor, pos: torch.Tensor | None = None):
        """q, k, v of shape (B, heads, T, hd) with RoPE; positions 0..T-1, or ``pos`` (B,) for one token per row."""
        B, T, _ = x.shape
        if pos is None and T <= self.rope_cos.shape[0]:
            split_rope = qkv_rope if self.backend == "kernels" else qkv_rope_reference
            qkv = packed_linear(x, self.q_proj, self.k_proj, self.v_proj)
            q, k, v = split_rope(qkv, self.rope_cos, self.rope_sin, self.n_heads, self.n_kv_heads)
            return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if pos is not None:  # decode: each row at its own position -> (B, 1, 1, hd)
            cos, sin = self.rope_cos[pos][:, None, None], self.rope_sin[pos][:, None, None]
        else:  # longer than the tables (beyond max_seq_len): compute inline
            cos, sin = rope_cos_sin(torch.arange(T, device=x.device), self.head_dim, self.rope_theta)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        B, H, T, hd = y.shape
        return self.o_proj(y.transpose(1, 2).reshape(B, T, H * hd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv_heads != self.n_heads)
        return self._out(y)

    def init_state(self, batch_size, max_len, device, dtype):
        if max_len > self.rope_cos.shape[0]:  # decoding past max_seq_len: grow the tables (before any graph capture)
            self._build_rope(max_len, self.rope_cos.device)
        shape = (batch_size, self.n_kv_heads, max_len, self.head_dim)
        return {"k": torch.zeros(shape, device=device, dtype=dtype), "v": torch.zeros(shape, device=device, dtype=dtype)}

    def prefill(self, x, state, slot):
        T = x.shape[1]
        q, k, v = self._qkv(x)
        state["k"][slot, :, :T] = k[0].to(state["k"].dtype)
        state["v"][slot, :, :T] = v[0].to(state["v"].dtype)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.n_kv_heads != self.n_heads)
        return self._out(y)

    def step(self, x, state, pos, decode_attention="sdpa"):
        """``decode_attention``: "sdpa" (masked, reads the whole cache) or "triton" (CUDA: reads
        each row's own pos + 1 keys; models/ops/decode_attention.py), the sampler's choice."""
        if decode_attention not in DECODE_ATTENTION:
            raise ValueError(f"attention: unknown decode_attention {decode_attention!r}; known: {DECODE_ATTENTION}")
        B = x.shape[0]
        q, k, v = self._qkv(x, pos)  # (B, H, 1, hd)
        rows = torch.arange(B, device=x.device)
        # scatter this token's k/v into each row's own position (graph-safe: no shape change)
        state["k"][rows, :, pos] = k[:, :, 0].to(state["k"].dtype)
        state["v"][rows, :, pos] = v[:, :, 0].to(state["v"].dtype)
        if decode_attention == "triton" and x.is_cuda:
            from recall2reason.models.ops.decode_attention import decode_attention

            return self._out(decode_attention(q[:, :, 0], state["k"], state["v"], pos)[:, :, None])
        max_len = state["k"].shape[2]
        visible = torch.arange(max_len, device=x.device)[None, :] <= pos[:, None]  # (B, max_len)
        mask = visible[:, None, None, :]
        y = F.scaled_dot_product_attention(
            q, state["k"].to(q.dtype), state["v"].to(q.dtype), attn_mask=mask,
            enable_gqa=self.n_kv_heads != self.n_heads,
        )
        return self._out(y)
