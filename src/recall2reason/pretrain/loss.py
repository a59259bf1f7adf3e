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
"""

from __future__ import annotations

import torch

_compiled = None


def _chunk_fwd_bwd(h: torch.Tensor, w: torch.Tensor, t: torch.Tensor, inv_n: float, need_grad: bool):
    logits = (h @ w.t()).float()
    lse = torch.logsumexp(logits, dim=-1)
    loss_sum = (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
    if not need_grad:
        return loss_sum, None, None
    # softmax - onehot as one pointwise expression (a scatter here made the compiler write the fp32
    # probabilities out and read them back: twice the memory traffic of the fused form)
    onehot = torch.arange(logits.shape[1], device=t.device)[None, :] == t[:, None]
    g = ((torch.exp(logits - lse[:, None]) - onehot.to(logits.dtype)) * inv_n).to(h.dtype)
    return loss_sum, g @ w, (g.t() @ h).float()


def _chunk_fn(compile: bool):
    global _compiled
    if not compile:
        return _chunk_fwd_bwd
    if _compiled is None:
        _compiled = torch.compile(_chunk_fwd_bwd, dynamic=False)
    return _compiled


class _FusedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, t, chunk_tokens, compute_dtype, compile):
        n = t.numel()
        need_grad = h.requires_grad or w.requires_grad
        fn = _chunk_fn(compile)
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
        return grad_h * grad_out.to(grad_h.dtype), (grad_w * grad_out).to(ctx.w_dtype), None, None, None, None


def fused_linear_cross_entropy(
    h: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_tokens: int = 8192,
    compute_dtype: torch.dtype | None = None,
    compile: bool = False,
) -> torch.Tensor:
    """Mean cross-entropy of ``h @ weight.T`` against ``targets``; h (..., d), targets (...)."""
    h2 = h.reshape(-1, h.shape[-1])
    t = targets.reshape(-1)
    if t.numel() != h2.shape[0]:
        raise ValueError(f"{h2.shape[0]} hidden states but {t.numel()} targets")
    return _FusedLinearCE.apply(h2, weight, t, int(chunk_tokens), compute_dtype or h.dtype, compile)
