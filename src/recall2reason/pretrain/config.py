"""Typed configuration of the pretrain stage.

``TrainConfig`` is the ``train:`` section of ``config.yaml`` (schema:
``workflow/schemas/sections/train.schema.yaml``); ``PretrainJob`` is what one Snakemake job
receives through ``--cfg``: the model's name, its ``ModelConfig`` dict and the train section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from recall2reason.common.cfg import ConfigError, from_dict, to_dict


@dataclass
class TrainConfig:
    # batch: the paper does not state it; 256 x 2048 tokens, reached by gradient accumulation
    global_batch_tokens: int = 524288
    # sequences per forward/backward on one device; the train: section may give a mapping
    # {default: n, <model>: n, ...}, resolved per job by ``job_train_section``
    micro_batch_size: int = 32
    # AdamW (Table 6)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    decay_norm_and_bias: bool = True  # Table 6: "Decay Norm and Bias: true"
    decay_embeddings: bool = True  # Table 6: "Decay Embeddings: true"
    # schedule: linear warmup from 0, cosine decay to final_lr_ratio * lr at the last step
    warmup_steps: int = 5000
    final_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0  # max global grad norm; null: no clipping (norm still logged)
    precision: Literal["bf16", "fp32"] = "bf16"  # bf16: autocast with fp32 master weights
    # the residual stream between blocks: "compute" keeps it in the matmul dtype (bf16 under bf16),
    # as the paper's OLMo trainer does (its default FSDP precision runs the forward on bf16 parameters);
    # "fp32" is plain autocast's stream (the fp32 embedding output promotes every residual add)
    residual_dtype: Literal["compute", "fp32"] = "compute"
    compile: bool = True  # torch.compile the model (see compile_scope) and the loss chunk
    # model: one graph over embedding, blocks and final norm (inductor fuses across block boundaries);
    # blocks: each block on its own (regional compilation: quicker to compile, same numbers; under
    # grad_sync ddp its per-block gradients let DDP all-reduce during the last backward)
    compile_scope: Literal["model", "blocks"] = "model"
    cuda_graphs: bool = True  # CUDA: replay each micro-step's fwd + bwd from a CUDA graph (pretrain/graphs.py)
    # several ranks: how gradients are averaged. ddp: DistributedDataParallel's hooks (overlap with the
    # last backward; cannot be replayed from a graph); allreduce: bucketed all-reduces after the
    # accumulation; auto: allreduce where the micro-step is a CUDA graph, else ddp
    grad_sync: Literal["auto", "ddp", "allreduce"] = "auto"
    seed: int = 1234
    max_steps: int | None = None  # null: epochs of the data manifest (4 in the paper)
    log_every: int = 10
    checkpoint_every_minutes: float = 30.0
    checkpoint_every_steps: int | None = None  # in addition to the minutes; null: time only
    loss_chunk_tokens: int = 32768  # tokens per LM-head + cross-entropy chunk
    peak_tflops: float | None = None  # MFU denominator per device; null: datasheet bf16 dense peak of the GPU
    tensorboard: bool = False  # also write TensorBoard scalars under the state dir
    wandb_project: str | None = None  # also log to Weights & Biases (needs wandb + login)

    def __post_init__(self) -> None:
        positive = ("global_batch_tokens", "micro_batch_size", "log_every", "loss_chunk_tokens")
        for k in positive:
            if getattr(self, k) < 1:
                raise ConfigError(f"train.{k} must be >= 1, got {getattr(self, k)}")
        if self.lr <= 0 or self.eps <= 0:
            raise ConfigError("train.lr and train.eps must be > 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.weight_decay < 0 or self.warmup_steps < 0:
            raise ConfigError("train.weight_decay and train.warmup_steps must be >= 0")
        if not 0 <= self.final_lr_ratio <= 1:
            raise ConfigError(f"train.final_lr_ratio must be in [0, 1], got {self.final_lr_ratio}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"train.grad_clip must be > 0 or null, got {self.grad_clip}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1 or null, got {self.max_steps}")
        if self.checkpoint_every_minutes <= 0:
            raise ConfigError("train.checkpoint_every_minutes must be > 0")
        if self.checkpoint_every_steps is not None and self.checkpoint_every_steps < 1:
            raise ConfigError("train.checkpoint_every_steps must be >= 1 or null")

    # keys that change the numbers a run produces; a resumed run must agree on all of them
    RESUME_KEYS = (
        "global_batch_tokens", "micro_batch_size", "lr", "betas", "eps", "weight_decay",
        "decay_norm_and_bias", "decay_embeddings", "warmup_steps", "final_lr_ratio", "grad_clip",
        "precision", "residual_dtype", "seed", "max_steps", "loss_chunk_tokens",
    )

    def resume_fingerprint(self) -> dict:
        d = to_dict(self)
        return {k: d[k] for k in self.RESUME_KEYS}


def job_train_section(model: str, train: dict) -> dict:
    """The ``train:`` section as model ``model``'s job gets it: a per-model ``micro_batch_size``
    mapping ``{default: n, <model>: n}`` resolved to that model's number. The workflow passes each
    job only its own number, so changing one model's entry reruns only that model's pretraining."""
    mb = train.get("micro_batch_size")
    if not isinstance(mb, dict):
        return train
    if "default" not in mb:
        raise ConfigError(f"train.micro_batch_size: a per-model mapping needs a 'default' entry, got {sorted(mb)}")
    return {**train, "micro_batch_size": mb.get(model, mb["default"])}


def micro_batch_errors(train: dict, model_names: list[str]) -> list[str]:
    """Entries of a per-model ``train.micro_batch_size`` mapping that name no model of the study."""
    mb = train.get("micro_batch_size")
    if not isinstance(mb, dict):
        return []
    return [f"train.micro_batch_size.{k}: no model of that name; models: {', '.join(model_names)}"
            for k in mb if k != "default" and k not in model_names]


@dataclass
class PretrainJob:
    name: str
    model: dict[str, Any]
    train: TrainConfig = field(default_factory=TrainConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "PretrainJob":
        if isinstance(d, dict) and isinstance(d.get("train"), dict):
            d = {**d, "train": job_train_section(str(d.get("name")), d["train"])}
        return from_dict(cls, d)
