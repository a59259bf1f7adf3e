"""Our two-kernel chunked GLA (ops.fused_chunk_gla) against an fp64 evaluation of its PyTorch twin
(ops.gla), output and all four gradients; on CPU through Triton's interpreter (fp32: the
interpreter's bf16 matmul is broken), on a GPU compiled. The bf16 comparison with FLA's kernel is
in tests/test_gpu_kernels.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from recall2reason.models.ops.gla import chunk_gla as reference_gla


def _inputs(device, gate_scale, B=2, T=150, H=2, K=16, V=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, T, H, K, generator=g) for _ in range(2))
    v = torch.randn(B, T, H, V, generator=g)
    gate = F.logsigmoid(torch.randn(B, T, H, K, generator=g) * gate_scale) / 4
    return [x.to(device).requires_grad_() for x in (q, k, v, gate)]


def _check_against_fp64(xs, tol, **kw):
    if xs[0].is_cuda:
        tol = max(tol, 5e-3)  # compiled, fp32 matmuls run in TF32 (as FLA's); the interpreter's in fp32
    from recall2reason.models.ops.fused_chunk_gla import fused_chunk_gla

    do = torch.randn_like(xs[2])
    o = fused_chunk_gla(*xs, **kw)
    got = (o, *torch.autograd.grad(o, xs, do))
    ref_o = reference_gla(*[x.double() for x in xs])[0]
    want = (ref_o, *torch.autograd.grad(ref_o, xs, do.double()))
    for name, a, b in zip(("o", "dq", "dk", "dv", "dg"), got, want):
        assert a.dtype == xs[0].dtype and a.shape == b.shape
        err = ((a.double() - b).norm() / b.norm()).item()
        assert err < tol, f"{name}: relative L2 error {err:.3g}"


@pytest.mark.parametrize("case", ["one-matmul", "exact"])
def test_matches_the_pytorch_twin(triton_device, case):
    """150 tokens: two full chunks of 64 and a partial one; K != V."""
    _check_against_fp64(_inputs(triton_device, gate_scale=1.0), tol=1e-5, exact=case == "exact")


def test_saturated_gates_in_some_chunks_take_the_exact_path(triton_device):
    """Gates of ~-12 per token in the middle chunk only (it decays by ~2^1000 within the chunk, far
    past 2^96): that chunk runs the per-column form, its neighbours the one-matmul form, and the
    state and the gate gradient pass between the two."""
    xs = _inputs(triton_device, gate_scale=1.0)
    with torch.no_grad():
        xs[3][:, 64:128] = F.logsigmoid(torch.full_like(xs[3][:, 64:128], -50.0)) / 4
    _check_against_fp64(xs, tol=1e-4)


def test_bad_inputs_are_refused():
    pytest.importorskip("triton")
    from recall2reason.models.ops.fused_chunk_gla import fused_chunk_gla

    q = torch.zeros(1, 8, 2, 16)
    with pytest.raises(ValueError, match="must share"):
        fused_chunk_gla(q, torch.zeros(1, 8, 2, 32), torch.zeros(1, 8, 2, 16), q)
    with pytest.raises(ValueError, match="powers of two"):
        fused_chunk_gla(torch.zeros(1, 8, 2, 24), torch.zeros(1, 8, 2, 24), torch.zeros(1, 8, 2, 16), torch.zeros(1, 8, 2, 24))
    with pytest.raises(ValueError, match="bf16 or all fp32"):
        fused_chunk_gla(q.half(), q.half(), q.half(), q)
