"""Architectures of the study: Transformer and Mamba / GLA / Gated DeltaNet hybrids.

    models/config.py       typed ModelConfig (+ one dataclass per mixer)
    models/model.py        HybridLM: embeddings, pre-norm blocks (mixer + SwiGLU), chunked loss, decoding
    models/layers/         one mixer per file, registered by name (attention, mamba, gla, gdn)
    models/ops/            pure-PyTorch math of the reference backends; our Triton ops and their twins
    models/checkpoint.py   safetensors + config.json, identical for both backends
"""

from recall2reason.models.checkpoint import load_model, save_model
from recall2reason.models.config import GDNConfig, GLAConfig, MambaConfig, ModelConfig
from recall2reason.models.model import HybridLM, build_model, resolve_backend

__all__ = [
    "GDNConfig",
    "GLAConfig",
    "HybridLM",
    "MambaConfig",
    "ModelConfig",
    "build_model",
    "load_model",
    "resolve_backend",
    "save_model",
]
