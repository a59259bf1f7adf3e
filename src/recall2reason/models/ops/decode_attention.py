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

# launch configuration: keys per program (SPLIT), read BLOCK at a time through a num_stages-deep
# pipeline; the fastest launch configuration on the H200 (3.28 TB/s of K/V reads vs 2.89 for one
# 128-key block per program: benchmarks/reports/2026-12-02-sample-2-decode-attention-kernel.md)
DEFAULT_CONFIG = {"SPLIT": 512, "BLOCK": 64, "num_warps": 2, "num_stages": 2}
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
               H: tl.constexpr, GROUP: tl.constexpr, D: tl.constexpr, SPLIT: tl.constexpr, BLOCK: tl.constexpr,
               NS: tl.constexpr, STAGES: tl.constexpr):
        # one program per (row, head, chunk of SPLIT keys); the chunk is read BLOCK keys at a time
        # (online softmax) and only up to the row's length, so chunks past it cost no reads
        bh = tl.program_id(0)
        sp = tl.program_id(1)
        b = bh // H
        h = bh % H
        hk = h // GROUP
        n = tl.load(POS + b) + 1  # keys 0..pos visible
        start = sp * SPLIT
        hi = tl.minimum(n - start, SPLIT)  # keys of this chunk that are visible (<= 0: none)
        d = tl.arange(0, D)
        # explicit fp32: under torch.compile, Inductor passes sm_scale as fp64, which would make the
        # loop-carried softmax state change type (a compile error, seen on the H200)
        q = (tl.load(Q + b * s_qb + h * s_qh + d).to(tl.float32) * sm_scale).to(tl.float32)
        k_row = K + b * s_kb + hk * s_kh + start * s_kl
        v_row = V + b * s_vb + hk * s_vh + start * s_vl
        m_i = tl.max(tl.full([BLOCK], float("-inf"), tl.float32), axis=0)
        l_i = tl.sum(tl.zeros([BLOCK], tl.float32), axis=0)
        acc = tl.zeros([D], tl.float32)
        for off in tl.range(0, hi, BLOCK, num_stages=STAGES):
            idx = off + tl.arange(0, BLOCK)
            valid = idx < hi
            k = tl.load(k_row + idx[:, None] * s_kl + d[None, :], mask=valid[:, None], other=0.0)
            v = tl.load(v_row + idx[:, None] * s_vl + d[None, :], mask=valid[:, None], other=0.0)
            s = tl.where(valid, tl.sum(k.to(tl.float32) * q[None, :], axis=1), float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, axis=0)).to(tl.float32)  # finite: every block holds >= 1 visible key
            alpha = tl.exp(m_i - m_new)
            p = tl.exp(s - m_new)
            acc = acc * alpha + tl.sum(p[:, None] * v.to(tl.float32), axis=0)
            l_i = l_i * alpha + tl.sum(p, axis=0)
            m_i = m_new
        out = (bh * NS + sp)
        tl.store(ACC + out * D + d, acc)
        tl.store(M + out, m_i)  # -inf for an empty chunk: weight 0 in the merge
        tl.store(L + out, l_i)

    return kernel


def decode_attention(q, k_cache, v_cache, pos, config: dict | None = None):
    """Triton version of :func:`decode_attention_reference` (same arguments and result);
    ``config`` overrides :data:`DEFAULT_CONFIG` (benchmarks)."""
    global _kernel
    if _kernel is None:
        _kernel = _build_kernel()
    B, H, D = q.shape
    Hkv, Lmax = k_cache.shape[1], k_cache.shape[2]
    if D & (D - 1) or k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:
        return decode_attention_reference(q, k_cache, v_cache, pos)
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    split, block = cfg["SPLIT"], min(cfg["BLOCK"], cfg["SPLIT"])
    q = q.contiguous()
    ns = -(-Lmax // split)
    acc = torch.empty(B * H * ns, D, device=q.device, dtype=torch.float32)
    m = torch.empty(B * H * ns, device=q.device, dtype=torch.float32)
    l_ = torch.empty(B * H * ns, device=q.device, dtype=torch.float32)
    _kernel[(B * H, ns)](
        q, k_cache, v_cache, pos, acc, m, l_, 1.0 / math.sqrt(D),
        q.stride(0), q.stride(1), k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2),
        H=H, GROUP=H // Hkv, D=D, SPLIT=split, BLOCK=block, NS=ns, STAGES=cfg["num_stages"], num_warps=cfg["num_warps"],
    )
    # merge the chunks' partial softmaxes (empty chunks have m = -inf and weight 0)
    m = m.view(B, H, ns)
    mx = m.max(-1, keepdim=True).values
    w = torch.exp(m - mx)
    num = (w[..., None] * acc.view(B, H, ns, D)).sum(2)
    den = (w * l_.view(B, H, ns)).sum(-1, keepdim=True)
    return (num / den).to(q.dtype)
