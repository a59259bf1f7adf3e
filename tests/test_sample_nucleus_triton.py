"""The sort-free Triton nucleus sampler against the sort-based reference (Triton's CPU interpreter)."""

from __future__ import annotations

import os

import pytest
import torch

from recall2reason.sample import nucleus_triton
from recall2reason.sample.nucleus_triton import sample_next_triton
from recall2reason.sample.sampling import nucleus_mask, sample_next

pytest.importorskip("triton")
# tests/conftest.py sets TRITON_INTERPRET=1 on machines without CUDA, before triton is imported
assert torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1", "conftest did not enable Triton's interpreter"

DEV = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
TOP_PS = [0.1, 0.5, 0.9, 0.99, 1.0]
TEMPS = [0.5, 0.8, 1.0]


def make_logits(kind, B, V, gen):
    if kind == "random":
        return torch.randn(B, V, generator=gen) * 2
    if kind == "peaked":  # a handful of dominant tokens at random places over a noisy floor
        x = torch.randn(B, V, generator=gen)
        top = torch.randint(0, V, (B, 6), generator=gen)
        return x.scatter_add(1, top, torch.randn(B, 6, generator=gen) * 2 + 9)
    if kind == "flat":  # every probability tied
        return torch.zeros(B, V)
    if kind == "ties":  # few distinct values: large tie groups straddle the nucleus edge
        return torch.randint(0, 5, (B, V), generator=gen).float() * 0.7
    raise ValueError(kind)


# V not a multiple of the block (masked tails); one block per row, and several
CASES = [("random", 1500, None), ("peaked", 2045, None), ("flat", 2048, None), ("ties", 1000, None),
         ("random", 300, {"BLOCK": 64}), ("ties", 200, {"BLOCK": 32}), ("peaked", 1000, {"BLOCK": 128})]


@pytest.mark.parametrize("kind,V,config", CASES)
def test_matches_sort_reference(kind, V, config):
    gen = torch.Generator().manual_seed(V)
    B = 16 if DEV == "cuda" else 8  # the interpreter runs one program per row: few rows there
    rows = mismatched = 0
    for dtype in (torch.float32, torch.bfloat16):
        for i, top_p in enumerate(TOP_PS):
            temperature = TEMPS[(i + (dtype == torch.bfloat16)) % len(TEMPS)]
            logits = make_logits(kind, B, V, gen).to(dtype)
            keys = torch.randint(0, 2**32, (B,), generator=gen)
            steps = torch.randint(0, 10_000, (B,), generator=gen)
            want = sample_next(logits, keys, steps, temperature, top_p)
            got = sample_next_triton(logits.to(DEV), keys.to(DEV), steps.to(DEV), temperature, top_p,
                                     config=config).cpu()
            kept = nucleus_mask(torch.softmax(logits.float() / temperature, -1), top_p)
            assert bool(kept.gather(1, got[:, None]).all()), ("sampled a token outside the nucleus", kind, top_p)
            rows += B
            mismatched += int((got != want).sum())
            assert want.unique().numel() > 1  # the draws vary, so agreement is not a constant
    # exact up to the last bit of a log or of a double sum (module docstring): none seen on CPU
    assert mismatched <= 0.005 * rows, (kind, mismatched, rows)


def test_edge_cases():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(8, 1000, generator=gen) * 3
    keys = torch.arange(8)
    # tiny top_p keeps exactly the top token; greedy is argmax
    assert torch.equal(sample_next_triton(logits.to(DEV), keys.to(DEV), keys.to(DEV), 1.0, 1e-6).cpu(),
                       logits.argmax(-1))
    assert torch.equal(sample_next_triton(logits.to(DEV), keys.to(DEV), keys.to(DEV), 0.0, 0.9).cpu(),
                       logits.argmax(-1))
    # tiny rows (V = 1 and 3: one-element and padded blocks)
    for V in (1, 3):
        small = torch.randn(4, V, generator=gen)
        for top_p in (0.5, 1.0):
            got = sample_next_triton(small.to(DEV), keys[:4].to(DEV), keys[:4].to(DEV), 1.0, top_p)
            assert torch.equal(got.cpu(), sample_next(small, keys[:4], keys[:4], 1.0, top_p))
    with pytest.raises(ValueError):
        sample_next_triton(logits.to(DEV), keys.to(DEV), keys.to(DEV), 1.0, 0.0)


def test_launch_configuration(monkeypatch):
    """One program per row; the default block, a config override, rows shorter than a block (one
    block of the next power of two), and no nucleus."""
    launched = []
    sample_next_triton(torch.zeros(1, 2, device=DEV), torch.zeros(1, dtype=torch.int64, device=DEV),
                       torch.zeros(1, dtype=torch.int64, device=DEV), 1.0, 0.5)  # builds the kernels

    class Spy:
        def __init__(self, kernel):
            self.kernel = kernel

        def __getitem__(self, grid):
            def run(*args, **kwargs):
                launched.append((grid, kwargs))
                return self.kernel[grid](*args, **kwargs)
            return run

    monkeypatch.setattr(nucleus_triton, "_kernels", {k: Spy(v) for k, v in nucleus_triton._kernels.items()})
    gen = torch.Generator().manual_seed(3)
    keys = torch.arange(3)
    default = nucleus_triton.CONFIG
    for V, top_p, config, want in [
        (5000, 0.9, None, default),
        (300, 0.9, {"BLOCK": 64, "num_warps": 2}, {"BLOCK": 64, "num_warps": 2}),
        (100, 0.9, None, {**default, "BLOCK": 128}),
        (100, 1.0, {"BLOCK": 16}, {**default, "BLOCK": 16}),
    ]:
        logits = torch.randn(3, V, generator=gen) * 2
        launched.clear()
        got = sample_next_triton(logits.to(DEV), keys.to(DEV), keys.to(DEV), 0.8, top_p, config=config)
        assert len(launched) == 1 and launched[0][0] == (3,)
        assert {k: launched[0][1][k] for k in want} == want, (V, config)
        assert launched[0][1]["NUCLEUS"] is (top_p < 1.0)
        assert torch.equal(got.cpu(), sample_next(logits, keys, keys, 0.8, top_p))


def test_samples_follow_the_renormalised_nucleus():
    probs = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    logits = probs.log()[None].expand(400, -1).contiguous()
    keys = torch.arange(400)
    steps = torch.zeros_like(keys)
    want = sample_next(logits, keys, steps, 1.0, 0.7)  # the reference follows the renormalised nucleus
    assert set(want.tolist()) == {0, 1, 2}
    for t in range(3):
        assert abs((want == t).float().mean().item() - probs[t].item() / 0.8) < 0.08
    # and the kernel draws exactly its tokens (the interpreter runs one program per row: 100 rows);
    # top_p 0.7 rejects the race's first winner whenever it is token 3, 4 or 5 (20 % of rows)
    n = 400 if DEV == "cuda" else 100
    toks = sample_next_triton(logits[:n].to(DEV), keys[:n].to(DEV), steps[:n].to(DEV), 1.0, 0.7).cpu()
    assert set(toks.tolist()) == {0, 1, 2}
    assert torch.equal(toks, want[:n])
    unrestricted = sample_next(logits[:n], keys[:n], steps[:n], 1.0, 1.0)
    assert (unrestricted > 2).any(), "no row exercised the rejection loop"
