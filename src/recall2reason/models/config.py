"""Typed model configuration (paper Table 2 + the mixer tables 3-5).

``ModelConfig.layers`` names the mixer of every layer, so any pattern is expressible: the 13
paper models, attention-placement permutations, or anything else. Mixer hyperparameters live in
one dataclass per mixer; a model only uses those of the mixers it contains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from recall2reason.common.cfg import ConfigError, from_dict, to_dict


@dataclass
class MambaConfig:
    """mamba-ssm's Mamba1 block (Table 3): d_inner = expand * d_model unless d_inner is set.

    ``d_xb`` < d_inner projects x at d_xb and shares each head of d_state channels across
    d_inner / d_xb heads, as Mamba-in-the-Llama shares its x and B (layers/mamba.py says how far);
    None (= d_inner) is the plain Mamba1 block. ``dt_limit`` [lo, hi] clamps Δ after the
    softplus, as mamba-ssm's Mamba2 ``dt_limit`` (hi None: no upper bound); None: no clamp."""

    d_state: int = 16
    d_conv: int = 4
    expand: int = 1
    dt_rank: int | None = 32  # None: ceil(d_model / 16), mamba-ssm's "auto"
    d_inner: int | None = None
    d_xb: int | None = None  # None: d_inner (Table 3: 768 = d_inner)
    dt_limit: list[float | None] | None = None
    dt_min: float = 0.001
    dt_max: float = 0.1
    dt_init_floor: float = 1e-4
    conv_bias: bool = True
    bias: bool = False


@dataclass
class GLAConfig:
    """FLA ``GatedLinearAttention`` (Table 5)."""

    expand_k: float = 1.0
    expand_v: float = 1.0
    use_short_conv: bool = True
    conv_size: int = 4
    conv_bias: bool = False
    use_output_gate: bool = False
    gate_fn: str = "swish"
    feature_map: str | None = None
    gate_logit_normalizer: int = 16
    gate_low_rank_dim: int = 16
    clamp_min: float | None = None
    fuse_norm: bool = True


@dataclass
class GDNConfig:
    """FLA ``GatedDeltaNet`` (Table 4)."""

    expand_v: float = 1.0
    expand_k: float = 1.0
    use_gate: bool = False
    use_short_conv: bool = True
    conv_size: int = 4
    conv_bias: bool = False
    use_qk_norm: bool = True  # L2-normalised q/k, as FLA always does for the delta rule


SHORT_CONV_FORMS = ("auto", "mix", "triton", "gluon")
GLA_TRAIN_KERNELS = ("fused", "fla")


@dataclass
class KernelConfig:
    """Which kernel runs where the kernels backend has more than one for the same function (the
    same parameters, outputs up to rounding, and checkpoint either way). Recorded in every
    checkpoint's config.json, so a run says which kernels it used; the reference backend ignores it.

    ``short_conv``: GLA / GDN short conv (models/ops/conv.py): "mix" (FLA's Triton forward, the
    causal-conv1d CUDA backward), "triton" (FLA's Triton both ways), "gluon" (FLA's Gluon kernels
    both ways, models/kernels/short_conv.py; not yet run in prefill / decoding on a GPU), "auto"
    ("mix" when causal-conv1d is installed, else "triton"). ``gla_train``: GLA's training kernel
    (layers/gla.py): "fused" (ours, ops/fused_chunk_gla.py) or "fla" (FLA's chunk_gla).
    Decode-step attention is the sampler's choice, not the model's (``HybridLM.step``)."""

    short_conv: Literal["auto", "mix", "triton", "gluon"] = "auto"
    gla_train: Literal["fused", "fla"] = "fused"

    def __post_init__(self) -> None:
        if self.short_conv not in SHORT_CONV_FORMS:
            raise ConfigError(f"model.kernels.short_conv: unknown form {self.short_conv!r}; known: {list(SHORT_CONV_FORMS)}")
        if self.gla_train not in GLA_TRAIN_KERNELS:
            raise ConfigError(f"model.kernels.gla_train: unknown kernel {self.gla_train!r}; known: {list(GLA_TRAIN_KERNELS)}")


@dataclass
class ModelConfig:
    d_model: int = 768
    n_layers: int = 12
    n_heads: int = 12
    n_kv_heads: int = 12
    mlp_ratio: int = 8  # OLMo's sense: input projection has mlp_ratio*d outputs (gate + value), hidden = mlp_ratio*d/2
    vocab_size: int = 32000
    max_seq_len: int = 2048
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    init_std: float = 0.02
    layers: list[str] | None = None  # mixer name per layer; None: all attention
    mamba: MambaConfig = field(default_factory=MambaConfig)
    gla: GLAConfig = field(default_factory=GLAConfig)
    gdn: GDNConfig = field(default_factory=GDNConfig)
    backend: Literal["auto", "kernels", "reference"] = "auto"
    kernels: KernelConfig = field(default_factory=KernelConfig)  # absent from old checkpoints: the defaults

    def __post_init__(self) -> None:
        if self.layers is None:
            self.layers = ["attention"] * self.n_layers
        if len(self.layers) != self.n_layers:
            raise ConfigError(f"model: layers lists {len(self.layers)} mixers but n_layers is {self.n_layers}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"model: d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"model: n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        if (self.mlp_ratio * self.d_model) % 2:
            raise ConfigError("model: mlp_ratio * d_model must be even (gate and value halves)")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def mlp_hidden(self) -> int:
        return self.mlp_ratio * self.d_model // 2

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return from_dict(cls, d, "model")

    def to_dict(self) -> dict:
        return to_dict(self)


# Mamba's widths and its d_xb and dt_limit checks, torch-free: the DAG runs them when it parses
# the config; the layer and the exported HF model (export/hf_modeling.py, inlined) build from them
def mamba_widths(d_model: int, expand: float, d_inner: int | None, dt_rank: int | None,
                 d_xb: int | None) -> tuple[int, int, int]:
    """(d_inner, dt_rank, d_xb) with mamba-ssm's "auto" values (None) resolved: expand * d_model,
    ceil(d_model / 16), d_inner."""
    d_inner = d_inner if d_inner is not None else int(expand * d_model)
    return d_inner, dt_rank if dt_rank is not None else math.ceil(d_model / 16), d_xb if d_xb is not None else d_inner


def mamba_repeat(d_inner: int, d_xb: int, d_state: int) -> int:
    """How many scan heads share one head of x (1: the plain block)."""
    if d_xb == d_inner:
        return 1
    if d_inner % d_xb or d_xb % d_state:
        raise ConfigError(f"mixers.mamba: d_xb {d_xb} must divide d_inner {d_inner} and be a multiple of "
                          f"d_state {d_state} (x is shared in heads of d_state channels)")
    return d_inner // d_xb


def mamba_dt_limit(limit) -> tuple[float, float] | None:
    if limit is None:
        return None
    if len(limit) != 2 or limit[0] is None or limit[0] < 0 or (limit[1] is not None and limit[1] <= limit[0]):
        raise ConfigError(f"mixers.mamba.dt_limit: expected [lo, hi] with 0 <= lo < hi (hi null: none), got {limit}")
    return float(limit[0]), math.inf if limit[1] is None else float(limit[1])
