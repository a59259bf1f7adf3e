"""A parallel (Hillis-Steele) scan for the first-order linear recurrence

    h_t = a_t * h_{t-1} + b_t,        h_{-1} = 0

in ceil(log2 T) vectorised steps instead of T Python steps. After step k every position holds
the composition of the 2^k affine maps ending there: (a, b)_t <- (a_t a_{t-s}, a_t b_{t-s} + b_t).
Only products of decays (|a| <= 1 for every SSM here) are formed, never divisions by them, so it
is as stable as the sequential loop (unlike cumsum-of-log tricks that divide by exp(cumsum)).
``a`` may broadcast against ``b`` (e.g. a per-key decay against a (K, V) state).
"""

from __future__ import annotations

import torch


def linear_scan(a: torch.Tensor, b: torch.Tensor, dim: int) -> torch.Tensor:
    """All h_t along ``dim`` (same shape as ``b``); out of place, so autograd works."""
    dim = dim % b.dim()
    T = b.shape[dim]
    a = a.expand(*b.shape[:dim], T, *a.shape[dim + 1:]) if a.shape[dim] != T else a
    s = 1
    while s < T:
        head_b, tail_b, prev_b = b.narrow(dim, 0, s), b.narrow(dim, s, T - s), b.narrow(dim, 0, T - s)
        tail_a = a.narrow(dim, s, T - s)
        b = torch.cat([head_b, torch.addcmul(tail_b, tail_a, prev_b)], dim)
        if 2 * s < T:  # the decays are needed again only if another step follows
            a = torch.cat([a.narrow(dim, 0, s), tail_a * a.narrow(dim, 0, T - s)], dim)
        s *= 2
    return b
