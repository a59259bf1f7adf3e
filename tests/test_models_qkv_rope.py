"""Attention's packed q|k|v projection with RoPE: the PyTorch twin against three separate
projections and ``apply_rope`` (the training form the layer dropped, kept here as the reference),
and the Triton split-and-rotate op (models/ops/qkv_rope.py) against the twin in Triton's CPU interpreter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recall2reason.models.config import ModelConfig
from recall2reason.models.layers.attention import Attention
from recall2reason.models.ops.qkv_rope import qkv_rope_reference
from recall2reason.models.ops.rope import apply_rope, rope_cos_sin


def attn_cfg(n_heads=4, n_kv_heads=2, d_model=64) -> ModelConfig:
    return ModelConfig.from_dict(dict(d_model=d_model, n_layers=1, n_heads=n_heads, n_kv_heads=n_kv_heads,
                                      vocab_size=64, max_seq_len=128, layers=["attention"], backend="reference",
                                      mamba={"dt_rank": None}))


def layer(cfg, backend: str, like: Attention | None = None) -> Attention:
    m = Attention(cfg, 0, backend)
    if like is not None:
        m.load_state_dict(like.state_dict())
    return m


def separate_forward(m: Attention):
    """The layer's forward with three q / k / v GEMMs and RoPE by ``apply_rope``."""
    def fn(x):
        B, T, _ = x.shape
        q = m.q_proj(x).view(B, T, m.n_heads, m.head_dim).transpose(1, 2)
        k = m.k_proj(x).view(B, T, m.n_kv_heads, m.head_dim).transpose(1, 2)
        v = m.v_proj(x).view(B, T, m.n_kv_heads, m.head_dim).transpose(1, 2)
        cos, sin = rope_cos_sin(torch.arange(T, device=x.device), m.head_dim, m.rope_theta)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=m.n_kv_heads != m.n_heads)
        return m.o_proj(y.transpose(1, 2).reshape(B, T, -1))
    return fn


def fwd_bwd(m: Attention, x: torch.Tensor, fn=None):
    x = x.detach().requires_grad_()
    y = (m if fn is None else fn)(x)
    grads = torch.autograd.grad((y.float() * torch.linspace(-1, 1, y.shape[-1], device=y.device)).square().sum(), [x, *m.parameters()])
    return y, grads


def assert_same(a, b, **tol):
    (ya, ga), (yb, gb) = a, b
    torch.testing.assert_close(ya, yb, **tol)
    for u, v in zip(ga, gb, strict=True):
        torch.testing.assert_close(u, v, **tol)


@pytest.mark.parametrize("n_kv_heads", [4, 2], ids=["mha", "gqa"])
def test_packed_projection_is_the_separate_projections_with_rope(n_kv_heads):
    # same parameters (state dict), same function: only the GEMM and the split differ
    torch.manual_seed(0)
    cfg = attn_cfg(n_kv_heads=n_kv_heads)
    packed = layer(cfg, "reference")
    assert list(packed.state_dict()) == ["q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"]
    x = torch.randn(2, 45, 64)
    assert_same(fwd_bwd(packed, x), fwd_bwd(packed, x, separate_forward(packed)), atol=1e-5, rtol=1e-5)
    # decoding runs the separate projections: prefill + steps still match the whole-sequence forward
    state = packed.init_state(1, 50, x.device, torch.float32)
    with torch.no_grad():
        full = packed(x[:1])
        pre = packed.prefill(x[:1, :40], state, 0)
        steps = [packed.step(x[:1, t:t + 1], state, torch.tensor([t])) for t in range(40, 45)]
    torch.testing.assert_close(torch.cat([pre, *steps], 1), full, atol=1e-5, rtol=1e-5)


def test_op_rejects_a_width_that_is_not_heads_times_head_dim():
    from recall2reason.models.ops.qkv_rope import qkv_rope

    cos, sin = rope_cos_sin(torch.arange(8), 16, 10000.0)
    with pytest.raises(ValueError, match="heads"):
        qkv_rope(torch.zeros(1, 8, 7 * 16), cos, sin, 4, 2)
    with pytest.raises(ValueError, match="positions"):
        qkv_rope(torch.zeros(1, 9, 8 * 16), cos, sin, 4, 2)


# -- the Triton op, in the interpreter on CPU (on a GPU machine: the compiled kernel) ----------------

def _tol(dtype):
    # fp32: the same products and sums (fused multiply-adds may round once less on a GPU); bf16: the
    # interpreter truncates fp32 -> bf16 where the GPU and PyTorch round to nearest, so one bf16 ulp
    return dict(atol=1e-6, rtol=1e-6) if dtype == torch.float32 else dict(atol=1e-6, rtol=2**-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("config", [None, {"BLOCK_T": 8, "num_warps": 1}], ids=["default", "small-blocks"])
def test_triton_op_matches_the_reference(dtype, config, monkeypatch, triton_device):
    dev = triton_device
    from recall2reason.models.ops import qkv_rope as mod

    if config is not None:
        monkeypatch.setattr(mod, "DEFAULT_CONFIG", config)
    torch.manual_seed(1)
    for B, T, H, Hkv, hd in [(2, 37, 4, 2, 16), (1, 64, 3, 3, 8)]:  # tokens not a multiple of the block; GQA and MHA
        cos, sin = (t.to(dev) for t in rope_cos_sin(torch.arange(80), hd, 10000.0))
        qkv = torch.randn(B, T, (H + 2 * Hkv) * hd, device=dev).to(dtype).requires_grad_()
        got = mod.qkv_rope(qkv, cos, sin, H, Hkv)
        want = qkv_rope_reference(qkv, cos, sin, H, Hkv)
        for g, w in zip(got, want, strict=True):
            assert g.is_contiguous() and g.shape == w.shape and g.dtype == dtype
            torch.testing.assert_close(g, w, **_tol(dtype))
        # incoming gradients as SDPA hands them back: (B, heads, T, hd) tensors seen through a transpose
        dys = [torch.randn(w.transpose(1, 2).shape, device=dev).to(dtype).transpose(1, 2) for w in want]
        got_g, = torch.autograd.grad(got, qkv, dys)
        want_g, = torch.autograd.grad(want, qkv, dys)
        torch.testing.assert_close(got_g, want_g, **_tol(dtype))
        assert got_g.abs().sum() > 0  # the comparison is not between zeros


def test_triton_op_registration_passes_opcheck(triton_device):
    # schema, fake (meta) function, autograd formula and AOT dispatch, as torch.compile uses them
    dev = triton_device
    from recall2reason.models.ops.qkv_rope import qkv_rope

    cos, sin = (t.to(dev) for t in rope_cos_sin(torch.arange(40), 16, 10000.0))
    qkv = torch.randn(2, 37, 8 * 16, device=dev, requires_grad=True)
    torch.library.opcheck(qkv_rope, (qkv, cos, sin, 4, 2))


def test_attention_layer_on_the_kernels_backend_matches_the_reference_compiled(triton_device):
    # the layer as training runs it: kernels backend, packed projection, block under torch.compile
    dev = triton_device
    torch.manual_seed(2)
    cfg = attn_cfg()
    ref = layer(cfg, "reference").to(dev)
    ker = layer(cfg, "kernels", like=ref).to(dev)
    x = torch.randn(2, 45, 64, device=dev)
    want = fwd_bwd(ref, x, separate_forward(ref))
    assert_same(fwd_bwd(ker, x), want, atol=1e-5, rtol=1e-5)
    assert_same(fwd_bwd(ker, x, torch.compile(ker, fullgraph=True)), want, atol=1e-5, rtol=1e-5)
