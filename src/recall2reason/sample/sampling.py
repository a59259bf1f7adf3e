"""Temperature + nucleus (top-p) sampling on the device, graph-safe, with counter-based randomness.

The draw is an exponential race over the nucleus: with probabilities p = softmax(logits / T) and
one Exp(1) variable E_i = -log(u_i) per token (u_i from :func:`rng.token_uniforms`, keyed by the
row's seed and step),

    token = argmax over the nucleus of p_i / E_i

which is an exact sample of p renormalised over the nucleus (P(argmax = i) = p_i / sum p), and a
pure function of (logits row, key, step). The nucleus is defined by masses, not by a sort order:
token i is kept when the mass of the tokens strictly more probable than it is < top_p (so the top
token is always kept, and tokens of equal probability are kept or dropped together).

This file is the reference (any device, CUDA-graph safe: a sort, no data-dependent shapes);
``sample/nucleus_triton.py`` computes the same function on CUDA without sorting, by rejection:
the race's winner over all tokens is the winner over the nucleus whenever it lies in the nucleus,
and when it does not, every token at most as probable is outside it too.
"""

from __future__ import annotations

import torch

from recall2reason.sample.rng import token_uniforms

# the sampling function's identity: part of the sample stage's resume fingerprint, so that a run
# resumed after the function changed starts over instead of mixing draws of two functions
SAMPLER_VERSION = "exponential-race-1"


def mass_above(probs: torch.Tensor) -> torch.Tensor:
    """(B, V) -> (B, V) float64: for each token, the total probability of the tokens strictly more
    probable than it (equal probabilities count as not above)."""
    sp, order = probs.sort(dim=-1, descending=True)
    sp = sp.double()
    before = torch.cat([torch.zeros_like(sp[:, :1]), sp.cumsum(-1)[:, :-1]], dim=-1)  # mass before, in sorted order
    # a tie group takes the mass before its first member: before is non-decreasing, so a running max
    # of its value at group starts (-1 elsewhere) carries the group start along the group
    starts = torch.ones_like(sp, dtype=torch.bool)
    starts[:, 1:] = sp[:, 1:] != sp[:, :-1]
    above_sorted = torch.where(starts, before, -1.0).cummax(-1).values
    return torch.empty_like(above_sorted).scatter_(1, order, above_sorted)


def nucleus_mask(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """(B, V) bool in token-id order: the kept set, tokens whose mass above (rounded to fp32, as
    the kernel compares it) is < top_p."""
    if top_p >= 1.0:
        return torch.ones_like(probs, dtype=torch.bool)
    return mass_above(probs).float() < top_p


def race_noise(keys: torch.Tensor, steps: torch.Tensor, vocab: int) -> torch.Tensor:
    """(B, vocab) float32: the Exp(1) variables of the race, E = -log u."""
    return -torch.log(token_uniforms(keys, steps, vocab))


def sample_next(
    logits: torch.Tensor, keys: torch.Tensor, steps: torch.Tensor, temperature: float, top_p: float
) -> torch.Tensor:
    """logits (B, V) -> token ids (B,) int64. ``keys``/``steps`` (B,) int64 select each row's noise.
    temperature 0 is greedy (argmax); top_p >= 1 races over every token."""
    if temperature <= 0:
        return logits.argmax(-1)
    if top_p <= 0:
        raise ValueError(f"top_p must be > 0, got {top_p}")
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    score = probs / race_noise(keys, steps, probs.shape[-1])
    if top_p < 1.0:
        score = score.masked_fill(~nucleus_mask(probs, top_p), -1.0)
    return score.argmax(-1)  # ties (equal scores) go to the lowest token id
