"""Deterministic data order for pretraining.

The run reads ``epochs`` passes over the manifest's sequences (``TokenShards``: sequence ``i`` is
tokens ``[i*T, i*T+T+1)`` of the epoch stream). Pass ``e`` visits the sequences in the order of a
permutation drawn from ``numpy.random.Generator(PCG64([seed, e]))``; the passes are laid back to
back, and optimizer step ``s`` (1-based) consumes global positions ``[(s-1)*G, s*G)`` of that
stream, G = sequences per global batch. So the sequence ids of any step are a pure function of
(seed, epoch, step): a resumed run needs nothing but the step, and every DDP rank derives the same
global batch and takes its own contiguous slice (rank r: ``[r*G/W, (r+1)*G/W)``), which it splits
into micro-batches.
"""

from __future__ import annotations

import numpy as np
import torch


class DataOrder:
    def __init__(self, n_sequences: int, global_batch: int, seed: int):
        if n_sequences < 1:
            raise ValueError("the data manifest holds no complete sequence")
        self.n_sequences, self.global_batch, self.seed = int(n_sequences), int(global_batch), int(seed)
        self._perms: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) >= 2:  # a step spans at most two epochs
                self._perms.pop(min(self._perms))
            rng = np.random.Generator(np.random.PCG64([self.seed, epoch]))
            self._perms[epoch] = rng.permutation(self.n_sequences)
        return self._perms[epoch]

    def step_ids(self, step: int) -> np.ndarray:
        """Sequence ids of the global batch of optimizer step ``step`` (1-based)."""
        g = np.arange((step - 1) * self.global_batch, step * self.global_batch, dtype=np.int64)
        epoch, pos = np.divmod(g, self.n_sequences)
        out = np.empty_like(g)
        for e in np.unique(epoch):
            sel = epoch == e
            out[sel] = self.permutation(int(e))[pos[sel]]
        return out


class StepBatches:
    """The micro-batches of one rank for a step, as (inputs, targets) int64 tensors on ``device``."""

    def __init__(self, shards, order: DataOrder, rank: int, world: int, micro_batch: int, device: torch.device):
        self.shards, self.order = shards, order
        self.rank, self.world, self.micro_batch, self.device = rank, world, micro_batch, device
        self.local = order.global_batch // world
        self.accum = self.local // micro_batch

    def rank_ids(self, step: int) -> np.ndarray:
        ids = self.order.step_ids(step)
        return ids[self.rank * self.local : (self.rank + 1) * self.local]

    def __call__(self, step: int):
        ids = self.rank_ids(step)
        for m in range(self.accum):
            rows = np.stack([self.shards.sequence(int(i)) for i in ids[m * self.micro_batch : (m + 1) * self.micro_batch]])
            batch = torch.from_numpy(rows)
            if self.device.type == "cuda":
                batch = batch.pin_memory().to(self.device, non_blocking=True)
            yield batch[:, :-1], batch[:, 1:]
