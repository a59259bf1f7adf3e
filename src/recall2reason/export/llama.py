"""An all-attention ``HybridLM`` as transformers' ``LlamaForCausalLM``: the same function.

Llama's block is ours (pre-norm RMSNorm, RoPE rotate-half attention without biases, SwiGLU MLP
silu(gate) * up); only names differ, and our packed MLP projection [value | gate] is Llama's
up_proj and gate_proj.
"""

from __future__ import annotations

import torch

from recall2reason.models.config import ModelConfig


def llama_config(cfg: ModelConfig) -> dict:
    """config.json of the Llama model (keys every transformers version since 4.45 reads)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.mlp_hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
    }


def llama_state_dict(sd: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, torch.Tensor]:
    """HybridLM state dict (every layer attention) -> LlamaForCausalLM's; every key is used once."""
    if set(cfg.layers) != {"attention"}:
        raise ValueError(f"only all-attention models map onto Llama; this one has {sorted(set(cfg.layers))}")
    sd = dict(sd)
    out = {
        "model.embed_tokens.weight": sd["embed.weight"],
        "model.norm.weight": sd.pop("final_norm.weight"),
        "lm_head.weight": sd.pop("lm_head.weight", sd["embed.weight"]),  # a tied head gets its own copy
    }
    sd.pop("embed.weight")
    for i in range(cfg.n_layers):
        ours, theirs = f"blocks.{i}.", f"model.layers.{i}."
        out[theirs + "input_layernorm.weight"] = sd.pop(ours + "mixer_norm.weight")
        for p in "qkvo":
            out[theirs + f"self_attn.{p}_proj.weight"] = sd.pop(ours + f"mixer.{p}_proj.weight")
        out[theirs + "post_attention_layernorm.weight"] = sd.pop(ours + "mlp_norm.weight")
        value, gate = sd.pop(ours + "mlp.ff_proj.weight").split(cfg.mlp_hidden)  # [value | gate]
        out[theirs + "mlp.up_proj.weight"], out[theirs + "mlp.gate_proj.weight"] = value, gate
        out[theirs + "mlp.down_proj.weight"] = sd.pop(ours + "mlp.ff_out.weight")
    if sd:
        raise ValueError(f"HybridLM weights with no Llama counterpart: {sorted(sd)}")
    return out
