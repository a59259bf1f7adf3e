"""Mamba1's selective scan (mamba-ssm ``selective_scan_fn`` / ``selective_state_update``) in PyTorch.

Per channel d and state index n, with Δ = softplus(delta + delta_bias):

    h_t[d, n] = exp(Δ_t[d] A[d, n]) h_{t-1}[d, n] + Δ_t[d] B_t[n] u_t[d]
    y_t[d]    = sum_n C_t[n] h_t[d, n] + D[d] u_t[d]
    out_t[d]  = y_t[d] * silu(z_t[d])

Layouts follow mamba-ssm: u, delta, z (b, d, l); A (d, n); B, C (b, n, l); D, delta_bias (d,).
Computed in fp32 (as the CUDA kernel does) and returned in u's dtype. ``selective_scan`` is the
chunked training / prefill form; ``selective_state_step`` the one-token form used for decoding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   initial_state=None, return_last_state=False, chunk_size=None):
    """Chunked form (L ~ sqrt(l) steps per chunk, all chunks at once), never materialising the
    (b, d, l, n) state sequence: inside chunk c, with h_c the state entering it and
    cumΔ_t = sum of Δ from the chunk start to t,

        h_t = local_t + exp(cumΔ_t A) h_c        (local_t: the recurrence run from zero in the chunk)
        y_t = C_t . local_t + C_t . (exp(cumΔ_t A) h_c)

    local_t and its readout C_t . local_t come from L vectorised steps over all chunks; h_c from
    one pass over the chunks. All decays are exp of non-positive numbers (A < 0, Δ >= 0)."""
    dtype = u.dtype
    ct = torch.promote_types(u.dtype, torch.float32)  # accumulate in fp32 (fp64 stays fp64)
    u, delta, B, C, A = u.to(ct), delta.to(ct), B.to(ct), C.to(ct), A.to(ct)
    if delta_bias is not None:
        delta = delta + delta_bias.to(ct)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    b, d, l = u.shape
    n = A.shape[1]
    L = chunk_size or max(1, 2 ** round(math.log2(math.sqrt(l))))
    pad = (-l) % L  # Δ = 0 after the end: decay 1, input 0, the state passes through unchanged
    nc = (l + pad) // L
    # per-step slices, chunk position first: (L, b, d, nc) and (L, b, 1, nc, n)
    steps = lambda x: F.pad(x, (0, pad)).view(*x.shape[:2], nc, L).movedim(-1, 0)
    dt_s, du_s = steps(delta).unbind(0), steps(delta * u).unbind(0)
    B_s, C_s = (steps(x).transpose(2, 3)[:, :, None].unbind(0) for x in (B, C))
    cum = steps(delta).cumsum(0)  # (L, b, d, nc): Δ summed from the chunk start
    A_ = A[:, None, :]  # (d, 1, n)
    local = None
    y = []
    for i in range(L):  # 1. every chunk from a zero state
        inp = du_s[i][..., None] * B_s[i]
        local = inp if local is None else torch.addcmul(inp, torch.exp(dt_s[i][..., None] * A_), local)
        y.append((local * C_s[i]).sum(-1))
    # 2. the state entering each chunk: H_c = exp(A ΣΔ_chunk) H_{c-1} + local_end
    chunk_decay = torch.exp(cum[-1][..., None] * A_).unbind(2)  # per chunk (b, d, n)
    ends = local.unbind(2)
    H = u.new_zeros(b, d, n) if initial_state is None else initial_state.to(ct)
    entering = []
    for c in range(nc):
        entering.append(H)
        H = torch.addcmul(ends[c], chunk_decay[c], H)
    entering = torch.stack(entering, 2)  # (b, d, nc, n)
    cum_s = cum.unbind(0)
    for i in range(L):  # 3. read out the carried-in state
        y[i] = y[i] + (torch.exp(cum_s[i][..., None] * A_) * entering * C_s[i]).sum(-1)
    y = torch.stack(y, -1).flatten(2)[..., :l]  # (b, d, l)
    if D is not None:
        y = y + D.to(ct)[:, None] * u
    if z is not None:
        y = y * F.silu(z.to(ct))
    y = y.to(dtype)
    return (y, H) if return_last_state else y


def state_update_bias(dt_bias, D):
    """``dt_bias`` for mamba-ssm's ``selective_state_update``: a zero bias where there is none (Δ
    clamped before the scan), since its 2.3 launcher unpacks ``dt_bias.stride()`` and fails on None."""
    return dt_bias if dt_bias is not None else torch.zeros_like(D, dtype=torch.float32)


def selective_state_step(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    """One token: state (b, d, n) updated in place; x, dt, z (b, d); B, C (b, n) -> y (b, d)."""
    ct = torch.promote_types(x.dtype, torch.float32)  # accumulate in fp32 (fp64 stays fp64)
    dt = dt.to(ct)
    if dt_bias is not None:
        dt = dt + dt_bias.to(ct)
    if dt_softplus:
        dt = F.softplus(dt)
    dA = torch.exp(dt[..., None] * A.to(ct))
    dBx = (dt * x.to(ct))[..., None] * B.to(ct)[:, None]
    state.copy_((state.to(ct) * dA + dBx).to(state.dtype))
    y = (state.to(ct) * C.to(ct)[:, None]).sum(-1)
    if D is not None:
        y = y + D.to(ct) * x.to(ct)
    if z is not None:
        y = y * F.silu(z.to(ct))
    return y.to(x.dtype)
