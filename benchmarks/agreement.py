"""Kernel-vs-reference agreement and timing of one mixer layer (used by tests/test_gpu_kernels.py,
tests/test_models_mixers.py and benchmarks/mixer_kernels.py, gla_kernel.py, gpu_agreement_quick.py).
A measuring harness, so it lives with the benchmarks, not in the package. Runs only where CUDA and
the kernel packages are present (or reference vs reference on CPU: ``other="reference"``).

Benchmark scripts import it as ``agreement`` (their own folder is first on sys.path); tests put
benchmarks/ on sys.path first."""

from __future__ import annotations

import contextlib
import time

import torch

from recall2reason.models.config import ModelConfig
from recall2reason.models.layers import get_mixer


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in fp32 (relative L2 error of a against b)."""
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def paper_cfg(name: str) -> ModelConfig:
    return ModelConfig.from_dict({"layers": [name], "n_layers": 1})


def layer_pair(name: str, cfg: ModelConfig | None = None, device="cuda", seed: int = 0, other: str = "kernels"):
    """(reference, kernels) instances of one mixer holding the same random weights (fp32).
    ``other="reference"`` makes both reference (a CPU dry run of the plumbing)."""
    cfg = cfg or paper_cfg(name)
    torch.manual_seed(seed)
    cls = get_mixer(name)
    ref = cls(cfg, 0, "reference")
    for n, p in ref.named_parameters():  # the model's generic init, then the mixer's own
        if p.dim() >= 2 and "conv" not in n:
            torch.nn.init.normal_(p, 0.0, 0.02)
    if hasattr(ref, "_init_special"):
        ref._init_special()
    ker = cls(cfg, 0, other)
    ker.load_state_dict(ref.state_dict())
    return ref.to(device), ker.to(device)


def _autocast(dtype, device_type="cuda"):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)  # the trainer's regime: fp32 weights, bf16 compute


def run_layer(mod, x, dy, dtype):
    """Output and the gradients of <y, dy> w.r.t. x and every parameter."""
    mod.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    with _autocast(dtype, x.device.type):
        y = mod(x)
    y.backward(dy.to(y.dtype))
    grads = {"x": x.grad}
    grads.update({n: p.grad for n, p in mod.named_parameters() if p.grad is not None})
    return y.detach(), grads


def compare(name: str, dtype, batch: int = 4, seqlen: int = 2048, seed: int = 0, cfg: ModelConfig | None = None,
            device="cuda", other="kernels") -> dict:
    """Relative errors kernels vs reference: output, input grad, worst parameter grad (and which)."""
    cfg = cfg or paper_cfg(name)
    ref, ker = layer_pair(name, cfg, device=device, seed=seed, other=other)
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, seqlen, cfg.d_model, device=device, generator=g)
    dy = torch.randn(x.shape, device=device, generator=g)
    y_r, g_r = run_layer(ref, x, dy, dtype)
    y_k, g_k = run_layer(ker, x, dy, dtype)
    assert set(g_r) == set(g_k), (set(g_r) ^ set(g_k))
    param_errs = {n: rel_err(g_k[n], g_r[n]) for n in g_r if n != "x"}
    worst = max(param_errs, key=param_errs.get)
    return {"mixer": name, "dtype": str(dtype).removeprefix("torch."), "batch": batch, "seqlen": seqlen,
            "out": rel_err(y_k, y_r), "dx": rel_err(g_k["x"], g_r["x"]), "dparam_max": param_errs[worst],
            "dparam_worst": worst, "finite": bool(torch.isfinite(y_k).all() and torch.isfinite(y_r).all())}


def time_fwd_bwd(mod, d: int, batch=4, seqlen=2048, dtype=torch.bfloat16, iters=10, warmup=3, device="cuda") -> float:
    """Median milliseconds of one forward + backward of ``mod`` on (batch, seqlen, d)."""
    x = torch.randn(batch, seqlen, d, device=device, requires_grad=True)
    times = []
    for i in range(warmup + iters):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with _autocast(dtype, device):
            y = mod(x)
        y.float().sum().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(1000 * (time.perf_counter() - t0))
        mod.zero_grad(set_to_none=True)
        x.grad = None
    return sorted(times)[len(times) // 2]


class _LayerLoss(torch.nn.Module):
    """sum(layer(x)) as a loss whose backward also computes dx, in the trainer's step interface."""

    def __init__(self, mod):
        super().__init__()
        self.mod = mod

    def forward(self, x: torch.Tensor, _targets) -> torch.Tensor:
        return self.mod(x.detach().requires_grad_()).float().sum()


def time_fwd_bwd_graphed(mod, d: int, batch=4, seqlen=2048, dtype=torch.bfloat16, iters=10, warmup=3) -> float:
    """Median milliseconds of one forward + backward replayed from a CUDA graph (the trainer's
    ``GraphedMicroStep``), by CUDA events: the GPU time alone. Eager timing (``time_fwd_bwd``) adds
    the Python launch overhead of the kernel wrappers, which the trainer's graph removes."""
    from recall2reason.pretrain.graphs import GraphedMicroStep

    x = torch.randn(batch, seqlen, d, device="cuda")
    step = GraphedMicroStep(_LayerLoss(mod), mod.parameters(), n_micro=1, bf16=dtype == torch.bfloat16)
    step(x, x)  # warm-up + capture
    if step.failed:
        raise RuntimeError(f"capture failed: {step.failed}")
    times = []
    for i in range(warmup + iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step(x, x)
        end.record()
        end.synchronize()
        if i >= warmup:
            times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]
