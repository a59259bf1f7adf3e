"""Typed configuration of the plan (``plan:`` section of ``config.yaml``; schema
``workflow/schemas/sections/plan.schema.yaml``): what the cost estimate assumes."""

from __future__ import annotations

from dataclasses import dataclass

from recall2reason.common.cfg import ConfigError, from_dict

# App. B: the 1:1 mixture of OpenMathInstruct-2 and MetaMathQA, "4 epochs ... resulting in total
# 37.1B tokens" (9.3 B an epoch, rounded); used only for the paper's two full sources before
# `tokenize` has written the manifest
PAPER_TOKENS_PER_EPOCH = 37.1e9 / 4


@dataclass
class PlanConfig:
    gpu: str = "h100"  # GPU kind of the estimate (recall2reason.plan.table.GPU_KINDS)
    # new tokens per completion for sampling and the judge's input; null: sample.max_new_tokens,
    # every completion at the cap (an upper bound: no trained model's lengths are measured yet)
    completion_tokens: int | None = None
    # pretraining tokens per epoch when train.max_steps is null and no data manifest exists yet;
    # null: the manifest, else the paper's 9.3 B for its two sources, else unknown
    tokens_per_epoch: float | None = None

    def __post_init__(self) -> None:
        if self.completion_tokens is not None and self.completion_tokens < 1:
            raise ConfigError(f"plan.completion_tokens must be >= 1 or null, got {self.completion_tokens}")
        if self.tokens_per_epoch is not None and self.tokens_per_epoch <= 0:
            raise ConfigError(f"plan.tokens_per_epoch must be > 0 or null, got {self.tokens_per_epoch}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "PlanConfig":
        return from_dict(cls, d, "plan")
