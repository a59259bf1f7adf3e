"""Typed config of the export stage (config.yaml ``export:``)."""

from __future__ import annotations

from dataclasses import dataclass

from recall2reason.common.cfg import from_dict


@dataclass(frozen=True)
class ExportConfig:
    # all-attention models (the Transformer) as transformers' own LlamaForCausalLM, the same function:
    # loads without remote code for the model, and in tools that know Llama (vLLM, ...)
    transformer_as_llama: bool = True

    @classmethod
    def from_dict(cls, d: dict | None) -> "ExportConfig":
        return from_dict(cls, d, "export")
