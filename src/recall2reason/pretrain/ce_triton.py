"""One-pass cross-entropy over a chunk of logits, in place: one Triton program per row.

The compiled form of ``loss._chunk_fwd_bwd`` reads each row of logits twice (once for the
log-sum-exp, once for softmax - onehot) and writes the gradient: three passes over a
(tokens x vocab) tensor, 2.1 GB per 32,768-token chunk at the study's vocab. Here a program holds
its whole row in registers (vocab <= MAX_VOCAB), so the logits are read once and the gradient is
written over them: two passes, and no second chunk-sized buffer.

    loss_i = logsumexp(z_i) - z_i[t_i]          g_i = (softmax(z_i) - onehot(t_i)) * inv_n

Softmax and log-sum-exp are fp32; ``g`` is stored in the logits' dtype. This module imports
Triton: ``loss`` imports it only on CUDA (and in the interpreter tests).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_VOCAB = 65536  # one row per program, in registers
NUM_WARPS = 16  # 32,768-wide rows: 64 values per thread; see BENCHMARKS.md


@triton.jit
def _ce_rows_kernel(Z, T, LOSS, V, stride_z, inv_n, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    inside = cols < V
    ptr = Z + row.to(tl.int64) * stride_z + cols
    z = tl.load(ptr, mask=inside, other=-float("inf")).to(tl.float32)
    m = tl.max(z, 0)
    e = tl.exp(z - m)  # exp(-inf) = 0 for the padding columns
    s = tl.sum(e, 0)
    target = tl.load(T + row)
    is_target = cols == target
    z_target = tl.sum(tl.where(is_target, z, 0.0), 0)
    tl.store(LOSS + row, m + tl.log(s) - z_target)
    g = (e / s - is_target.to(tl.float32)) * inv_n
    tl.store(ptr, g.to(Z.dtype.element_ty), mask=inside)


def cross_entropy_rows_(logits: torch.Tensor, targets: torch.Tensor, inv_n: float) -> torch.Tensor:
    """logits (N, V), row-major, overwritten with the gradient of ``inv_n * sum(loss)`` w.r.t. them;
    returns the per-row losses (N,) fp32."""
    N, V = logits.shape
    if V > MAX_VOCAB or logits.stride(1) != 1:
        raise ValueError(f"cross_entropy_rows_: needs vocab <= {MAX_VOCAB} and unit column stride, got {tuple(logits.shape)}")
    loss = torch.empty(N, dtype=torch.float32, device=logits.device)
    _ce_rows_kernel[(N,)](logits, targets, loss, V, logits.stride(0), float(inv_n),
                          BLOCK=triton.next_power_of_2(V), num_warps=NUM_WARPS)
    return loss
