"""The MLP's packed input projection: its PyTorch twin against two GEMMs (one per half of the
weight, the form the model dropped, kept here as the reference), and the Triton SwiGLU op
(models/ops/swiglu.py) against the twin in Triton's CPU interpreter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recall2reason.models.model import SwiGLU
from recall2reason.models.ops.swiglu import swiglu_reference
from test_models_qkv_rope import assert_same, fwd_bwd  # a module's output and its input / parameter gradients


def mlp(backend: str, like: SwiGLU | None = None, d: int = 48, hidden: int = 96) -> SwiGLU:
    m = SwiGLU(d, hidden, backend)
    if like is not None:
        m.load_state_dict(like.state_dict())
    return m


def split_forward(m: SwiGLU):
    """The MLP as two GEMMs, one per half of ff_proj's weight (OLMo's rows: [value | gate])."""
    def fn(x):
        value_w, gate_w = m.ff_proj.weight.chunk(2, dim=0)
        return m.ff_out(F.silu(F.linear(x, gate_w)) * F.linear(x, value_w))
    return fn


def test_packed_projection_is_the_split_projections():
    # same parameter, same function: OLMo's ff_proj rows are [value | gate]
    torch.manual_seed(0)
    packed = mlp("reference")
    x = torch.randn(2, 7, 48)
    assert_same(fwd_bwd(packed, x), fwd_bwd(packed, x, split_forward(packed)), atol=1e-5, rtol=1e-5)
    assert set(packed.state_dict()) == {"ff_proj.weight", "ff_out.weight"}


# -- the Triton op, in the interpreter on CPU (on a GPU machine: the compiled kernel) ----------------

def _tol(dtype):
    # fp32: the same products (fused multiply-adds may round once less on a GPU); bf16: the kernel
    # keeps silu(gate) in fp32 where PyTorch's eager twin rounds it to bf16 first, and the
    # interpreter truncates fp32 -> bf16: a bf16 ulp or two
    return dict(atol=1e-6, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-2, rtol=2**-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_triton_op_matches_the_reference(dtype, triton_device):
    dev = triton_device
    from recall2reason.models.ops.swiglu import swiglu

    torch.manual_seed(1)
    for shape in [(3, 37, 2 * 96), (1, 5, 2 * 1000)]:  # elements not a multiple of the block; rows across blocks
        proj = (2 * torch.randn(shape, device=dev)).to(dtype).requires_grad_()
        got, want = swiglu(proj), swiglu_reference(proj)
        assert got.is_contiguous() and got.shape == want.shape and got.dtype == dtype
        torch.testing.assert_close(got, want, **_tol(dtype))
        dh = torch.randn(want.shape, device=dev).to(dtype)
        got_g, = torch.autograd.grad(got, proj, dh)
        want_g, = torch.autograd.grad(want, proj, dh)
        torch.testing.assert_close(got_g, want_g, **_tol(dtype))
        assert got_g[..., :shape[-1] // 2].abs().sum() > 0 and got_g[..., shape[-1] // 2:].abs().sum() > 0  # both halves


def test_triton_op_registration_passes_opcheck(triton_device):
    # schema, fake (meta) function, autograd formula and AOT dispatch, as torch.compile uses them
    dev = triton_device
    from recall2reason.models.ops.swiglu import swiglu

    torch.library.opcheck(swiglu, (torch.randn(2, 9, 2 * 40, device=dev, requires_grad=True),))


def test_op_rejects_an_odd_width():
    from recall2reason.models.ops.swiglu import swiglu

    with pytest.raises(ValueError, match="even width"):
        swiglu(torch.zeros(2, 3, 7))


def test_mlp_on_the_kernels_backend_matches_the_reference_compiled(triton_device):
    # the MLP as training would run it: kernels backend, packed projection, under torch.compile
    dev = triton_device
    torch.manual_seed(2)
    ref = mlp("reference").to(dev)
    ker = mlp("kernels", like=ref).to(dev)
    x = torch.randn(2, 45, 48, device=dev)
    want = fwd_bwd(ref, x, split_forward(ref))
    assert_same(fwd_bwd(ker, x), want, atol=1e-5, rtol=1e-5)
    assert_same(fwd_bwd(ker, x, torch.compile(ker, fullgraph=True)), want, atol=1e-5, rtol=1e-5)
