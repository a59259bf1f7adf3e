"""The interface every sequence mixer implements.

Training calls ``forward(x)`` on whole sequences. Decoding (the sampler) uses a preallocated,
fixed-shape inference state so that the decode step can be captured in a CUDA graph:

    state = mixer.init_state(batch_size, max_len, device, dtype)   # dict of tensors
    y = mixer.prefill(x, state, slot)     # x: (1, T, D) one prompt -> writes state[slot]; returns (1, T, D)
    y = mixer.step(x, state, pos)         # x: (B, 1, D), pos: (B,) int64 index of this token; updates state in place

Kernel choices come from ``cfg.kernels`` (models/config.py ``KernelConfig``) at construction, kept
as ``self.kernels``; the decode step's attention kernel is an argument of ``step``
(``decode_attention``, "sdpa" or "triton"), which only attention reads.

``step`` must treat every batch row independently (rows hold unrelated sequences at different
positions) and may not change tensor shapes or allocate state, so it can run inside a graph.
"""

from __future__ import annotations

import abc
import math

import torch
import torch.nn.functional as F
from torch import nn

MIXERS: dict[str, type["Mixer"]] = {}


def scaled_dim(mixer: str, base: int, expand: float, divisor: int = 1) -> int:
    """``base * expand`` as an integer divisible by ``divisor`` (heads), or a config error naming it."""
    dim = base * expand
    if not math.isclose(dim, round(dim)) or round(dim) % divisor:
        raise ValueError(f"{mixer}: {base} * {expand} = {dim:g} must be an integer divisible by {divisor}")
    return round(dim)


def packed_linear(x: torch.Tensor, *linears: nn.Linear) -> torch.Tensor:
    """``cat([lin(x) for lin in linears], -1)`` as one GEMM over the concatenated weights (bias-free layers).

    Why: a mixer's input projections (q, k, v and the small gate projections) all read the same x;
    one GEMM reads x once, and its input-gradient GEMM replaces several plus their sum (GDN's five:
    0.76 -> 0.31 ms per micro-batch on an H200, benchmarks/reports/2026-12-04-pretrain-1-input-projections.md).
    The parameters stay separate, so state-dict keys and shapes are unchanged.
    """
    if any(lin.bias is not None for lin in linears):
        raise ValueError("packed_linear() fuses bias-free projections only")
    return F.linear(x, torch.cat([lin.weight for lin in linears]))


def project(x: torch.Tensor, *linears: nn.Linear) -> tuple[torch.Tensor, ...]:
    """``(lin(x) for lin in linears)`` from one ``packed_linear`` GEMM: views into its output.

    GLA and GDN use it. Attention does not (in plain PyTorch): with it, the compiled block ran one
    288 us kernel of RoPE and the gradients' concatenation where the two RoPE kernels took 32 us
    each (8 x 2048 tokens), and the Transformer's step lost 6 %; see ``ops/qkv_rope.py``.
    """
    return packed_linear(x, *linears).split([lin.out_features for lin in linears], dim=-1)


def register_mixer(name: str):
    def deco(cls: type["Mixer"]) -> type["Mixer"]:
        if name in MIXERS:
            raise ValueError(f"mixer {name!r} registered twice")
        cls.mixer_name = name
        MIXERS[name] = cls
        return cls

    return deco


class Mixer(nn.Module, abc.ABC):
    mixer_name: str = ""

    def __init__(self, cfg, layer_idx: int, backend: str = "reference"):
        super().__init__()
        self.layer_idx = layer_idx
        self.backend = backend
        self.kernels = cfg.kernels

    @classmethod
    def kernels_available(cls) -> bool:
        """True when this mixer's GPU kernel package can be imported (checked lazily)."""
        return False

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        ...

    @abc.abstractmethod
    def init_state(self, batch_size: int, max_len: int, device, dtype) -> dict[str, torch.Tensor]:
        ...

    @abc.abstractmethod
    def prefill(self, x: torch.Tensor, state: dict[str, torch.Tensor], slot: int) -> torch.Tensor:
        ...

    @abc.abstractmethod
    def step(self, x: torch.Tensor, state: dict[str, torch.Tensor], pos: torch.Tensor,
             decode_attention: str = "sdpa") -> torch.Tensor:
        ...
