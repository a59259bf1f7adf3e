"""One decode step of FLA's ``fused_recurrent_gla`` (fla 0.6.0) as a torch custom op.

Called plainly from the sampler's compiled decode step, Dynamo traces into FLA's Python wrapper
(``fla/ops/common/fused_recurrent.py``), graph-breaks on its ``lru_cache``'d tiling helper and on
Triton's ``getenv_bool``, and spent about two minutes of CPU per GLA sampling job before the first
completion (benchmarks/reports/2026-12-07-gpu-smoke-h100-resumed.md). As a custom op the compiled
graph holds one opaque call, as ``sample/nucleus_triton.py`` does for the sampling kernel.

FLA is imported on the op's first call, so importing this module needs no FLA (the op's wiring is
tested on CPU with a stand-in); the layers call it inside their kernels path only.
"""

from __future__ import annotations

import torch


@torch.library.custom_op("recall2reason::gla_recurrent_step", mutates_args=("h",))
def gla_recurrent_step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gk: torch.Tensor,
                       h: torch.Tensor) -> torch.Tensor:
    """q, k, gk (B, T, H, dk), v (B, T, H, dv), h (B, H, dk, dv) fp32, updated in place to the state
    after the T tokens -> o (B, T, H, dv) in q's dtype. FLA's default scale, 1 / sqrt(dk)."""
    from fla.ops.gla import fused_recurrent_gla

    o, h_new = fused_recurrent_gla(q=q, k=k, v=v, gk=gk, initial_state=h, output_final_state=True)
    h.copy_(h_new)
    return o


@gla_recurrent_step.register_fake
def _(q, k, v, gk, h):
    return v.new_empty(v.shape, dtype=q.dtype)
