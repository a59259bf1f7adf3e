"""The final-checkpoint format: ``model.safetensors`` (fp32 weights) + ``config.json``.

State-dict keys are the same for the ``kernels`` and ``reference`` backends, so a checkpoint
written on a GPU loads on a laptop and vice versa.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from recall2reason.common.io import atomic_write, read_json, write_json
from recall2reason.models.config import ModelConfig
from recall2reason.models.model import HybridLM


def save_model(model: HybridLM, out_dir: str | os.PathLike, extra: dict | None = None) -> None:
    from safetensors.torch import save

    out = Path(out_dir)
    sd = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tie_embeddings:
        sd.pop("lm_head.weight", None)
    with atomic_write(out / "model.safetensors", "wb") as f:
        f.write(save(sd))
    meta = {
        "model": model.cfg.to_dict(),
        "n_params": model.num_params(),
        "n_non_embedding_params": model.num_params(non_embedding=True),
        **(extra or {}),
    }
    write_json(out / "config.json", meta)


def load_model(ckpt_dir: str | os.PathLike, backend: str | None = None, device="cpu") -> tuple[HybridLM, dict]:
    from safetensors.torch import load_file

    ckpt_dir = Path(ckpt_dir)
    meta = read_json(ckpt_dir / "config.json")
    cfg_dict = dict(meta["model"])
    if backend is not None:
        cfg_dict["backend"] = backend
    model = HybridLM(ModelConfig.from_dict(cfg_dict))
    sd = load_file(str(ckpt_dir / "model.safetensors"))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (model.cfg.tie_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"{ckpt_dir}: checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
    return model.to(device), meta
