"""Temperature + nucleus (top-p) sampling on the device, graph-safe, with counter-based randomness."""

from __future__ import annotations

import torch

from recall2reason.sample.rng import uniform


def nucleus_mask(sorted_probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Given probabilities sorted descending, keep the smallest prefix whose mass reaches top_p:
    a token is kept when the mass strictly before it is < top_p (the top token is always kept)."""
    return (sorted_probs.cumsum(-1) - sorted_probs) < top_p


def sample_next(
    logits: torch.Tensor, keys: torch.Tensor, steps: torch.Tensor, temperature: float, top_p: float
) -> torch.Tensor:
    """logits (B, V) -> token ids (B,) int64. ``keys``/``steps`` (B,) int64 select each row's uniform.

    Inverse-CDF sampling over the renormalised nucleus with one uniform per row, so the draw is a
    pure function of (logits row, key, step). temperature 0 is greedy (argmax).
    """
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        # stable sort: ties at the nucleus boundary resolve by token id, the same on every call
        probs, order = probs.sort(dim=-1, descending=True, stable=True)
        probs = probs * nucleus_mask(probs, top_p)
    else:
        order = None
    cdf = probs.cumsum(-1)
    u = uniform(keys, steps) * cdf[:, -1]
    j = torch.searchsorted(cdf, u[:, None], right=True)
    # u < total mass, so j lands on a kept token; the clamp only guards float rounding at the top
    last = (probs > 0).sum(-1, keepdim=True) - 1 if order is not None else torch.full_like(j, probs.shape[-1] - 1)
    j = torch.minimum(j, last)
    if order is None:
        return j[:, 0]
    return order.gather(1, j)[:, 0]
