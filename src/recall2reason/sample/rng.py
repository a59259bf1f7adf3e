"""Counter-based random numbers: one uniform per (row seed, token index), no generator state.

A completion's randomness depends only on its own seed and on how many tokens it has produced,
never on which other sequences share the batch or in which order slots were filled, so a
sample is reproducible whatever the batch composition (on one device). The hash uses only
integer tensor ops on int64 holding 32-bit values (no overflow), so it is exact on CPU and GPU
and can be captured in a CUDA graph. The same functions work on Python ints.
"""

from __future__ import annotations

import hashlib

import torch

M32 = 0xFFFFFFFF


def _mul32(x, c: int):
    """(x * c) mod 2**32 for 0 <= x < 2**32 without int64 overflow (split x into 16-bit halves)."""
    lo = (x & 0xFFFF) * c
    hi = ((x >> 16) * c) & 0xFFFF
    return (lo + (hi << 16)) & M32


def hash32(x):
    """Chris Wellons' lowbias32: a bijective, well-mixing 32-bit integer hash."""
    x = x & M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x21F0AAAD)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x735A2D97)
    return x ^ (x >> 15)


def row_key(seed: int) -> int:
    """Fold a (up to 64-bit) seed into the 32-bit key the sampler hashes with the step counter."""
    return hash32(hash32(seed & M32) ^ ((seed >> 32) & M32))


def uniform(keys: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """U[0, 1) float32 per row from (key, step); 24 random bits, exact in float32."""
    h = hash32(keys ^ hash32(steps))
    return (h >> 8).to(torch.float32) * (1.0 / (1 << 24))


def sample_seed(base_seed: int, model: str, problem_id: str, sample_idx: int) -> int:
    """The seed of one completion: a 48-bit hash of (base seed, model, problem, sample index)."""
    text = f"{base_seed}/{model}/{problem_id}/{sample_idx}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:6], "big")
