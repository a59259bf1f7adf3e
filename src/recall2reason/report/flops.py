"""Inference-FLOP model behind Figure 5 (accuracy vs inference FLOPs).

Per forwarded token (Kaplan et al. 2020; the convention of the conversion values the paper
cites from Wang et al. 2025a), a model costs

    2 * N                    N = ``n_non_embedding_params`` of pretrain/<model>/config.json:
                             every weight used in a matmul, LM head included, input embedding
                             (a table lookup) excluded
  + 2 * 2 * d * ctx          per attention layer: q.k^T and attn.v over ``ctx`` cached positions
                             (d = n_heads * head_dim = d_model)

Recurrent mixers (Mamba, GLA, Gated DeltaNet) cost the same at every position: their
projections are in N; the state update itself (O(d * d_state) per layer and token, about
1-2 % of 2N for these models) is left out. A completion with a prompt of P tokens (BOS
included) and T generated tokens forwards the prompt and then every generated token but the
last, n = P + T - 1 positions, the i-th of which attends to ctx = i positions:

    FLOPs(P, T) = 2 N n + 2 d L_attn n (n + 1)        with L_attn attention layers.

The prompt is forwarded once per completion (no prefix sharing between the N samples), so
majority voting over k samples costs k times the mean per-completion FLOPs, averaged over all
sampled completions of the eval set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recall2reason.report.inputs import InputError


@dataclass(frozen=True)
class FlopModel:
    matmul_params: int  # N
    d_model: int
    n_attention_layers: int

    @classmethod
    def from_pretrain_config(cls, meta: dict, path: str = "config.json") -> "FlopModel":
        try:
            model = meta["model"]
            layers = model["layers"]
            return cls(int(meta["n_non_embedding_params"]), int(model["d_model"]), sum(t == "attention" for t in layers))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(
                f"{path}: needs n_non_embedding_params and model.d_model, model.layers for the FLOP model ({e!r})"
            ) from None

    def completion_flops(self, prompt_tokens, new_tokens) -> np.ndarray:
        """FLOPs to generate ``new_tokens`` after a ``prompt_tokens`` prompt (arrays broadcast)."""
        n = np.asarray(prompt_tokens, dtype=np.float64) + np.asarray(new_tokens, dtype=np.float64) - 1
        n = np.maximum(n, 0)
        return 2.0 * self.matmul_params * n + 2.0 * self.d_model * self.n_attention_layers * n * (n + 1)
