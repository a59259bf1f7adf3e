"""Split attention's fused q|k|v projection into heads and apply RoPE, in one Triton kernel each way.

Why: one GEMM for q, k and v reads x once, and its input gradient is one GEMM instead of three
plus their sum (benchmarks/reports/2026-12-04-pretrain-1-input-projections.md). Done in plain
PyTorch, inductor fused RoPE's backward with the concatenation of the three gradients into one slow kernel (288 us where the
two RoPE kernels of separate projections took 32 us each, 8 x 2048 tokens), and the Transformer's
step lost 6 %. Here forward and backward are opaque custom ops: the forward reads the packed
projection once and writes q, k (rotated) and v as separate (B, T, heads, head_dim) tensors; the
backward reads their gradients and writes the packed gradient directly, rotated back, so nothing
is concatenated. The math is ``ops.rope.apply_rope`` (rotate-half, computed in fp32, cast back),
which is also the CPU twin (``qkv_rope_reference``); only the rounding of fused multiply-adds may
differ. Triton is imported lazily (on first call), so importing this module needs only PyTorch.
"""

from __future__ import annotations

import torch

from recall2reason.models.ops.rope import apply_rope

# tokens per program (one program per block of tokens and head), warps per program: on an H100,
# BLOCK_T 16-64 x 1-4 warps were within 2.5 % of each other (benchmarks/reports/
# 2026-12-06-pretrain-1-packed-qkv.md); this one is the middle of that range.
DEFAULT_CONFIG = {"BLOCK_T": 32, "num_warps": 2}
_kernel = None


def qkv_rope_reference(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_heads: int, n_kv_heads: int):
    """qkv (B, T, (H + 2 Hkv) hd) -> q (B, T, H, hd), k, v (B, T, Hkv, hd), RoPE on q and k at
    positions 0..T-1 of the fp32 tables ``cos`` / ``sin`` (>= T rows, hd columns)."""
    B, T, W = qkv.shape
    hd = W // (n_heads + 2 * n_kv_heads)
    q, k, v = qkv.view(B, T, -1, hd).split([n_heads, n_kv_heads, n_kv_heads], dim=2)
    cos, sin = cos[:T, None], sin[:T, None]  # (T, 1, hd): broadcast over heads
    return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v


def _build_kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def kernel(PACKED, Q, K, V, COS, SIN, N, T, s_cos, s_q, s_k, s_v,
               H: tl.constexpr, HKV: tl.constexpr, HD: tl.constexpr, BLOCK: tl.constexpr,
               BACKWARD: tl.constexpr):
        # one program per (block of BLOCK tokens, head among the H + 2 HKV of the packed row).
        # Forward: packed -> q / k / v; backward: their gradients -> packed (the transposed rotation).
        # q / k / v rows (one token, all heads) are s_q / s_k / s_v apart; heads HD apart.
        rows = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        h = tl.program_id(1)
        half = tl.arange(0, HD // 2)
        mask = (rows < N)[:, None]
        packed = PACKED + rows[:, None].to(tl.int64) * ((H + 2 * HKV) * HD) + h * HD + half[None, :]
        if h < H:
            part = Q + rows[:, None].to(tl.int64) * s_q + h * HD + half[None, :]
        elif h < H + HKV:
            part = K + rows[:, None].to(tl.int64) * s_k + (h - H) * HD + half[None, :]
        else:
            part = V + rows[:, None].to(tl.int64) * s_v + (h - H - HKV) * HD + half[None, :]
        if BACKWARD:
            src, dst = part, packed
        else:
            src, dst = packed, part
        x1 = tl.load(src, mask=mask).to(tl.float32)
        x2 = tl.load(src + HD // 2, mask=mask).to(tl.float32)
        if h < H + HKV:  # q and k heads rotate; v heads are copied
            tab = (rows % T)[:, None] * s_cos + half[None, :]
            c1 = tl.load(COS + tab, mask=mask)
            c2 = tl.load(COS + tab + HD // 2, mask=mask)
            s1 = tl.load(SIN + tab, mask=mask)
            s2 = tl.load(SIN + tab + HD // 2, mask=mask)
            if BACKWARD:  # y1 = x1 c1 - x2 s1, y2 = x2 c2 + x1 s2  =>  dx1 = dy1 c1 + dy2 s2, dx2 = dy2 c2 - dy1 s1
                x1, x2 = x1 * c1 + x2 * s2, x2 * c2 - x1 * s1
            else:
                x1, x2 = x1 * c1 - x2 * s1, x2 * c2 + x1 * s2
        tl.store(dst, x1.to(dst.dtype.element_ty), mask=mask)
        tl.store(dst + HD // 2, x2.to(dst.dtype.element_ty), mask=mask)

    return kernel


def _token_rows(t: torch.Tensor) -> bool:
    """(B, T, heads, hd) laid out as the kernel reads it: a token's heads side by side, tokens one stride apart."""
    return t.stride(3) == 1 and t.stride(2) == t.shape[3] and t.stride(0) == t.shape[1] * t.stride(1)


def _launch(packed, q, k, v, cos, sin, backward: bool) -> None:
    global _kernel
    config = DEFAULT_CONFIG
    if _kernel is None:
        _kernel = _build_kernel()
    B, T, H, hd = q.shape
    Hkv = k.shape[2]
    assert all(map(_token_rows, (q, k, v))) and packed.is_contiguous()
    assert cos.stride(1) == 1 and sin.stride() == cos.stride()
    if B * T == 0:
        return
    grid = (-(-B * T // config["BLOCK_T"]), H + 2 * Hkv)
    _kernel[grid](packed, q, k, v, cos, sin, B * T, T, cos.stride(0), q.stride(1), k.stride(1), v.stride(1),
                  H=H, HKV=Hkv, HD=hd, BLOCK=config["BLOCK_T"], BACKWARD=backward, num_warps=config["num_warps"])


def _check(qkv, cos, n_heads, n_kv_heads) -> int:
    B, T, W = qkv.shape
    hd = W // (n_heads + 2 * n_kv_heads)
    if hd * (n_heads + 2 * n_kv_heads) != W or hd < 2 or hd & (hd - 1) or cos.shape[0] < T or cos.shape[1] != hd:
        raise ValueError(f"qkv_rope: width {W} for {n_heads} + 2 x {n_kv_heads} heads (power-of-two head_dim), "
                         f"tables {tuple(cos.shape)} for {T} positions")
    return hd


@torch.library.custom_op("recall2reason::qkv_rope", mutates_args=())
def qkv_rope(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_heads: int,
             n_kv_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``qkv_rope_reference`` as one Triton kernel; q, k, v are new contiguous tensors."""
    B, T, _ = qkv.shape
    hd = _check(qkv, cos, n_heads, n_kv_heads)
    q = qkv.new_empty(B, T, n_heads, hd)
    k, v = qkv.new_empty(B, T, n_kv_heads, hd), qkv.new_empty(B, T, n_kv_heads, hd)
    _launch(qkv.contiguous(), q, k, v, cos, sin, backward=False)
    return q, k, v


@qkv_rope.register_fake
def _(qkv, cos, sin, n_heads, n_kv_heads):
    B, T, W = qkv.shape
    hd = W // (n_heads + 2 * n_kv_heads)  # may be symbolic here: the real call checks it
    return qkv.new_empty(B, T, n_heads, hd), qkv.new_empty(B, T, n_kv_heads, hd), qkv.new_empty(B, T, n_kv_heads, hd)


@torch.library.custom_op("recall2reason::qkv_rope_backward", mutates_args=())
def qkv_rope_backward(dq: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor, cos: torch.Tensor,
                      sin: torch.Tensor) -> torch.Tensor:
    """The gradient of the packed projection from those of q, k, v (rotated back)."""
    B, T, H, hd = dq.shape
    dq, dk, dv = (t if _token_rows(t) else t.contiguous() for t in (dq, dk, dv))
    dpacked = dq.new_empty(B, T, (H + 2 * dk.shape[2]) * hd)
    _launch(dpacked, dq, dk, dv, cos, sin, backward=True)
    return dpacked


@qkv_rope_backward.register_fake
def _(dq, dk, dv, cos, sin):
    B, T, H, hd = dq.shape
    return dq.new_empty(B, T, (H + 2 * dk.shape[2]) * hd)


def _setup_context(ctx, inputs, output):
    _, cos, sin, _, _ = inputs
    ctx.save_for_backward(cos, sin)


def _backward(ctx, dq, dk, dv):
    cos, sin = ctx.saved_tensors
    return qkv_rope_backward(dq, dk, dv, cos, sin), None, None, None, None


qkv_rope.register_autograd(_backward, setup_context=_setup_context)
