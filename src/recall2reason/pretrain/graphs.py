"""One training micro-step (forward + backward) captured once as a CUDA graph and replayed.

Why: the recurrent mixers' kernel layers (FLA's autograd Functions, its autotuner lookups and input
guards; mamba-ssm's wrappers) cost milliseconds of Python per layer and call. At the paper's
shapes a GDN100 micro-step kept the host busy about twice as long as the GPU
(benchmarks/reports/2026-12-02-pretrain-2-cuda-graph.md), so
the GPU idled half the time. A replay costs one launch, whatever the model.

How (PyTorch's "whole-network capture" recipe, plus gradient accumulation):
  1. warm up a few micro-steps on a side stream: torch.compile, FLA's autotuning and the lazily
     built backward graphs all happen here, outside the capture;
  2. zero the parameters' ``.grad`` in place (they exist now) and capture one fwd + bwd that reads
     static input / target buffers; the captured backward *adds* into those ``.grad`` tensors, so
     replaying it n times accumulates n micro-batches, exactly like eager backward;
  3. per micro-batch: copy the batch into the static buffers, replay, read the static loss.
The optimizer step, clipping and logging stay outside the graph; the trainer zeroes ``.grad`` in
place instead of setting it to None, since the graph writes to fixed addresses.

Warm-up only touches ``.grad`` (zeroed afterwards), never the weights or optimizer state, so a
graphed run computes what an eager one does (tests/test_gpu_train.py compares them on a GPU).
Where capture fails (a kernel that syncs with the host, say), the step warns once and runs every
micro-step eagerly from then on.
"""

from __future__ import annotations

import logging
import time

import torch

log = logging.getLogger("recall2reason.pretrain")


class GraphedMicroStep:
    """``step(inputs, targets) -> loss``: one replayed fwd + bwd of ``step_module`` with the loss
    scaled by ``1 / n_micro`` before backward (as ``train_step`` does eagerly). If capture fails,
    it says why once and runs every later micro-step eagerly."""

    def __init__(self, step_module, params, n_micro: int, bf16: bool, warmup: int = 3):
        self.step_module, self.params, self.n_micro = step_module, list(params), n_micro
        self.bf16, self.warmup = bf16, warmup
        self.graph = self.inputs = self.targets = self.loss = None
        self.failed: str | None = None  # why capture failed, if it did

    @classmethod
    def from_config(cls, step_module, params, n_micro: int, cfg, device: torch.device) -> "GraphedMicroStep | None":
        """The trainer's choice: a graphed step where ``train.cuda_graphs`` is on and the device is CUDA."""
        if not (cfg.cuda_graphs and device.type == "cuda"):
            return None
        return cls(step_module, params, n_micro, bf16=cfg.precision == "bf16")

    def _fwd_bwd(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # the autocast weight cache must stay off: cached casts made inside a capture would be
        # freed with it (PyTorch's note on graphs and autocast)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            loss = self.step_module(inputs, targets)
        (loss / self.n_micro).backward()
        return loss.detach()

    def capture(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Warm up and capture on the shapes of this micro-batch; leaves every ``.grad`` zero."""
        t0 = time.perf_counter()
        self.inputs, self.targets = inputs.clone(), targets.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self._fwd_bwd(self.inputs, self.targets)
        torch.cuda.current_stream().wait_stream(side)
        for p in self.params:  # accumulate-into targets with fixed addresses
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.zero_grads()
        torch.cuda.synchronize()
        torch.cuda.empty_cache()  # the warm-up's activations: the graph gets its own pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.loss = self._fwd_bwd(self.inputs, self.targets)
        self.graph = graph
        log.info("CUDA graph: captured the micro-step (%d warm-up micro-steps + capture: %.1f s)",
                 self.warmup, time.perf_counter() - t0)

    def zero_grads(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        if grads:  # none yet where capture failed before the first backward (an OOM in warm-up, say)
            torch._foreach_zero_(grads)

    def __call__(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.graph is None and self.failed is None:
            try:
                self.capture(inputs, targets)
            except Exception as e:  # e.g. a kernel wrapper that syncs with the host
                self.failed = f"{type(e).__name__}: {e}"
                log.warning("CUDA graph capture of the micro-step failed (%s); training eagerly", self.failed)
                torch.cuda.synchronize()
                self.zero_grads()
        if self.graph is None:
            return self._fwd_bwd(inputs, targets)
        if inputs.shape != self.inputs.shape or targets.shape != self.targets.shape:
            raise ValueError(f"micro-batch {tuple(inputs.shape)} differs from the captured {tuple(self.inputs.shape)}")
        self.inputs.copy_(inputs)
        self.targets.copy_(targets)
        self.graph.replay()
        return self.loss
