"""Gated linear attention (FLA ``chunk_gla`` / ``fused_recurrent_gla``) in PyTorch.

Per head, with a (K, V) matrix state S and a per-key-channel log decay g_t <= 0:

    S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T
    o_t = scale * S_t^T q_t                   (scale = K^-1/2 unless given)

Layouts follow FLA: q, k, g (B, T, H, K); v (B, T, H, V); states (B, H, K, V) (``state_v_first``
False). ``chunk_gla`` is the chunked parallel form: inside a chunk of L tokens, with
b_t = sum_{s<=t} g_s (cumulated within the chunk),

    o_t = scale * [ (q_t * exp(b_t))^T S_prev  +  sum_{s<=t} (sum_k q_t,k k_s,k exp(b_t,k - b_s,k)) v_s ]

and the state passes from chunk to chunk as S = diag(exp(b_L)) S_prev + sum_s (k_s * exp(b_L - b_s)) v_s^T.
Every exponent is <= 0 (no exp of a positive cumsum), so it is stable for any gate values; the
price is an explicit (L, L, K) decay tensor per chunk, which a small L keeps cheap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def chunk_gla(q, k, v, g, scale=None, initial_state=None, output_final_state=False, chunk_size=16):
    dtype = q.dtype
    ct = torch.promote_types(q.dtype, torch.float32)  # accumulate in fp32 (fp64 stays fp64)
    B, T, H, K = q.shape
    if scale is None:
        scale = K ** -0.5
    L = chunk_size
    pad = (-T) % L  # zero k/v and zero log-decay in the padding change nothing
    q, k, v, g = (F.pad(t.to(ct), (0, 0, 0, 0, 0, pad)) for t in (q, k, v, g))
    n = (T + pad) // L
    # (B, H, n, L, d)
    q, k, v, g = (t.view(B, n, L, H, -1).permute(0, 3, 1, 2, 4) for t in (q, k, v, g))
    q = q * scale
    b = g.cumsum(3)
    causal = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    # intra-chunk scores with per-channel relative decay; masked before exp so nothing overflows
    rel = (b[..., :, None, :] - b[..., None, :, :]).masked_fill(~causal[:, :, None], float("-inf"))
    scores = torch.einsum("bhntk,bhnsk,bhntsk->bhnts", q, k, rel.exp())
    o = scores @ v
    q_dec = q * b.exp()                                  # for the carried-in state
    k_dec = k * (b[..., -1:, :] - b).exp()               # for the state handed on
    a_chunk = b[..., -1, :].exp()                        # (B, H, n, K)
    S = q.new_zeros(B, H, K, v.shape[-1]) if initial_state is None else initial_state.to(ct)
    inter = []
    for c in range(n):  # n = T / L sequential steps on (K, V) states; everything else is batched
        inter.append(q_dec[:, :, c] @ S)
        S = a_chunk[:, :, c, :, None] * S + k_dec[:, :, c].transpose(-1, -2) @ v[:, :, c]
    o = o + torch.stack(inter, dim=2)
    o = o.permute(0, 2, 3, 1, 4).reshape(B, n * L, H, -1)[:, :T].to(dtype)
    return o, (S if output_final_state else None)


def recurrent_gla_step(q, k, v, g, state, scale=None):
    """One token: q, k, g (B, H, K), v (B, H, V); ``state`` (B, H, K, V) updated in place."""
    ct = torch.promote_types(q.dtype, torch.float32)  # accumulate in fp32 (fp64 stays fp64)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    S = state.to(ct) * g.to(ct).exp()[..., None] + k.to(ct)[..., None] * v.to(ct)[..., None, :]
    state.copy_(S.to(state.dtype))
    return ((q.to(ct) * scale)[..., None] * S).sum(-2).to(q.dtype)
