"""One-pass cross-entropy over a chunk of logits, in place: one Triton program per row.

The compiled form of ``loss._softmax`` reads each row of logits twice (once for the
log-sum-exp, once for softmax - onehot) and writes the gradient: three passes over a
(tokens x vocab) tensor, 2.1 GB per 32,768-token chunk at the study's vocab. Here a program holds
its whole row in registers (vocab <= MAX_VOCAB), so the logits are read once and the gradient is
written over them: two passes, and no second chunk-sized buffer. (``CHUNK`` > 0 streams the row
twice instead, for when holding it spills registers; which is faster is for the device to say.)

    loss_i = logsumexp(z_i) - z_i[t_i]          g_i = (softmax(z_i) - onehot(t_i)) * inv_n

Softmax and log-sum-exp are fp32; ``g`` is stored in the logits' dtype. This module imports
Triton: ``loss`` imports it only on CUDA (and in the interpreter tests).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_VOCAB = 65536  # one row per program
NUM_WARPS = 16  # 32,768-wide rows held whole: 64 values per thread; see BENCHMARKS.md
# 0: hold the row in registers (one read). Else: stream it in CHUNK-wide pieces twice (online
# log-sum-exp, then the gradient), the second read served from L2 while the row (64 KB) is hot
CHUNK = 0


@triton.jit
def _ce_rows_kernel(Z, T, LOSS, V, stride_z, inv_n, BLOCK: tl.constexpr, CHUNK: tl.constexpr):
    row = tl.program_id(0)
    base = Z + row.to(tl.int64) * stride_z
    target = tl.load(T + row)
    if CHUNK == 0:
        cols = tl.arange(0, BLOCK)
        inside = cols < V
        z = tl.load(base + cols, mask=inside, other=-float("inf")).to(tl.float32)
        m = tl.max(z, 0)
        e = tl.exp(z - m)  # exp(-inf) = 0 for the padding columns
        s = tl.sum(e, 0)
        is_target = cols == target
        z_target = tl.sum(tl.where(is_target, z, 0.0), 0)
        tl.store(LOSS + row, m + tl.log(s) - z_target)
        g = (e / s - is_target.to(tl.float32)) * inv_n
        tl.store(base + cols, g.to(Z.dtype.element_ty), mask=inside)
    else:
        m = tl.max(tl.full((CHUNK,), -float("inf"), tl.float32), 0)
        s = tl.sum(tl.zeros((CHUNK,), tl.float32), 0)
        z_target = s
        for c in range(0, V, CHUNK):
            cols = c + tl.arange(0, CHUNK)
            z = tl.load(base + cols, mask=cols < V, other=-float("inf")).to(tl.float32)
            m_new = tl.maximum(m, tl.max(z, 0))
            s = s * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new), 0)
            m = m_new
            z_target += tl.sum(tl.where(cols == target, z, 0.0), 0)
        lse = m + tl.log(s)
        tl.store(LOSS + row, lse - z_target)
        for c in range(0, V, CHUNK):
            cols = c + tl.arange(0, CHUNK)
            inside = cols < V
            z = tl.load(base + cols, mask=inside, other=-float("inf")).to(tl.float32)
            g = (tl.exp(z - lse) - (cols == target).to(tl.float32)) * inv_n
            tl.store(base + cols, g.to(Z.dtype.element_ty), mask=inside)


def cross_entropy_rows_(logits: torch.Tensor, targets: torch.Tensor, inv_n: float) -> torch.Tensor:
    """logits (N, V), row-major, overwritten with the gradient of ``inv_n * sum(loss)`` w.r.t. them;
    returns the per-row losses (N,) fp32."""
    N, V = logits.shape
    if V > MAX_VOCAB or logits.stride(1) != 1:
        raise ValueError(f"cross_entropy_rows_: needs vocab <= {MAX_VOCAB} and unit column stride, got {tuple(logits.shape)}")
    loss = torch.empty(N, dtype=torch.float32, device=logits.device)
    block = triton.next_power_of_2(V)
    _ce_rows_kernel[(N,)](logits, targets, loss, V, logits.stride(0), float(inv_n),
                          BLOCK=block, CHUNK=CHUNK if 0 < CHUNK < block else 0, num_warps=NUM_WARPS)
    return loss
