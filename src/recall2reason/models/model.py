"""The language model shared by all 13 architectures: pre-norm blocks of mixer + SwiGLU MLP.

    x = embed(tokens)
    for each layer:  x = x + mixer(rmsnorm(x));  x = x + mlp(rmsnorm(x))
    logits = lm_head(rmsnorm(x))

Only the mixer differs between layers (``ModelConfig.layers``). Recurrent mixers get no
positional encoding; attention layers apply RoPE themselves.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from recall2reason.models.config import ModelConfig
from recall2reason.models.layers import get_mixer
from recall2reason.models.ops.swiglu import swiglu, swiglu_reference

log = logging.getLogger("recall2reason.models")


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a bf16 residual stream is normalised in the weight's dtype (fp32 in training): what CUDA
        # autocast does anyway (rms_norm is on its fp32 list), made explicit for CPU autocast
        return F.rms_norm(x.to(self.weight.dtype), (x.shape[-1],), self.weight, self.eps)


class SwiGLU(nn.Module):
    """OLMo's MLP: one input projection to mlp_ratio*d split into (value, gate), hidden mlp_ratio*d/2.

    The projection is one GEMM; models/ops/swiglu.py (a Triton kernel each way on the kernels
    backend, its PyTorch twin on the reference one) applies silu(gate) * value and writes d(proj)
    whole, without a cat: +0.7 % Transformer tok/s on an H100 over two GEMMs, one per half
    (benchmarks/reports/2026-12-06-pretrain-4-packed-mlp.md)."""

    def __init__(self, d_model: int, hidden: int, backend: str = "reference"):
        super().__init__()
        self.backend = backend
        self.ff_proj = nn.Linear(d_model, 2 * hidden, bias=False)
        self.ff_out = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = swiglu if self.backend == "kernels" else swiglu_reference
        return self.ff_out(act(self.ff_proj(x)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_idx: int, backend: str):
        super().__init__()
        self.mixer_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mixer = get_mixer(cfg.layers[layer_idx])(cfg, layer_idx, backend)
        self.mlp_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = SwiGLU(cfg.d_model, cfg.mlp_hidden, backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(self.mixer_norm(x))
        return x + self.mlp(self.mlp_norm(x))

    def prefill(self, x, state, slot):
        x = x + self.mixer.prefill(self.mixer_norm(x), state, slot)
        return x + self.mlp(self.mlp_norm(x))

    def step(self, x, state, pos, decode_attention="sdpa"):
        x = x + self.mixer.step(self.mixer_norm(x), state, pos, decode_attention=decode_attention)
        return x + self.mlp(self.mlp_norm(x))


def resolve_backend(cfg: ModelConfig) -> str:
    """``auto`` -> ``kernels`` when CUDA is present and every mixer's kernel package imports."""
    if cfg.backend != "auto":
        return cfg.backend
    if not torch.cuda.is_available():
        return "reference"
    missing = sorted(name for name in set(cfg.layers) if not get_mixer(name).kernels_available())
    if missing:  # on a GPU the reference mixers are 10-30x slower: say so rather than run them quietly
        log.warning("models.backend auto: CUDA is present but the kernel packages of %s are not importable "
                    "(pip install -e '.[gpu]'); using the pure-PyTorch reference backend", ", ".join(missing))
        return "reference"
    return "kernels"


class HybridLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backend = resolve_backend(cfg)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, i, self.backend) for i in range(cfg.n_layers))
        self.final_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.reset_parameters()
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    # -- init -------------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Normal(0, init_std) for embeddings and projections; output projections scaled by
        1/sqrt(2 n_layers) (GPT-2 / OLMo); then each mixer applies its own special inits
        (Mamba's A_log and dt bias, GLA / GDN gates) through ``_init_special``."""
        std = self.cfg.init_std
        out_std = std / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():
            if p.dim() >= 2 and "conv" not in name:
                nn.init.normal_(p, 0.0, out_std if name.endswith(("o_proj.weight", "ff_out.weight", "out_proj.weight")) else std)
        for block in self.blocks:
            init = getattr(block.mixer, "_init_special", None)
            if init is not None:
                init()

    # -- training ---------------------------------------------------------------------------
    def hidden(self, input_ids: torch.Tensor, residual_dtype: torch.dtype | None = None) -> torch.Tensor:
        """Final-norm hidden states (B, T, d). ``residual_dtype``: the dtype of the residual stream
        (the embedding output is cast to it; every block adds its mixer's and MLP's output in it),
        e.g. bf16 under bf16 autocast, where the fp32 embedding would otherwise keep it fp32."""
        x = self.embed(input_ids)
        if residual_dtype is not None:
            x = x.to(residual_dtype)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Full logits (B, T, V); for evaluation and tests. Training takes :meth:`hidden` into the
        pretrain stage's chunked loss (pretrain/loss.py), never materialising B*T*V logits."""
        return self.lm_head(self.hidden(input_ids))

    # -- decoding ---------------------------------------------------------------------------
    def init_state(self, batch_size: int, max_len: int, device=None, dtype=None) -> list[dict]:
        device = device or self.lm_head.weight.device
        dtype = dtype or self.lm_head.weight.dtype
        return [b.mixer.init_state(batch_size, max_len, device, dtype) for b in self.blocks]

    def prefill(self, input_ids: torch.Tensor, states: list[dict], slot: int) -> torch.Tensor:
        """Run one prompt (1, T) through the model, filling row ``slot`` of every layer's state;
        returns the logits of the last position (1, V)."""
        x = self.embed(input_ids)
        for block, state in zip(self.blocks, states):
            x = block.prefill(x, state, slot)
        return self.lm_head(self.final_norm(x[:, -1]))

    def step(self, tokens: torch.Tensor, states: list[dict], pos: torch.Tensor,
             decode_attention: str = "sdpa") -> torch.Tensor:
        """One decode step: tokens (B,) at positions pos (B,) -> logits (B, V). ``decode_attention``:
        the attention layers' kernel, "sdpa" or "triton" (CUDA; see ``Attention.step``), the
        sampler's setting (``sample.attention_kernel``), not the model's."""
        x = self.embed(tokens[:, None])
        for block, state in zip(self.blocks, states):
            x = block.step(x, state, pos, decode_attention)
        return self.lm_head(self.final_norm(x[:, 0]))

    # -- bookkeeping ------------------------------------------------------------------------
    def kernels_used(self) -> dict:
        """``cfg.kernels`` as this model runs it: "auto" resolved, "-" where no layer uses the
        choice, "reference" on the reference backend (pretrain records it in config.json)."""
        from recall2reason.models.ops.conv import kernel_form

        k, used = self.cfg.kernels, set(self.cfg.layers)
        has_conv = ("gla" in used and self.cfg.gla.use_short_conv) or ("gdn" in used and self.cfg.gdn.use_short_conv)
        ker = self.backend == "kernels"
        return {"short_conv": (kernel_form(k.short_conv) if ker else "reference") if has_conv else "-",
                "gla_train": (k.gla_train if ker else "reference") if "gla" in used else "-"}

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count; ``non_embedding`` excludes the input embedding but keeps the LM head
        (the convention of the MFU formula in the pretrain stage)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and not self.cfg.tie_embeddings:
            n -= self.embed.weight.numel()
        return n


def build_model(cfg: ModelConfig | dict) -> HybridLM:
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return HybridLM(cfg)
