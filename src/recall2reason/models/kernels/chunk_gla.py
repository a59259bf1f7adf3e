"""FLA's ``chunk_gla`` for training, with the forward's chunk states kept for the backward.

FLA's chunk GLA (fla 0.6.0, ``fla.ops.gla.chunk``) computes the state at every chunk boundary,
``h`` of shape (B, T/64, H, K, V), in its forward, stores it in bf16 for the output and drops it;
its backward then runs the same state kernel again, in fp32. Here the forward makes that fp32 call
itself and saves ``h``, so the backward skips one kernel. The output kernel casts ``h`` to bf16
before its matmul either way, so outputs and gradients equal FLA's bit for bit
(``tests/test_gpu_kernels.py``). Cost: ``h`` stays alive from forward to backward, 4 bytes x
B x T x H x K x V / 64 (201 MB per layer at 32 x 2048, paper shapes).

Only FLA's own pieces are called, in FLA's order; this module imports FLA, so import it only
inside the kernels path (never on CPU machines or in CI).
"""

from __future__ import annotations

import torch
import triton
from fla.ops.common.chunk_h import chunk_fwd_h
from fla.ops.gla.chunk import chunk_gla_bwd, chunk_gla_fwd_intra_gk, chunk_gla_fwd_o_gk
from fla.ops.utils.constant import RCP_LN2
from fla.ops.utils.cumsum import chunk_local_cumsum
from fla.utils import input_guard


class _ChunkGLAKeepStates(torch.autograd.Function):
    @staticmethod
    @input_guard
    def forward(ctx, q, k, v, g, scale):
        chunk_size = min(64, max(16, triton.next_power_of_2(q.shape[1])))  # FLA's choice
        g_cumsum = chunk_local_cumsum(g, chunk_size, scale=RCP_LN2)
        h, _ = chunk_fwd_h(k=k, v=v, g=None, gk=g_cumsum, gv=None, h0=None, output_final_state=False,
                           chunk_size=chunk_size, states_in_fp32=True)  # the backward's own call
        A = chunk_gla_fwd_intra_gk(q=q, k=k, g=g_cumsum, scale=scale, chunk_size=chunk_size)
        o = chunk_gla_fwd_o_gk(q=q, v=v, g=g_cumsum, A=A, h=h, scale=scale, chunk_size=chunk_size)
        # as FLA: a bf16 gate is kept and its cumsum recomputed; an fp32 one is replaced by its cumsum
        g, g_cumsum = (g, None) if g.dtype != torch.float else (None, g_cumsum)
        ctx.save_for_backward(q, k, v, g, g_cumsum, h, A)
        ctx.scale, ctx.chunk_size = scale, chunk_size
        return o

    @staticmethod
    @input_guard
    def backward(ctx, do):
        q, k, v, g, g_cumsum, h, A = ctx.saved_tensors
        dq, dk, dv, dg, _ = chunk_gla_bwd(q=q, k=k, v=v, g=g, g_cumsum=g_cumsum, scale=ctx.scale,
                                          initial_state=None, h=h, A=A, do=do, dht=None,
                                          chunk_size=ctx.chunk_size)
        return dq.to(q), dk.to(k), dv.to(v), dg, None


@torch.compiler.disable
def chunk_gla_keep_states(q, k, v, g, scale: float | None = None) -> torch.Tensor:
    """o of ``fla.ops.gla.chunk_gla(q, k, v, g)`` for (B, T, H, K) inputs, no initial or final
    state (the training forward)."""
    if not (q.shape == k.shape == g.shape and v.shape[:3] == q.shape[:3]):
        raise ValueError(f"chunk_gla_keep_states: q, k, g must share (B, T, H, K) and v (B, T, H): "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, g {tuple(g.shape)}")
    return _ChunkGLAKeepStates.apply(q, k, v, g, q.shape[-1] ** -0.5 if scale is None else scale)
