"""Per-head RMSNorm (optionally gated) with FLA's ``RMSNorm`` / ``FusedRMSNormGated`` parameter layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACT = {"swish": F.silu, "silu": F.silu, "relu": F.relu, "sigmoid": torch.sigmoid}


class HeadRMSNorm(nn.Module):
    """rmsnorm(x) * weight over the last dim, in fp32; with ``gate``: times act(gate) (FLA's fused
    norm-gate). Only ``weight`` is a parameter, as in FLA (elementwise_affine, no bias)."""

    def __init__(self, dim: int, eps: float, activation: str = "swish"):
        super().__init__()
        self.eps, self.activation = eps, activation
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
        y = F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps)
        if gate is not None:
            y = y * ACT[self.activation](gate.float())
        return y.to(x.dtype)
