"""Architectures of the study: Transformer and Mamba / GLA / Gated DeltaNet hybrids.

    models/config.py       typed ModelConfig (+ one dataclass per mixer, KernelConfig: the kernels backend's choices)
    models/model.py        HybridLM: embeddings, pre-norm blocks (mixer + SwiGLU), decoding
    models/layers/         one mixer per file, registered by name (attention, mamba, gla, gdn)
    models/ops/            pure-PyTorch math of the reference backends; our Triton ops and their twins
    models/checkpoint.py   safetensors + config.json, identical for both backends
"""

from recall2reason.models.config import GDNConfig, GLAConfig, KernelConfig, MambaConfig, ModelConfig

_LAZY = {"load_model": "checkpoint", "save_model": "checkpoint", "HybridLM": "model", "build_model": "model",
         "resolve_backend": "model"}


def __getattr__(name: str):
    # torch only on first use: the DAG's parse reads the mixer dataclasses (study.effective_mixer)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"recall2reason.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "GDNConfig",
    "GLAConfig",
    "HybridLM",
    "KernelConfig",
    "MambaConfig",
    "ModelConfig",
    "build_model",
    "load_model",
    "resolve_backend",
    "save_model",
]
