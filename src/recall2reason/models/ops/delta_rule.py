"""The gated delta rule (FLA ``chunk_gated_delta_rule`` / ``fused_recurrent_gated_delta_rule``).

Per head, with a (K, V) matrix state S, a scalar log decay g_t <= 0 and a write strength beta_t:

    S'_t  = exp(g_t) S_{t-1}
    S_t   = S'_t + k_t (beta_t (v_t - S'_t^T k_t))^T       (delta rule: replace the value at k_t)
    o_t   = scale * S_t^T q_t

Layouts follow FLA: q, k (B, T, H, K); v (B, T, H, V); g, beta (B, T, H); states (B, H, K, V).
``chunk_gated_delta_rule`` is the chunked form of FLA's ``naive_chunk_gated_delta_rule`` (WY
representation): inside a chunk the T x T system of delta-rule corrections is lower-triangular,
solved with one ``solve_triangular`` instead of a row loop; chunks pass the state sequentially.
q/k L2 normalisation (``use_qk_l2norm``) matches FLA's kernel: x / sqrt(sum x^2 + 1e-6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)


def chunk_gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                           use_qk_l2norm=False, chunk_size=64):
    dtype = q.dtype
    ct = torch.promote_types(q.dtype, torch.float32)  # accumulate in fp32 (fp64 stays fp64)
    B, T, H, K = q.shape
    V = v.shape[-1]
    if scale is None:
        scale = K ** -0.5
    q, k, v, g, beta = (t.to(ct) for t in (q, k, v, g, beta))
    if use_qk_l2norm:
        q, k = l2norm(q), l2norm(k)
    L = chunk_size
    pad = (-T) % L  # padded steps have k = v = beta = 0 and g = 0: they leave the state alone
    q, k, v = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v))
    g, beta = (F.pad(t, (0, 0, 0, pad)) for t in (g, beta))
    n = (T + pad) // L
    q, k, v = (t.view(B, n, L, H, -1).permute(0, 3, 1, 2, 4) for t in (q, k, v))  # (B, H, n, L, d)
    g, beta = (t.view(B, n, L, H).permute(0, 3, 1, 2) for t in (g, beta))           # (B, H, n, L)
    q = q * scale
    b = g.cumsum(-1)                                                                  # within-chunk log decay
    tril = torch.ones(L, L, dtype=torch.bool, device=q.device).tril()
    decay = (b[..., :, None] - b[..., None, :]).masked_fill(~tril, float("-inf")).exp()  # exp(b_t - b_s), s <= t
    # WY form: (I + strictly_lower(beta_t k_t.k_s decay_ts)) [U | W] = [beta v | beta k exp(b)]
    kb = k * beta[..., None]
    A = ((kb @ k.transpose(-1, -2)) * decay).tril(-1) + torch.eye(L, device=q.device)
    rhs = torch.cat([v * beta[..., None], kb * b.exp()[..., None]], dim=-1)
    UW = torch.linalg.solve_triangular(A, rhs, upper=False, unitriangular=True)
    U, W = UW[..., :V], UW[..., V:]
    attn = (q @ k.transpose(-1, -2)) * decay                                          # causal (decay is 0 above)
    k_out = k * (b[..., -1:] - b).exp()[..., None]                                    # decay to the chunk end
    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.to(ct)
    out = []
    for c in range(n):
        v_new = U[:, :, c] - W[:, :, c] @ S                                           # corrected values
        out.append((q[:, :, c] * b[:, :, c, :, None].exp()) @ S + attn[:, :, c] @ v_new)
        S = S * b[:, :, c, -1, None, None].exp() + k_out[:, :, c].transpose(-1, -2) @ v_new
    o = torch.stack(out, dim=2).permute(0, 2, 3, 1, 4).reshape(B, n * L, H, V)[:, :T].to(dtype)
    return o, (S if output_final_state else None)


def recurrent_gated_delta_rule_step(q, k, v, g, beta, state, scale=None, use_qk_l2norm=False):
    """One token: q, k (B, H, K), v (B, H, V), g, beta (B, H); ``state`` (B, H, K, V) in place."""
    ct = torch.promote_types(q.dtype, torch.float32)  # accumulate in fp32 (fp64 stays fp64)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    q, k, v = q.to(ct), k.to(ct), v.to(ct)
    if use_qk_l2norm:
        q, k = l2norm(q), l2norm(k)
    S = state.to(ct) * g.to(ct).exp()[..., None, None]
    # k^T S and q^T S as batched matrix-vector products: an elementwise product summed over K let
    # CPU threads split the batch at element (not row) boundaries, so a row's rounding, and then
    # its sampled tokens, depended on its neighbours in the batch (benchmarks' reorder check)
    v_new = beta.to(ct)[..., None] * (v - torch.einsum("bhk,bhkv->bhv", k, S))
    S = S + k[..., None] * v_new[..., None, :]
    state.copy_(S.to(state.dtype))
    return torch.einsum("bhk,bhkv->bhv", q * scale, S).to(v.dtype)
