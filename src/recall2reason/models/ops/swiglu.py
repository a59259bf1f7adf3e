"""SwiGLU's activation on the MLP's packed projection ``[value | gate]``, one Triton kernel each way.

Why: the MLP's input projection as one GEMM (768 -> 2 x 3072) is 0.22 ms per layer and 32 x 2048
tokens faster than as two (forward, input and weight gradient:
benchmarks/reports/2026-12-06-pretrain-3-whole-model-compile.md; the whole training step gained
0.7 %: 2026-12-06-pretrain-4-packed-mlp.md), but its backward needs the
gradient of the packed output as one tensor. Left to inductor, that gradient was a concatenation
of the value and gate halves, which it fused into one slow kernel (434 us where the split form's
backward takes 235: 2026-12-03-pretrain-3-swiglu-split.md). Here forward and backward are opaque custom ops: the forward reads both halves and writes ``silu(gate) * value``;
the backward reads them and the incoming gradient once and writes both halves of the packed
gradient in place, so nothing is concatenated. The math is fp32 (cast back to the input dtype);
``swiglu_reference`` is its CPU twin. Triton is imported lazily (on first call), so importing
this module needs only PyTorch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BLOCK = 1024  # elements of the hidden activation per program (both halves of each are read)
_kernels = None


def swiglu_reference(proj: torch.Tensor) -> torch.Tensor:
    """proj (..., 2 F) = [value | gate] -> silu(gate) * value (..., F): OLMo's SwiGLU activation."""
    value, gate = proj.chunk(2, dim=-1)
    return F.silu(gate) * value


def _build_kernels():
    import triton
    import triton.language as tl

    @triton.jit
    def forward(PROJ, H, N, F: tl.constexpr, BLOCK: tl.constexpr):
        i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # index into H (rows x F)
        mask = i < N
        row = i // F
        at = i + row * F  # the value's index in PROJ (rows x 2F); the gate's is F further
        v = tl.load(PROJ + at, mask=mask).to(tl.float32)
        g = tl.load(PROJ + at + F, mask=mask).to(tl.float32)
        tl.store(H + i, (g * tl.sigmoid(g) * v).to(H.dtype.element_ty), mask=mask)

    @triton.jit
    def backward(PROJ, DH, DPROJ, N, F: tl.constexpr, BLOCK: tl.constexpr):
        i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = i < N
        row = i // F
        at = i + row * F
        v = tl.load(PROJ + at, mask=mask).to(tl.float32)
        g = tl.load(PROJ + at + F, mask=mask).to(tl.float32)
        dh = tl.load(DH + i, mask=mask).to(tl.float32)
        s = tl.sigmoid(g)
        # h = g s(g) v:  dh/dv = g s(g);  dh/dg = v s(g) (1 + g (1 - s(g)))
        tl.store(DPROJ + at, (dh * g * s).to(DPROJ.dtype.element_ty), mask=mask)
        tl.store(DPROJ + at + F, (dh * v * s * (1 + g * (1 - s))).to(DPROJ.dtype.element_ty), mask=mask)

    return forward, backward


def _get_kernels():
    global _kernels
    if _kernels is None:
        _kernels = _build_kernels()
    return _kernels


def _check(proj: torch.Tensor) -> int:
    if proj.shape[-1] % 2:
        raise ValueError(f"swiglu: the packed projection [value | gate] needs an even width, got {proj.shape[-1]}")
    return proj.shape[-1] // 2


@torch.library.custom_op("recall2reason::swiglu", mutates_args=())
def swiglu(proj: torch.Tensor) -> torch.Tensor:
    """``swiglu_reference`` as one Triton kernel; returns a new contiguous (..., F) tensor."""
    F_ = _check(proj)
    proj = proj.contiguous()
    h = proj.new_empty(*proj.shape[:-1], F_)
    if h.numel():
        fwd, _ = _get_kernels()
        fwd[(-(-h.numel() // BLOCK),)](proj, h, h.numel(), F=F_, BLOCK=BLOCK)
    return h


@swiglu.register_fake
def _(proj):
    return proj.new_empty(*proj.shape[:-1], proj.shape[-1] // 2)


@torch.library.custom_op("recall2reason::swiglu_backward", mutates_args=())
def swiglu_backward(proj: torch.Tensor, dh: torch.Tensor) -> torch.Tensor:
    """The gradient of the packed projection (both halves, one tensor) from that of the activation."""
    F_ = _check(proj)
    proj, dh = proj.contiguous(), dh.contiguous()
    dproj = torch.empty_like(proj)
    if dh.numel():
        _, bwd = _get_kernels()
        bwd[(-(-dh.numel() // BLOCK),)](proj, dh, dproj, dh.numel(), F=F_, BLOCK=BLOCK)
    return dproj


@swiglu_backward.register_fake
def _(proj, dh):
    return torch.empty_like(proj)


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(inputs[0])


def _backward(ctx, dh):
    (proj,) = ctx.saved_tensors
    return swiglu_backward(proj, dh)


swiglu.register_autograd(_backward, setup_context=_setup_context)
