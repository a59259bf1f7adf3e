"""The final-checkpoint format: ``model.safetensors`` (fp32 weights) + ``config.json``.

State-dict keys are the same for the ``kernels`` and ``reference`` backends, so a checkpoint
written on a GPU loads on a laptop and vice versa. ``config.json`` records the weights' sha256;
loading checks it, so weights damaged after pretraining wrote them (a bad disk, a partial copy)
stop the sampler with the file named instead of sampling from them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from recall2reason.common.io import InputFileError, atomic_write, read_json, sha256_file, write_json
from recall2reason.models.config import ModelConfig
from recall2reason.models.model import HybridLM

CONFIG_EXPECT = "the pretrain stage's config.json (a JSON object with keys model, n_params, weights_sha256, ...)"


def save_model(model: HybridLM, out_dir: str | os.PathLike, extra: dict | None = None) -> None:
    from safetensors.torch import save

    out = Path(out_dir)
    sd = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tie_embeddings:
        sd.pop("lm_head.weight", None)
    data = save(sd)
    with atomic_write(out / "model.safetensors", "wb") as f:
        f.write(data)
    meta = {
        "model": model.cfg.to_dict(),
        "weights_sha256": hashlib.sha256(data).hexdigest(),
        "n_params": model.num_params(),
        "n_non_embedding_params": model.num_params(non_embedding=True),
        **(extra or {}),
    }
    write_json(out / "config.json", meta)


def read_config(ckpt_dir: str | os.PathLike) -> dict:
    meta = read_json(Path(ckpt_dir) / "config.json", CONFIG_EXPECT)
    if not isinstance(meta, dict) or "model" not in meta:
        raise InputFileError(f"{Path(ckpt_dir) / 'config.json'}: no 'model' key; expected {CONFIG_EXPECT}")
    return meta


def verify_weights(ckpt_dir: str | os.PathLike, meta: dict) -> str:
    """sha256 of ``model.safetensors``, checked against the one config.json records (checkpoints
    from before it was recorded have none and pass)."""
    path = Path(ckpt_dir) / "model.safetensors"
    if not path.is_file():
        raise InputFileError(f"{path}: no such file (incomplete pretrain job?)")
    sha = sha256_file(path)
    want = meta.get("weights_sha256")
    if want is not None and sha != want:
        raise InputFileError(
            f"{path}: sha256 {sha[:16]}... differs from {want[:16]}... recorded in {path.parent / 'config.json'}: "
            f"the file changed after pretraining wrote it (a bad disk or a partial copy?). Rerun "
            f"`snakemake --forcerun {path}`: the pretrain job rewrites it from its final state in results/.state/pretrain/, "
            "or retrains if that is gone"
        )
    return sha


def load_model(ckpt_dir: str | os.PathLike, backend: str | None = None, device="cpu") -> tuple[HybridLM, dict]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    ckpt_dir = Path(ckpt_dir)
    meta = read_config(ckpt_dir)
    verify_weights(ckpt_dir, meta)
    cfg_dict = dict(meta["model"])
    if backend is not None:
        cfg_dict["backend"] = backend
    model = HybridLM(ModelConfig.from_dict(cfg_dict))
    try:
        sd = load_file(str(ckpt_dir / "model.safetensors"))
    except SafetensorError as e:
        raise InputFileError(f"{ckpt_dir / 'model.safetensors'}: not a readable safetensors file ({e})") from None
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (model.cfg.tie_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"{ckpt_dir}: checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
    return model.to(device), meta
