"""Length-aware single-token attention over a KV cache (flash-decoding), for the decode step.

SDPA with a mask reads the whole preallocated cache (max_len positions) for every row; this
Triton kernel reads only each row's own ``pos + 1`` keys, so a decode step costs what the
sequences actually hold. The keys are split into chunks of ``SPLIT`` positions, one program per
(row, head, chunk) - parallel enough for any batch - and the chunks' partial softmaxes are merged
in PyTorch. Fixed grid and shapes: the call can be captured in a CUDA graph. Triton is imported
lazily (on first call), so importing this module needs nothing beyond PyTorch.
"""

from __future__ import annotations

import math

import torch

SPLIT = 128
_kernel = None


def decode_attention_reference(q, k_cache, v_cache, pos):
    """q (B, H, D), caches (B, Hkv, L, D), pos (B,) -> (B, H, D): softmax over keys 0..pos[b]."""
    B, H, D = q.shape
    group = H // k_cache.shape[1]
    k = k_cache.float().repeat_interleave(group, 1)
    v = v_cache.float().repeat_interleave(group, 1)
    s = torch.einsum("bhd,bhld->bhl", q.float(), k) / math.sqrt(D)
    visible = torch.arange(k.shape[2], device=q.device)[None, :] <= pos[:, None]
    s = s.masked_fill(~visible[:, None, :], float("-inf"))
    return torch.einsum("bhl,bhld->bhd", s.softmax(-1), v).to(q.dtype)


def _build_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def kernel(Q, K, V, POS, ACC, M, L, sm_scale,
               s_qb, s_qh, s_kb, s_kh, s_kl, s_vb, s_vh, s_vl,
               H: tl.constexpr, GROUP: tl.constexpr, D: tl.constexpr, SPLIT: tl.constexpr, NS: tl.constexpr):
        bh = tl.program_id(0)
        sp = tl.program_id(1)
        b = bh // H
        h = bh % H
        hk = h // GROUP
        n = tl.load(POS + b) + 1  # keys 0..pos visible
        d = tl.arange(0, D)
        idx = sp * SPLIT + tl.arange(0, SPLIT)
        valid = idx < n
        q = tl.load(Q + b * s_qb + h * s_qh + d).to(tl.float32) * sm_scale
        k = tl.load(K + b * s_kb + hk * s_kh + idx[:, None] * s_kl + d[None, :], mask=valid[:, None], other=0.0)
        s = tl.sum(k.to(tl.float32) * q[None, :], axis=1)
        s = tl.where(valid, s, float("-inf"))
        m = tl.max(s, axis=0)
        m_safe = tl.where(m == float("-inf"), 0.0, m)  # an empty chunk: all weights 0
        p = tl.exp(s - m_safe)
        v = tl.load(V + b * s_vb + hk * s_vh + idx[:, None] * s_vl + d[None, :], mask=valid[:, None], other=0.0)
        acc = tl.sum(p[:, None] * v.to(tl.float32), axis=0)
        out = (bh * NS + sp)
        tl.store(ACC + out * D + d, acc)
        tl.store(M + out, m)
        tl.store(L + out, tl.sum(p, axis=0))

    return kernel


def decode_attention(q, k_cache, v_cache, pos):
    """Triton version of :func:`decode_attention_reference` (same arguments and result)."""
    global _kernel
    if _kernel is None:
        _kernel = _build_kernel()
    B, H, D = q.shape
    Hkv, Lmax = k_cache.shape[1], k_cache.shape[2]
    if D & (D - 1) or k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:
        return decode_attention_reference(q, k_cache, v_cache, pos)
    q = q.contiguous()
    ns = -(-Lmax // SPLIT)
    acc = torch.empty(B * H * ns, D, device=q.device, dtype=torch.float32)
    m = torch.empty(B * H * ns, device=q.device, dtype=torch.float32)
    l_ = torch.empty(B * H * ns, device=q.device, dtype=torch.float32)
    _kernel[(B * H, ns)](
        q, k_cache, v_cache, pos, acc, m, l_, 1.0 / math.sqrt(D),
        q.stride(0), q.stride(1), k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        H=H, GROUP=H // Hkv, D=D, SPLIT=SPLIT, NS=ns,
    )
    # merge the chunks' partial softmaxes (empty chunks have m = -inf and weight 0)
    m = m.view(B, H, ns)
    mx = m.max(-1, keepdim=True).values
    w = torch.exp(m - mx)
    num = (w[..., None] * acc.view(B, H, ns, D)).sum(2)
    den = (w * l_.view(B, H, ns)).sum(-1, keepdim=True)
    return (num / den).to(q.dtype)
