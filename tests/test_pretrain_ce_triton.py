"""The one-pass cross-entropy kernel (pretrain.ce_triton) against the PyTorch expression it
replaces, in Triton's CPU interpreter: per-row losses, the gradient written over the logits."""

from __future__ import annotations

import os

import pytest
import torch

pytest.importorskip("triton")
# tests/conftest.py sets TRITON_INTERPRET=1 on machines without CUDA, before triton is imported
assert torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1", "conftest did not enable Triton's interpreter"
from recall2reason.pretrain.ce_triton import MAX_VOCAB, cross_entropy_rows_  # noqa: E402
from recall2reason.pretrain.loss import KERNEL_MAX_VOCAB  # noqa: E402

DEV = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda"


@pytest.mark.parametrize("chunk", [0, 512], ids=["whole-row", "streamed"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_rows_match_the_pytorch_softmax(dtype, chunk, monkeypatch):
    from recall2reason.pretrain import ce_triton

    monkeypatch.setattr(ce_triton, "CHUNK", chunk)  # 512: six pieces, the last one partial
    torch.manual_seed(0)
    N, V, inv_n = 7, 3001, 1 / 50  # V not a power of two: the padding columns must not count
    logits = (torch.randn(N, V, device=DEV) * 4).to(dtype)
    t = torch.randint(0, V, (N,), device=DEV)
    t[0], t[1] = 0, V - 1  # first and last column
    z = logits.float()
    lse = torch.logsumexp(z, -1)
    want_loss = lse - z.gather(1, t[:, None])[:, 0]
    want_g = ((torch.softmax(z, -1) - torch.nn.functional.one_hot(t, V)) * inv_n).to(dtype)
    got = logits.clone()
    loss = cross_entropy_rows_(got, t, inv_n)
    assert loss.dtype == torch.float32 and loss.shape == (N,)
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-5)
    tol = 1e-6 if dtype == torch.float32 else 1e-4  # bf16: one rounding of values below inv_n
    torch.testing.assert_close(got.float(), want_g.float(), rtol=0.01, atol=tol)


def test_strided_rows_and_refusals():
    torch.manual_seed(1)
    wide = torch.randn(4, 80, device=DEV)
    rows = wide[:, :64]  # row stride 80: a view, written in place
    t = torch.tensor([3, 0, 63, 10], device=DEV)
    want = torch.nn.functional.cross_entropy(rows, t, reduction="none")
    untouched = wide[:, 64:].clone()
    torch.testing.assert_close(cross_entropy_rows_(rows, t, 1.0), want, rtol=1e-5, atol=1e-6)
    assert torch.equal(wide[:, 64:], untouched)
    assert KERNEL_MAX_VOCAB == MAX_VOCAB
    with pytest.raises(ValueError, match="vocab"):
        cross_entropy_rows_(torch.zeros(2, 8, device=DEV).t(), torch.zeros(8, dtype=torch.long, device=DEV), 1.0)
