"""Fused LM head + cross-entropy that never materialises the full logits.

The (tokens x vocab) logits of a 16 x 2048 micro-batch are 1 G floats; instead the LM head and
the loss run over chunks of ``chunk_tokens`` tokens, and each chunk's gradients (w.r.t. the
hidden states and the head weight) are computed *in the forward pass* while the chunk's logits
are at hand (the Liger-kernel scheme). Backward then only scales the stored gradients by the
incoming gradient, so nothing is recomputed and at most one chunk of logits (in the compute
dtype; fp32 only inside the fused softmax) is alive at any time.

    loss = mean_i [ logsumexp(h_i W^T) - (h_i W^T)[t_i] ]
    dL/dlogits = (softmax(h W^T) - onehot(t)) / n ;  dL/dh = dlogits W ;  dL/dW = dlogits^T h

Every target counts (packed pretraining data has no padding). ``compute_dtype`` is the matmul
dtype (bf16 under the bf16 recipe); softmax / log-sum-exp / accumulation are fp32.

Per chunk, the softmax part runs either as one compiled (or eager) PyTorch expression, or (``kernel``;
the trainer's ``train.loss_kernel``) as :mod:`.ce_triton`'s one-pass kernel on CUDA, which reads the
logits once and writes their gradient over them (the compiled form reads them twice); both compute
the same values.
"""

from __future__ import annotations

import functools

import torch

_compiled = None
KERNEL_MAX_VOCAB = 65536  # = ce_triton.MAX_VOCAB (that module imports Triton, so it is imported lazily)


def _softmax(logits: torch.Tensor, t: torch.Tensor, inv_n: float, need_grad: bool):
    """A chunk's loss sum and d(loss)/d(logits) in the logits' dtype (None without ``need_grad``)."""
    z = logits.float()
    lse = torch.logsumexp(z, dim=-1)
    loss_sum = (lse - z.gather(1, t[:, None]).squeeze(1)).sum()
    if not need_grad:
        return loss_sum, None
    # softmax - onehot as one pointwise expression (a scatter here made the compiler write the fp32
    # probabilities out and read them back: twice the memory traffic of the fused form)
    onehot = torch.arange(z.shape[1], device=t.device)[None, :] == t[:, None]
    return loss_sum, ((torch.exp(z - lse[:, None]) - onehot.to(z.dtype)) * inv_n).to(logits.dtype)


def _softmax_kernel(logits: torch.Tensor, t: torch.Tensor, inv_n: float, need_grad: bool):
    """:func:`_softmax` as the one-pass Triton kernel; the gradient is written over ``logits``."""
    from recall2reason.pretrain.ce_triton import cross_entropy_rows_

    return cross_entropy_rows_(logits, t, inv_n).sum(), logits


def _chunk_fwd_bwd(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor, inv_n: float, need_grad: bool,
                   softmax=_softmax):
    loss_sum, g = softmax(h @ w.t(), t, inv_n, need_grad)
    if not need_grad:
        return loss_sum, None, None
    return loss_sum, g @ w, (g.t() @ h).float()


def kernel_available(h: torch.Tensor, w: torch.Tensor) -> bool:
    """The one-pass kernel's conditions: CUDA, Triton importable, the vocab fits one program."""
    if not h.is_cuda or w.shape[0] > KERNEL_MAX_VOCAB:
        return False
    from recall2reason.models.kernels import importable

    return importable("triton")


def _chunk_fn(compile: bool, kernel: bool = False):
    global _compiled
    if kernel:  # eager: two cuBLAS GEMMs around one kernel, nothing left to compile
        return functools.partial(_chunk_fwd_bwd, softmax=_softmax_kernel)
    if not compile:
        return _chunk_fwd_bwd
    if _compiled is None:
        _compiled = torch.compile(_chunk_fwd_bwd, dynamic=False)
    return _compiled


class _FusedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, t, chunk_tokens, compute_dtype, compile, kernel):
        n = t.numel()
        need_grad = h.requires_grad or w.requires_grad
        fn = _chunk_fn(compile, kernel)
        with torch.autocast(h.device.type, enabled=False):
            wc = w.to(compute_dtype)
            total = torch.zeros((), dtype=torch.float32, device=h.device)
            grad_h = torch.empty_like(h) if need_grad else None
            grad_w = torch.zeros(w.shape, dtype=torch.float32, device=w.device) if need_grad else None
            for s in range(0, n, chunk_tokens):
                e = min(n, s + chunk_tokens)
                loss_sum, gh, gw = fn(h[s:e].to(compute_dtype), wc, t[s:e], 1.0 / n, need_grad)
                total += loss_sum
                if need_grad:
                    grad_h[s:e] = gh
                    grad_w += gw
        ctx.save_for_backward(grad_h, grad_w)
        ctx.w_dtype = w.dtype
        return total / n

    @staticmethod
    def backward(ctx, grad_out):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad_out.to(grad_h.dtype), (grad_w * grad_out).to(ctx.w_dtype), None, None, None, None, None


def fused_linear_cross_entropy(
    h: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_tokens: int = 8192,
    compute_dtype: torch.dtype | None = None,
    compile: bool = False,
    kernel: bool | None = False,
) -> torch.Tensor:
    """Mean cross-entropy of ``h @ weight.T`` against ``targets``; h (..., d), targets (...).
    ``kernel``: the one-pass Triton softmax; None: where :func:`kernel_available` (CUDA)."""
    h2 = h.reshape(-1, h.shape[-1])
    t = targets.reshape(-1)
    if t.numel() != h2.shape[0]:
        raise ValueError(f"{h2.shape[0]} hidden states but {t.numel()} targets")
    if kernel is None:
        kernel = kernel_available(h2, weight)
    return _FusedLinearCE.apply(h2, weight, t, int(chunk_tokens), compute_dtype or h.dtype, compile, bool(kernel))
