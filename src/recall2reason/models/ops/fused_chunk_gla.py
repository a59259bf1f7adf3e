"""Chunked gated linear attention for training in two Triton kernels (forward, backward).

Same function as FLA's ``chunk_gla`` with no initial or final state (the training forward), for
(B, T, H, K) q, k, g <= 0 and (B, T, H, V) v. FLA runs it as ~5 kernels forward and ~7 backward,
each reading and writing chunk-sized intermediates (scores, states, their gradients) through
HBM. Here one program per (sequence, head) walks the chunks in order, keeping the (K, V) state
in registers: forward left to right, backward right to left with the state's gradient, so the
only intermediate in memory is the state at each chunk start (fp32, for the backward).

Inside a chunk of BT tokens, with b the log2 decay cumulated within the chunk,

    A[i, j] = sum_d q[i, d] k[j, d] 2^(b[i, d] - b[j, d])   (j <= i)

is one matmul of q * 2^(b - r) and k * 2^(r - b) with r = b_last / 2, halfway down the chunk's
decay: every factor then lies within 2^(range / 2). When some channel decays by more than
2^SAFE_LOG2 within a chunk (a gate near zero for many tokens), that chunk takes an exact
per-column loop instead (slow, but every exponent there is <= 0).

The gate's gradient uses dL/dB = q * dq - k * dk for the cumulative log decay B: dg is its
reverse cumsum within the chunk plus, for all tokens to the right, sum_v S * dS of the state
handed on (FLA's form too).

This module imports Triton: the GLA layer imports it inside its kernels path only. On CPU the
tests run these kernels in Triton's interpreter.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

CHUNK = 64
SAFE_LOG2 = 96.0  # the largest in-chunk decay range (log2) for the one-matmul scores; factors <= 2^48


# launch shapes tried on the GPU (the interpreter takes the first); the winner is cached per shape
_CONFIGS = [triton.Config({}, num_warps=w, num_stages=s) for w in (4, 8) for s in (1, 2)]
_tune = triton.autotune(configs=_CONFIGS[:1] if os.environ.get("TRITON_INTERPRET") == "1" else _CONFIGS,
                        key=["H", "K", "DV"])


@triton.jit
def _row(x, t, j):
    """Row j of a register tile x (rows indexed by t)."""
    return tl.sum(tl.where((t == j)[:, None], x, 0.0), axis=0)


@triton.jit
def _exact_scores(q, k, b, t, BT: tl.constexpr):
    # A[i, j] column by column with 2^(b_i - b_j) elementwise (<= 1 where j <= i: no overflow)
    A = tl.zeros([BT, BT], dtype=tl.float32)
    for j in range(BT):
        col = tl.sum(q * _row(k, t, j)[None, :] * tl.exp2(tl.minimum(b - _row(b, t, j)[None, :], 0.0)), axis=1)
        A = tl.where((t == j)[None, :], col[:, None], A)
    return A


@triton.jit
def _exact_scores_bwd(q, k, b, dA, t, BT: tl.constexpr, K: tl.constexpr):
    # the per-column form of the intra-chunk part: scores A and dq, dk from dA (causal, scaled)
    A = tl.zeros([BT, BT], dtype=tl.float32)
    dq = tl.zeros([BT, K], dtype=tl.float32)
    dk = tl.zeros([BT, K], dtype=tl.float32)
    for j in range(BT):
        kj = _row(k, t, j)
        E = tl.where((t >= j)[:, None], tl.exp2(tl.minimum(b - _row(b, t, j)[None, :], 0.0)), 0.0)
        A = tl.where((t == j)[None, :], tl.sum(q * kj[None, :] * E, axis=1)[:, None], A)
        dA_j = tl.sum(tl.where((t == j)[None, :], dA, 0.0), axis=1)
        dq += dA_j[:, None] * kj[None, :] * E
        dk = tl.where((t == j)[:, None], tl.sum(dA_j[:, None] * q * E, axis=0)[None, :], dk)
    return A, dq, dk


@triton.jit
def _program(H: tl.constexpr, BT: tl.constexpr):
    """This program's sequence and head (int64 offsets), the in-chunk positions and causal mask."""
    i_bh = tl.program_id(0)
    t = tl.arange(0, BT)
    return (i_bh // H).to(tl.int64), (i_bh % H).to(tl.int64), t, t[:, None] >= t[None, :]


@triton.jit
def _load_chunk(Q, Kk, V, G, i_b, i_h, i_t, T, NT, t,
                H: tl.constexpr, K: tl.constexpr, DV: tl.constexpr, BT: tl.constexpr):
    """Chunk i_t of one (sequence, head): q, k, v (zero past T), its in-chunk log2 decay b and
    total bl, the row mask and the offsets of its q / k / g rows, v rows and state."""
    dk, dv = tl.arange(0, K), tl.arange(0, DV)
    rows = i_t * BT + t
    m = (rows < T)[:, None]
    p_qk = (i_b * T + rows[:, None]) * (H * K) + i_h * K + dk[None, :]
    p_v = (i_b * T + rows[:, None]) * (H * DV) + i_h * DV + dv[None, :]
    p_h = ((i_b * NT + i_t) * H + i_h) * (K * DV) + dk[:, None] * DV + dv[None, :]
    q = tl.load(Q + p_qk, mask=m, other=0.0).to(tl.float32)
    k = tl.load(Kk + p_qk, mask=m, other=0.0).to(tl.float32)
    g = tl.load(G + p_qk, mask=m, other=0.0).to(tl.float32)
    v = tl.load(V + p_v, mask=m, other=0.0)
    b = tl.cumsum(g, axis=0) * 1.4426950408889634  # log2 e: the kernels use exp2
    bl = tl.sum(g, axis=0) * 1.4426950408889634
    return q, k, v, b, bl, m, p_qk, p_v, p_h


@_tune
@triton.jit
def _fwd(Q, Kk, V, G, O, HS, scale, T, NT,
         H: tl.constexpr, K: tl.constexpr, DV: tl.constexpr, BT: tl.constexpr,
         SAFE: tl.constexpr):
    i_b, i_h, t, causal = _program(H, BT)
    DT = Q.dtype.element_ty
    S = tl.zeros([K, DV], dtype=tl.float32)
    for i_t in range(NT):
        q, k, v, b, bl, m, p_qk, p_v, p_h = _load_chunk(Q, Kk, V, G, i_b, i_h, i_t, T, NT, t, H, K, DV, BT)
        tl.store(HS + p_h, S.to(HS.dtype.element_ty))  # the state entering this chunk, for the backward
        o = tl.dot((q * tl.exp2(b)).to(DT), S.to(DT))
        if -tl.min(bl, axis=0) < SAFE:
            r = bl * 0.5
            A = tl.dot((q * tl.exp2(b - r[None, :])).to(DT), tl.trans((k * tl.exp2(r[None, :] - b)).to(DT)))
        else:
            A = _exact_scores(q, k, b, t, BT)
        A = tl.where(causal, A, 0.0) * scale
        o = o * scale + tl.dot(A.to(DT), v)
        tl.store(O + p_v, o.to(O.dtype.element_ty), mask=m)
        S = S * tl.exp2(bl)[:, None] + tl.dot(tl.trans((k * tl.exp2(bl[None, :] - b)).to(DT)), v)


@_tune
@triton.jit
def _bwd(Q, Kk, V, G, HS, DO, DQ, DK, DV_, DG, scale, T, NT,
         H: tl.constexpr, K: tl.constexpr, DV: tl.constexpr, BT: tl.constexpr,
         SAFE: tl.constexpr):
    i_b, i_h, t, causal = _program(H, BT)
    DT = Q.dtype.element_ty
    dS = tl.zeros([K, DV], dtype=tl.float32)      # gradient of the state leaving the chunk
    S_next = tl.zeros([K, DV], dtype=tl.float32)  # that state (the one entering the chunk to the right)
    for it in range(NT):
        q, k, v, b, bl, m, p_qk, p_v, p_h = _load_chunk(Q, Kk, V, G, i_b, i_h, NT - 1 - it, T, NT, t, H, K, DV, BT)
        do = tl.load(DO + p_v, mask=m, other=0.0)
        S = tl.load(HS + p_h)
        # dL/dB summed over every token right of this chunk: scaling the state handed on by e^delta
        # shifts all their B by delta, so it is sum_v S_next * dS (a sum over the whole tail of
        # q * dq - k * dk would lose the small difference of large terms)
        carry = tl.sum(S_next * dS, axis=1)
        dA = tl.where(causal, tl.dot(do, tl.trans(v)), 0.0) * scale
        if -tl.min(bl, axis=0) < SAFE:
            r = bl * 0.5
            eq = tl.exp2(b - r[None, :])
            ek = tl.exp2(r[None, :] - b)
            # fp32 operands (TF32 on the GPU) in the backward's scores: bf16 ones made dq, dk and dv
            # ~1.6x and dv up to 7x further from fp64 than FLA's (2026-12-06-pretrain-6-fused-gla)
            qt = q * eq
            kt = k * ek
            A = tl.where(causal, tl.dot(qt, tl.trans(kt)), 0.0) * scale
            dq = tl.dot(dA, kt) * eq
            dk = tl.dot(tl.trans(dA), qt) * ek
        else:
            A, dq, dk = _exact_scores_bwd(q, k, b, dA, t, BT, K)
            A = A * scale
        eb = tl.exp2(b)
        ed = tl.exp2(bl[None, :] - b)
        dv = tl.dot(tl.trans(A), do.to(tl.float32)) + tl.dot((k * ed).to(DT), dS.to(DT))
        dq += tl.dot(do, tl.trans(S.to(DT))) * (eb * scale)
        dk += tl.dot(v, tl.trans(dS.to(DT))) * ed
        dB = q * dq - k * dk
        dg = tl.cumsum(dB, axis=0, reverse=True) + carry[None, :]
        tl.store(DQ + p_qk, dq.to(DQ.dtype.element_ty), mask=m)
        tl.store(DK + p_qk, dk.to(DK.dtype.element_ty), mask=m)
        tl.store(DG + p_qk, dg.to(DG.dtype.element_ty), mask=m)
        tl.store(DV_ + p_v, dv.to(DV_.dtype.element_ty), mask=m)
        dS = dS * tl.exp2(bl)[:, None] + tl.dot(tl.trans((q * eb * scale).to(DT)), do)
        S_next = S


def _check(q, k, v, g):
    if not (q.shape == k.shape == g.shape and v.shape[:3] == q.shape[:3]):
        raise ValueError(f"fused_chunk_gla: q, k, g must share (B, T, H, K) and v (B, T, H): q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}, g {tuple(g.shape)}")
    K, V = q.shape[-1], v.shape[-1]
    if K < 16 or V < 16 or K & (K - 1) or V & (V - 1):
        raise ValueError(f"fused_chunk_gla: head dims must be powers of two >= 16, got K={K}, V={V}")
    if q.dtype not in (torch.bfloat16, torch.float32) or not (q.dtype == k.dtype == v.dtype):
        # fp16 cannot hold the 2^48 scaling factors of the one-matmul scores
        raise ValueError(f"fused_chunk_gla: q, k, v must all be bf16 or all fp32, got {q.dtype}, {k.dtype}, {v.dtype}")


class _FusedChunkGLA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, g, scale, exact):
        q, k, v, g = (x.contiguous() for x in (q, k, v, g))
        B, T, H, K = q.shape
        NT = -(-T // CHUNK)
        o = torch.empty_like(v)
        states = q.new_empty(B, NT, H, K, v.shape[-1], dtype=torch.float32)  # fp32: the gate's gradient reads them
        _fwd[(B * H,)](q, k, v, g, o, states, scale, T, NT, H=H, K=K, DV=v.shape[-1], BT=CHUNK,
                       SAFE=-1.0 if exact else SAFE_LOG2)
        ctx.save_for_backward(q, k, v, g, states)
        ctx.scale, ctx.exact = scale, exact
        return o

    @staticmethod
    def backward(ctx, do):
        q, k, v, g, states = ctx.saved_tensors
        B, T, H, K = q.shape
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        dg = torch.empty(g.shape, dtype=torch.float32, device=g.device)  # as FLA: fp32, cast by autograd
        _bwd[(B * H,)](q, k, v, g, states, do.contiguous(), dq, dk, dv, dg, ctx.scale, T, states.shape[1],
                       H=H, K=K, DV=v.shape[-1], BT=CHUNK, SAFE=-1.0 if ctx.exact else SAFE_LOG2)
        return dq, dk, dv, dg, None, None


@torch.compiler.disable
def fused_chunk_gla(q, k, v, g, scale: float | None = None, exact: bool = False) -> torch.Tensor:
    """o of ``fla.ops.gla.chunk_gla(q, k, v, g)`` (no initial or final state) for (B, T, H, K) q, k,
    g and (B, T, H, V) v. ``exact`` forces the per-column scores in every chunk (for tests)."""
    _check(q, k, v, g)
    return _FusedChunkGLA.apply(q, k, v, g, q.shape[-1] ** -0.5 if scale is None else scale, exact)
