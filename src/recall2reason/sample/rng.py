"""Counter-based random numbers: one uniform per (row seed, step, token id), no generator state.

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


def step_key(keys: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """The 32-bit key of one draw: row key (see :func:`row_key`) mixed with the step counter."""
    return hash32(keys ^ hash32(steps))


def token_uniforms(keys: torch.Tensor, steps: torch.Tensor, vocab: int) -> torch.Tensor:
    """(B, vocab) float32 in (0, 1): one uniform per (row key, step, token id), 23 random bits
    centred in their bin: exact in float32 and never 0 or 1 (24 centred bits would round the top
    bin to 1.0), so -log u is finite and positive. The Triton sampler computes the same bits
    in-kernel (``sample/nucleus_triton.py``)."""
    ids = torch.arange(vocab, device=keys.device, dtype=torch.int64)
    return open_unit(hash32(step_key(keys, steps)[:, None] ^ hash32(ids)[None, :]))


def open_unit(h: torch.Tensor) -> torch.Tensor:
    """32-bit hash values -> float32 in (0, 1): the top 23 bits, centred in their bin."""
    return ((h >> 9).to(torch.float32) + 0.5) * (1.0 / (1 << 23))


def sample_seed(base_seed: int, model: str, problem_id: str, sample_idx: int) -> int:
    """The seed of one completion: a 48-bit hash of (base seed, model, problem, sample index)."""
    text = f"{base_seed}/{model}/{problem_id}/{sample_idx}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:6], "big")
