"""Training FLOPs per token and the peak used for MFU.

Convention (PaLM appendix B / nanoGPT), per trained token of a sequence of T tokens:

    6 * N                      N = non-embedding parameters *including the LM head*
                               (``HybridLM.num_params(non_embedding=True)``): 2 FLOPs per weight
                               forward, 4 backward
  + 12 * d * T  per attention layer   q.k^T and attn.v (2 * 2 * d * T forward, x3 with backward),
                               counted without the causal halving, d = n_heads * head_dim

Recurrent mixers cost only their projections (in N); their scan / chunked state update is not
counted, so hybrids' MFU is slightly understated. Recomputation is never counted (MFU, not HFU).
The peak is the dense bf16 datasheet figure of the device (H100 SXM: 989.4 TFLOP/s; H200 uses the
same Hopper SXM tensor cores and clocks: 989.4) unless ``train.peak_tflops`` overrides it.
"""

from __future__ import annotations

# dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the NVIDIA datasheets
PEAK_BF16_TFLOPS = {
    "H200": 989.4,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.4,  # SXM
    "GH200": 989.4,
    "A100": 312.0,
    "L40S": 362.05,
    "A10G": 70.0,
    "RTX 4090": 165.2,
}


def train_flops_per_token(n_non_embedding_params: int, d_attn: int, n_attention_layers: int, seq_len: int) -> float:
    return 6.0 * n_non_embedding_params + 12.0 * d_attn * seq_len * n_attention_layers


def model_flops_per_token(model, seq_len: int) -> float:
    cfg = model.cfg
    n_attn = sum(t == "attention" for t in cfg.layers)
    return train_flops_per_token(model.num_params(non_embedding=True), cfg.n_heads * cfg.head_dim, n_attn, seq_len)


def peak_flops(device, override_tflops: float | None = None) -> float | None:
    """Peak FLOP/s of one device, or None when unknown (CPU): MFU is then not reported."""
    if override_tflops is not None:
        return override_tflops * 1e12
    import torch

    if getattr(device, "type", str(device)) != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS.items():  # ordered: specific names before generic ones
        if key in name:
            return tflops * 1e12
    return None
