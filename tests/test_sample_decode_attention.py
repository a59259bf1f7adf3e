"""The length-aware decode attention kernel against the masked reference (Triton's CPU interpreter)."""

from __future__ import annotations

import os

import pytest
import torch

from recall2reason.models.ops.decode_attention import DEFAULT_CONFIG, decode_attention_reference


def test_reference_matches_masked_sdpa():
    torch.manual_seed(0)
    B, H, Hkv, L, D = 3, 4, 2, 40, 8
    q, k, v = torch.randn(B, H, D), torch.randn(B, Hkv, L, D), torch.randn(B, Hkv, L, D)
    pos = torch.tensor([0, 17, L - 1])
    mask = (torch.arange(L)[None, :] <= pos[:, None])[:, None, None, :]
    want = torch.nn.functional.scaled_dot_product_attention(q[:, :, None], k, v, attn_mask=mask, enable_gqa=True)[:, :, 0]
    assert torch.allclose(decode_attention_reference(q, k, v, pos), want, atol=1e-5)


def test_triton_kernel_in_interpreter():
    pytest.importorskip("triton")
    # tests/conftest.py sets TRITON_INTERPRET=1 on machines without CUDA, before triton is imported
    assert torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1", "conftest did not enable Triton's interpreter"
    from recall2reason.models.ops.decode_attention import decode_attention

    dev = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"
    torch.manual_seed(1)
    # the default, and chunks read in several blocks (online softmax across blocks, a partial last block)
    for cfg in (DEFAULT_CONFIG, {"SPLIT": 64, "BLOCK": 16, "num_stages": 2}):
        split = cfg["SPLIT"]
        for B, H, Hkv, L, D in [(3, 4, 2, 2 * split + 44, 16), (4, 6, 6, split, 32), (4, 2, 1, split + 7, 16)]:
            q, k, v = (torch.randn(*shape, device=dev) for shape in ((B, H, D), (B, Hkv, L, D), (B, Hkv, L, D)))
            pos = torch.tensor([0, L - 1, split, split - 1], device=dev)[:B]  # first key only, all keys, chunk edges
            if L == split + 7:
                pos = torch.tensor([split + 2, 16, 17, 5], device=dev)  # block edges of the second config
            got = decode_attention(q, k, v, pos, config=cfg)
            assert torch.allclose(got, decode_attention_reference(q, k, v, pos), atol=1e-5)
