"""The optimizer recipe of Appendix B.3 (Table 6).

AdamW with lr 1e-3, betas (0.9, 0.95), eps 1e-8 and weight decay 0.1 on *every* parameter --
norm weights, biases and embeddings included (OLMo's ``decay_norm_and_bias`` and
``decay_embeddings``, both true in Table 6). The learning rate of optimizer step ``s``
(1-based: the first update is step 1) is

    s <= warmup:  lr * s / warmup                                         (linear from 0)
    s >  warmup:  lr * (r + (1 - r) * (1 + cos(pi * p)) / 2),  p = (s - warmup) / (total - warmup)

with r = ``final_lr_ratio`` (0.1): the cosine reaches r * lr exactly at the last step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from recall2reason.pretrain.config import TrainConfig


def lr_at(step: int, peak: float, warmup: int, total: int, final_ratio: float) -> float:
    """Learning rate of optimizer step ``step`` (1-based) of a ``total``-step run."""
    if step < 1:
        raise ValueError(f"optimizer steps are 1-based, got {step}")
    if warmup > 0 and step <= warmup:
        return peak * step / warmup
    if total <= warmup:
        return peak
    p = min(1.0, (step - warmup) / (total - warmup))
    return peak * (final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * p)))


def _is_norm_or_bias(name: str, p: nn.Parameter) -> bool:
    return p.dim() < 2 or name.endswith(".bias") or "norm" in name.rsplit(".", 1)[0].rsplit(".", 1)[-1]


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: ``decay`` (weight_decay) and ``no_decay`` (0.0), the latter empty under the
    paper recipe. Embeddings are the input embedding table; norms/biases are 1-d parameters,
    parameters of modules named ``*norm*`` and ``.bias`` parameters."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        is_embedding = name == "embed.weight" or name.endswith(".embed.weight")
        if (is_embedding and not cfg.decay_embeddings) or (
            not is_embedding and _is_norm_or_bias(name, p) and not cfg.decay_norm_and_bias
        ):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def build_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; the fused (single-kernel) implementation on CUDA, the default one elsewhere."""
    kwargs = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(
        param_groups(model, cfg), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay, **kwargs
    )
