"""Mamba1's selective scan (mamba-ssm ``selective_scan_fn`` / ``selective_state_update``) in PyTorch.

Per channel d and state index n, with Δ = softplus(delta + delta_bias):

    h_t[d, n] = exp(Δ_t[d] A[d, n]) h_{t-1}[d, n] + Δ_t[d] B_t[n] u_t[d]
    y_t[d]    = sum_n C_t[n] h_t[d, n] + D[d] u_t[d]
    out_t[d]  = y_t[d] * silu(z_t[d])

Layouts follow mamba-ssm: u, delta, z (b, d, l); A (d, n); B, C (b, n, l); D, delta_bias (d,).
Computed in fp32 (as the CUDA kernel does) and returned in u's dtype. The training form runs the
recurrence with :func:`linear_scan` (log2(l) parallel steps); ``selective_state_step`` is the
one-token form used for decoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recall2reason.models.ops.scan import linear_scan


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   initial_state=None, return_last_state=False):
    dtype = u.dtype
    ct = torch.promote_types(u.dtype, torch.float32)  # accumulate in fp32 (fp64 stays fp64)
    u, delta, B, C = u.to(ct), delta.to(ct), B.to(ct), C.to(ct)
    if delta_bias is not None:
        delta = delta + delta_bias.to(ct)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    A = A.to(ct)
    # (b, d, l, n): per-step decay and input of the recurrence
    dA = torch.exp(delta[..., None] * A[:, None, :])
    dBu = (delta * u)[..., None] * B.transpose(1, 2)[:, None]
    if initial_state is not None:  # fold h_{-1} into the first input: h_0 = a_0 h_{-1} + b_0
        first = dBu[:, :, :1] + dA[:, :, :1] * initial_state.to(ct)[:, :, None]
        dBu = torch.cat([first, dBu[:, :, 1:]], dim=2)
    h = linear_scan(dA, dBu, dim=2)
    y = torch.einsum("bdln,bnl->bdl", h, C)
    if D is not None:
        y = y + D.to(ct)[:, None] * u
    if z is not None:
        y = y * F.silu(z.to(ct))
    y = y.to(dtype)
    return (y, h[:, :, -1]) if return_last_state else y


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
