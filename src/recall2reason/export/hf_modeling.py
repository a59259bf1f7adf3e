"""The study's language models as a Hugging Face ``transformers`` model (remote code).

    AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)

Same function and parameter names as ``recall2reason.models.HybridLM``: pre-norm blocks of a
mixer (attention, Mamba, GLA or Gated DeltaNet, per ``config.layers``) and a SwiGLU MLP.

The math is the package's pure-PyTorch reference code; on CUDA the recurrent mixers run FLA's
or mamba-ssm's kernels when those packages import (the calls the package's ``kernels`` backend
makes). Inside the package this file imports that code; ``recall2reason.export`` writes the
exported ``modeling_recall2reason.py`` with those imports replaced by their source, so the
exported file needs only torch and transformers.

Decoding: ``forward(..., use_cache=True)`` returns a ``DecodeState`` (per layer: the keys and
values of attention; the short-conv windows and recurrent states of the other mixers) to pass
back as ``decode_state``; ``generate()`` does this itself. Batches may be left-padded (the
``attention_mask`` of a tokenizer with ``padding_side="left"``): pads are hidden from attention
and zeroed at the recurrent mixers' inputs, so the state of a row starts at its first token.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers.generation import GenerationMixin
from transformers.utils import ModelOutput

# <inline>: recall2reason.export replaces these imports with the source of what they import
from recall2reason.common.cfg import ConfigError
from recall2reason.models.config import mamba_dt_limit, mamba_repeat, mamba_widths
from recall2reason.models.layers.base import scaled_dim
from recall2reason.models.layers.mamba import share_heads
from recall2reason.models.model import RMSNorm
from recall2reason.models.ops.conv import causal_conv1d, causal_conv1d_step, conv_window, short_conv
from recall2reason.models.ops.delta_rule import chunk_gated_delta_rule, recurrent_gated_delta_rule_step
from recall2reason.models.ops.gla import chunk_gla, recurrent_gla_step
from recall2reason.models.ops.norm import ACT, HeadRMSNorm
from recall2reason.models.ops.rope import apply_rope, rope_cos_sin
from recall2reason.models.ops.selective_scan import selective_scan, selective_state_step, state_update_bias
from recall2reason.models.ops.swiglu import swiglu_reference

# </inline>

USE_KERNELS = True  # False: the PyTorch code on CUDA too
FLA_MIN_VERSION = (0, 6)  # the FLA whose kernel calls the study makes (older releases take other arguments)


@functools.cache
def _import(module: str):
    try:
        return importlib.import_module(module)
    except Exception:  # not installed, or a broken build
        return None


@functools.cache
def _fla_version() -> tuple[int, ...]:
    fla = _import("fla")
    return tuple(int(p) for p in fla.__version__.split(".")[:2]) if fla is not None else (0, 0)


def kernel(module: str, name: str, x: torch.Tensor):
    """``module.name`` from FLA / mamba-ssm for a CUDA tensor ``x`` when the package imports, else None."""
    if not (USE_KERNELS and x.is_cuda) or (module.startswith("fla.") and _fla_version() < FLA_MIN_VERSION):
        return None
    return getattr(_import(module), name, None)


class Recall2ReasonConfig(PretrainedConfig):
    """``recall2reason.models.ModelConfig`` (same keys); the mixer settings are dicts."""

    model_type = "recall2reason"
    attribute_map = {
        "hidden_size": "d_model",
        "num_hidden_layers": "n_layers",
        "num_attention_heads": "n_heads",
        "num_key_value_heads": "n_kv_heads",
        "max_position_embeddings": "max_seq_len",
    }

    def __init__(self, d_model=768, n_layers=12, n_heads=12, n_kv_heads=12, mlp_ratio=8, vocab_size=32000,
                 max_seq_len=2048, rope_theta=10000.0, norm_eps=1e-5, layers=None, mamba=None, gla=None, gdn=None,
                 **kwargs):
        self.d_model, self.n_layers, self.n_heads, self.n_kv_heads = d_model, n_layers, n_heads, n_kv_heads
        self.mlp_ratio, self.vocab_size, self.max_seq_len = mlp_ratio, vocab_size, max_seq_len
        self.rope_theta, self.norm_eps = rope_theta, norm_eps
        self.layers = list(layers) if layers is not None else ["attention"] * n_layers
        self.mamba, self.gla, self.gdn = dict(mamba or {}), dict(gla or {}), dict(gdn or {})
        kwargs.setdefault("tie_word_embeddings", False)  # exported with an lm_head of its own
        super().__init__(**kwargs)


def zero_pads(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """x (B, T, D) with the rows of pad tokens (mask False) set to 0."""
    return x if mask is None else x.masked_fill(~mask[..., None], 0)


def apply_short_conv(conv: nn.Conv1d, x: torch.Tensor, mask, state: dict | None, key: str) -> torch.Tensor:
    """silu(causal depthwise conv) of x (B, T, D). With a decode state, a prefill keeps the window of
    its last inputs in ``state[key]`` and later tokens are shifted through that window one by one."""
    if state is not None and key in state:
        steps = [causal_conv1d_step(x[:, t], state[key], conv.weight, conv.bias) for t in range(x.shape[1])]
        return torch.stack(steps, 1)
    x = zero_pads(x, mask)  # a row's first tokens see zeros before them, as without padding
    if state is not None:
        state[key] = conv_window(x, conv.kernel_size[0])
    return causal_conv1d(x, conv.weight, conv.bias, "silu")


class Attention(nn.Module):
    """Causal softmax attention with RoPE; the decode state holds every column's keys and values."""

    def __init__(self, config):
        super().__init__()
        d, self.n_heads, self.n_kv_heads = config.d_model, config.n_heads, config.n_kv_heads
        self.head_dim, self.rope_theta = d // config.n_heads, config.rope_theta
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)

    def forward(self, x, pos, mask, state):
        B, T, _ = x.shape
        heads = lambda t, n: t.view(B, T, n, self.head_dim).transpose(1, 2)  # noqa: E731
        cos, sin = rope_cos_sin(pos, self.head_dim, self.rope_theta)  # (B, T, hd): each row its own positions
        q = apply_rope(heads(self.q_proj(x), self.n_heads), cos[:, None], sin[:, None])
        k = apply_rope(heads(self.k_proj(x), self.n_kv_heads), cos[:, None], sin[:, None])
        v = heads(self.v_proj(x), self.n_kv_heads)
        if state is not None:
            if "k" in state:
                k, v = torch.cat([state["k"], k], 2), torch.cat([state["v"], v], 2)
            state["k"], state["v"] = k, v
        S = k.shape[2]  # columns so far; the T queries are the last T
        gqa = self.n_kv_heads != self.n_heads
        if mask is None and T == S:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        else:
            cols = torch.arange(S, device=x.device)[None, :]
            own = (S - T) + torch.arange(T, device=x.device)[:, None]  # (T, 1): each query's own column
            allowed = cols <= own
            if mask is not None:  # hide pads; a pad query still sees itself (no row of only -inf)
                allowed = (allowed & mask[:, None, None, :]) | (cols == own)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, enable_gqa=gqa)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class Mamba(nn.Module):
    """Mamba (v1) with mamba-ssm's parameters; decode state: the conv window and the SSM state."""

    def __init__(self, config):
        super().__init__()
        c, d = SimpleNamespace(**config.mamba), config.d_model
        # the ablation knobs (checkpoints from before them lack the keys): x at d_xb, Δ clamped
        self.d_inner, self.dt_rank, self.d_xb = mamba_widths(d, c.expand, c.d_inner, c.dt_rank, getattr(c, "d_xb", None))
        self.d_state, self.d_conv = c.d_state, c.d_conv
        self.repeat = mamba_repeat(self.d_inner, self.d_xb, self.d_state)
        self.dt_limit = mamba_dt_limit(getattr(c, "dt_limit", None))
        self.in_proj = nn.Linear(d, self.d_xb + self.d_inner, bias=c.bias)
        self.conv1d = short_conv(self.d_xb, c.d_conv, c.conv_bias)
        self.x_proj = nn.Linear(self.d_xb, self.dt_rank + 2 * self.d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.zeros(self.d_inner, self.d_state))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d, bias=c.bias)

    def _ssm_inputs(self, x):  # x (..., d_xb) -> x (..., d_inner), dt (before its bias; Δ if clamped), B, C
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)
        if self.dt_limit is not None:
            dt = F.softplus(dt.float() + self.dt_proj.bias.float()).clamp(*self.dt_limit).to(x.dtype)
        return share_heads(x, self.repeat, self.d_state), dt, B, C

    def _delta_kw(self) -> dict:
        if self.dt_limit is not None:
            return {"delta_bias": None, "delta_softplus": False}
        return {"delta_bias": self.dt_proj.bias.float(), "delta_softplus": True}

    def forward(self, u, pos, mask, state):
        x, z = self.in_proj(u).split([self.d_xb, self.d_inner], dim=-1)
        A = -torch.exp(self.A_log.float())
        if state is not None and "ssm" in state:
            return self.out_proj(torch.stack([self._step(x[:, t], z[:, t], A, state) for t in range(x.shape[1])], 1))
        x = zero_pads(apply_short_conv(self.conv1d, x, mask, state, "conv"), mask)  # pads add nothing to the state
        x, dt, Bm, Cm = self._ssm_inputs(x)
        args = (x.transpose(1, 2), dt.transpose(1, 2), A, Bm.transpose(1, 2).contiguous(),
                Cm.transpose(1, 2).contiguous(), self.D.float())
        kw = dict(z=z.transpose(1, 2), **self._delta_kw(), return_last_state=state is not None)
        scan = kernel("mamba_ssm.ops.selective_scan_interface", "selective_scan_fn", x)
        if scan is not None:
            out = scan(*(a.contiguous() for a in args), **{**kw, "z": kw["z"].contiguous()})
        else:
            out = selective_scan(*args, **kw)
        if state is not None:
            out, state["ssm"] = out[0], out[1].float()
        return self.out_proj(out.transpose(1, 2))

    def _step(self, x, z, A, state):  # one token: x (B, d_xb), z (B, d_inner)
        x = causal_conv1d_step(x, state["conv"], self.conv1d.weight, self.conv1d.bias)
        x, dt, Bm, Cm = self._ssm_inputs(x)
        update = kernel("mamba_ssm.ops.triton.selective_state_update", "selective_state_update", x)
        step_args = (state["ssm"], x.contiguous(), dt, A, Bm, Cm, self.D.float())
        kw = self._delta_kw()
        y = (update or selective_state_step)(*step_args, z=z, dt_bias=state_update_bias(kw["delta_bias"], self.D),
                                             dt_softplus=kw["delta_softplus"])
        return y.to(x.dtype)


class ShortConvQKV(nn.Module):
    """GLA's and GDN's q / k / v projections, each through a short conv when the layer has them."""

    def _init_qkv(self, d: int, key_dim: int, value_dim: int, c) -> None:
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, n, bias=False) for n in (key_dim, key_dim, value_dim))
        if c.use_short_conv:
            self.q_conv1d, self.k_conv1d, self.v_conv1d = (short_conv(n, c.conv_size, c.conv_bias)
                                                           for n in (key_dim, key_dim, value_dim))

    def _qkv(self, x, mask, state, act_without_conv=None):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if self.c.use_short_conv:
            q, k, v = (apply_short_conv(getattr(self, f"{n}_conv1d"), t, mask, state, f"conv_{n}")
                       for n, t in zip("qkv", (q, k, v)))
        elif act_without_conv is not None:
            q, k, v = act_without_conv(q), act_without_conv(k), act_without_conv(v)
        if state is None or "h" not in state:
            v = zero_pads(v, mask)  # a zero memory stays zero through pads with zero values
        return q, k, v


class GatedLinearAttention(ShortConvQKV):
    """FLA's GatedLinearAttention; decode state: the q / k / v conv windows and the (K, V) memory."""

    def __init__(self, config):
        super().__init__()
        c, d, H = SimpleNamespace(**config.gla), config.d_model, config.n_heads
        self.c, self.n_heads = c, H
        self.key_dim, self.value_dim = scaled_dim("gla", d, c.expand_k, H), scaled_dim("gla", d, c.expand_v, H)
        self._init_qkv(d, self.key_dim, self.value_dim, c)
        if c.use_output_gate:
            self.g_proj = nn.Linear(d, self.value_dim, bias=False)
        self.gk_proj = nn.Sequential(nn.Linear(d, c.gate_low_rank_dim, bias=False),
                                     nn.Linear(c.gate_low_rank_dim, self.key_dim, bias=True))
        self.o_proj = nn.Linear(self.value_dim, d, bias=False)
        head_v_dim = self.value_dim // H
        self.fuse_norm_and_gate = c.gate_fn == "swish" and c.fuse_norm and c.use_output_gate  # FLA's parameter name
        if self.fuse_norm_and_gate:
            self.g_norm_swish_gate = HeadRMSNorm(head_v_dim, config.norm_eps, "swish")
        else:
            self.g_norm = HeadRMSNorm(head_v_dim, config.norm_eps, c.gate_fn)

    def forward(self, x, pos, mask, state):
        B, T, _ = x.shape
        c, H = self.c, self.n_heads
        q, k, v = self._qkv(x, mask, state)
        gk = F.logsigmoid(self.gk_proj(x).float()) / c.gate_logit_normalizer
        if c.clamp_min is not None:
            gk = gk.clamp_min(c.clamp_min)
        if c.feature_map is not None:
            q, k = ACT[c.feature_map](q), ACT[c.feature_map](k)
        q, k, v, gk = (t.view(B, T, H, -1) for t in (q, k, v, gk))
        o = self._mix(q, k, v, gk, state)
        if c.use_output_gate:
            g = self.g_proj(x).view(B, T, H, -1)
            o = self.g_norm_swish_gate(o, g) if self.fuse_norm_and_gate else self.g_norm(o) * ACT[c.gate_fn](g)
        else:
            o = self.g_norm(o)
        return self.o_proj(o.reshape(B, T, -1).to(x.dtype))

    def _mix(self, q, k, v, gk, state):
        T, keep = q.shape[1], state is not None
        stepping = keep and "h" in state  # continue from the memory
        # FLA's choice: the recurrent kernel for short inputs
        fla = kernel("fla.ops.gla", "fused_recurrent_gla" if stepping or T <= 64 else "chunk_gla", q)
        if fla is not None:
            g = {"gk" if stepping or T <= 64 else "g": gk.to(q.dtype)}
            o, h = fla(q=q, k=k, v=v, **g, initial_state=state["h"] if stepping else None, output_final_state=keep)
        elif stepping:
            return torch.stack([recurrent_gla_step(q[:, t], k[:, t], v[:, t], gk[:, t], state["h"]) for t in range(T)], 1)
        else:
            o, h = chunk_gla(q, k, v, gk, output_final_state=keep)
        if stepping:
            state["h"].copy_(h)
        elif keep:
            state["h"] = h.float()  # the memory stays fp32, as in FLA
        return o


class GatedDeltaNet(ShortConvQKV):
    """FLA's GatedDeltaNet; decode state: the q / k / v conv windows and the (K, V) memory."""

    def __init__(self, config):
        super().__init__()
        c, d, H = SimpleNamespace(**config.gdn), config.d_model, config.n_heads
        self.c, self.n_heads = c, H
        head_k_dim = scaled_dim("gdn", d, c.expand_k, H) // H
        head_v_dim = scaled_dim("gdn", head_k_dim, c.expand_v)  # FLA scales v per head
        self.key_dim, self.value_dim = H * head_k_dim, H * head_v_dim
        self._init_qkv(d, self.key_dim, self.value_dim, c)
        self.a_proj = nn.Linear(d, H, bias=False)
        self.b_proj = nn.Linear(d, H, bias=False)
        self.A_log = nn.Parameter(torch.zeros(H))
        self.dt_bias = nn.Parameter(torch.zeros(H))
        if c.use_gate:
            self.g_proj = nn.Linear(d, self.value_dim, bias=False)
        self.o_norm = HeadRMSNorm(head_v_dim, config.norm_eps, "swish")
        self.o_proj = nn.Linear(self.value_dim, d, bias=False)

    def forward(self, x, pos, mask, state):
        B, T, _ = x.shape
        c, H = self.c, self.n_heads
        q, k, v = self._qkv(x, mask, state, F.silu)  # FLA: silu in place of the conv's activation
        q, k, v = (t.view(B, T, H, -1) for t in (q, k, v))
        o = self._mix(q, k, v, self.a_proj(x), self.b_proj(x), state)
        gate = self.g_proj(x).view(B, T, H, -1) if c.use_gate else None
        return self.o_proj(self.o_norm(o, gate).reshape(B, T, -1).to(x.dtype))

    def _mix(self, q, k, v, a, b, state):
        T, keep = q.shape[1], state is not None
        stepping = keep and "h" in state  # continue from the memory
        short = stepping or (not torch.is_grad_enabled() and T <= 64)  # FLA's layer: recurrent kernel for short inputs
        fla = kernel("fla.ops.gated_delta_rule", "fused_recurrent_gated_delta_rule" if short else "chunk_gated_delta_rule", q)
        if fla is not None:  # gate, beta's sigmoid and the q / k L2 norm inside the kernel
            o, h = fla(q=q, k=k, v=v, g=a, beta=b, initial_state=state["h"] if stepping else None,
                       output_final_state=keep, use_qk_l2norm_in_kernel=self.c.use_qk_norm,
                       use_beta_sigmoid_in_kernel=True, use_gate_in_kernel=True, A_log=self.A_log, dt_bias=self.dt_bias)
        else:
            g = -self.A_log.float().exp() * F.softplus(a.float() + self.dt_bias.float())
            beta = b.float().sigmoid()
            if stepping:
                steps = [recurrent_gated_delta_rule_step(q[:, t], k[:, t], v[:, t], g[:, t], beta[:, t], state["h"],
                                                         use_qk_l2norm=self.c.use_qk_norm) for t in range(T)]
                return torch.stack(steps, 1)
            o, h = chunk_gated_delta_rule(q, k, v, g, beta, output_final_state=keep, use_qk_l2norm=self.c.use_qk_norm)
        if stepping:
            state["h"].copy_(h)
        elif keep:
            state["h"] = h.float()
        return o


MIXERS = {"attention": Attention, "mamba": Mamba, "gla": GatedLinearAttention, "gdn": GatedDeltaNet}


class SwiGLU(nn.Module):
    """OLMo's MLP: one projection to [value | gate], silu(gate) * value, back to d_model."""

    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        self.ff_proj = nn.Linear(d_model, 2 * hidden, bias=False)
        self.ff_out = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x):
        return self.ff_out(swiglu_reference(self.ff_proj(x)))


class Block(nn.Module):
    def __init__(self, config, layer_idx: int):
        super().__init__()
        self.mixer_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mixer = MIXERS[config.layers[layer_idx]](config)
        self.mlp_norm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config.d_model, config.mlp_ratio * config.d_model // 2)

    def forward(self, x, pos, mask, state):
        x = x + self.mixer(self.mixer_norm(x), pos, mask, state)
        return x + self.mlp(self.mlp_norm(x))


class DecodeState:
    """What decoding carries from one forward to the next: one dict of tensors per layer (empty
    until the prefill fills it) and the number of columns read so far (pads included)."""

    def __init__(self, n_layers: int):
        self.layers: list[dict[str, torch.Tensor]] = [{} for _ in range(n_layers)]
        self.seen = 0


@dataclass
class Recall2ReasonOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    decode_state: DecodeState | None = None


class Recall2ReasonForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = Recall2ReasonConfig
    _no_split_modules = ["Block"]

    def __init__(self, config: Recall2ReasonConfig):
        super().__init__(config)
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.final_norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def _init_weights(self, module):
        pass  # for trained weights only: the package's HybridLM holds the training init

    def get_input_embeddings(self):
        return self.embed

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids, attention_mask=None, decode_state=None, use_cache=None, labels=None,
                return_dict=None):
        """input_ids (B, T): the tokens after ``decode_state`` (all of them without one).
        attention_mask (B, columns so far, these T included): 0 at pads. Without a decode state pads
        may stand anywhere before or after a row's tokens; with one (decoding), only before them."""
        B, T = input_ids.shape
        if use_cache and decode_state is None:
            decode_state = DecodeState(len(self.blocks))
        past = decode_state.seen if decode_state is not None else 0
        if attention_mask is not None:
            if attention_mask.shape != (B, past + T):
                raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}; expected ({B}, {past + T}): "
                                 "one column per token so far")
            pos = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)[:, past:]  # a row's first token is position 0
            mask = None if bool(attention_mask.all()) else attention_mask.bool()
            if decode_state is not None and mask is not None and not bool((mask[:, 1:] >= mask[:, :-1]).all()):
                raise ValueError("attention_mask: with a decode state, pads may only come before a row's first "
                                 "token (left padding)")
        else:
            pos = torch.arange(past, past + T, device=input_ids.device).expand(B, T)
            mask = None
        x = self.embed(input_ids)
        for i, block in enumerate(self.blocks):
            layer_mask = None if mask is None else (mask if isinstance(block.mixer, Attention) else mask[:, past:])
            x = block(x, pos, layer_mask, None if decode_state is None else decode_state.layers[i])
        if decode_state is not None:
            decode_state.seen += T
        logits = self.lm_head(self.final_norm(x))
        loss = None
        if labels is not None:  # next-token loss: labels are the inputs, shifted here
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)
        out = Recall2ReasonOutput(loss=loss, logits=logits, decode_state=decode_state)
        return out if return_dict is not False else out.to_tuple()

    # -- generate(): the decode state travels in model_kwargs["decode_state"] ------------------
    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # our own state, not a transformers Cache

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, decode_state=None, use_cache=True,
                                      **kwargs):
        if decode_state is not None:
            input_ids = input_ids[:, decode_state.seen:]
        return {"input_ids": input_ids, "attention_mask": attention_mask, "decode_state": decode_state,
                "use_cache": use_cache}

    def _update_model_kwargs_for_generation(self, outputs, model_kwargs, *args, **kwargs):
        model_kwargs = super()._update_model_kwargs_for_generation(outputs, model_kwargs, *args, **kwargs)
        model_kwargs["decode_state"] = outputs.decode_state
        return model_kwargs

    def generate(self, *args, **kwargs):
        config = kwargs.get("generation_config") or self.generation_config
        if (kwargs.get("num_beams") or config.num_beams or 1) > 1:
            raise NotImplementedError("beam search would have to reorder the decode state; use greedy or sampling")
        return super().generate(*args, **kwargs)
