"""The sort-free Triton nucleus sampler against the sort-based reference (Triton's CPU interpreter)."""

from __future__ import annotations

import os

import pytest
import torch

from recall2reason.sample import nucleus_triton
from recall2reason.sample.nucleus_triton import kernel_variant, nucleus_mask_triton, sample_next_triton
from recall2reason.sample.sampling import nucleus_mask, sample_next

pytest.importorskip("triton")
# tests/conftest.py sets TRITON_INTERPRET=1 on machines without CUDA, before triton is imported
assert torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1", "conftest did not enable Triton's interpreter"

DEV = "cuda" if torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
TOP_PS = [0.1, 0.5, 0.9, 0.99, 1.0]
TEMPS = [0.5, 0.8, 1.0]
VARIANTS = ["blocked", "registers"]  # forced through the config override


def reference_mask(logits, temperature, top_p):
    """The reference's kept set, scattered back to token-id order."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p >= 1.0:
        return torch.ones_like(probs, dtype=torch.bool)
    sp, order = probs.sort(dim=-1, descending=True, stable=True)
    return torch.zeros_like(probs, dtype=torch.bool).scatter(1, order, nucleus_mask(sp, top_p))


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


# V not a multiple of the kernel's block (masked tails) and even/odd sizes (exact tie boundaries)
CASES = [("random", 1500), ("peaked", 2045), ("flat", 2048), ("ties", 1000)]


# the register variant (the default for our vocabularies) on every case; the blocked one, which only
# runs rows over REGISTER_ROW_MAX and makes the same decisions, on two of them (interpreter time)
VARIANT_CASES = [(*case, "registers") for case in CASES] + [(*case, "blocked") for case in CASES if case[0] in ("random", "ties")]


@pytest.mark.parametrize("kind,V,variant", VARIANT_CASES)
def test_matches_sort_reference(kind, V, variant):
    config = {"variant": variant}
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
            want_mask = reference_mask(logits, temperature, top_p)
            got, got_mask = sample_next_triton(
                logits.to(DEV), keys.to(DEV), steps.to(DEV), temperature, top_p, return_mask=True, config=config)
            # the kept set is exact on every row
            assert torch.equal(got_mask.cpu(), want_mask), (kind, dtype, top_p, temperature)
            got = got.cpu()
            assert bool(want_mask.gather(1, got[:, None]).all()), "sampled a token outside the nucleus"
            rows += B
            mismatched += int((got != want).sum())
            if kind != "flat" or top_p < 1.0:  # the draws vary, so agreement is not a constant
                assert want.unique().numel() > 1
    # draws: exact up to a documented fp32 rounding of a prefix sum at a boundary (never seen on CPU)
    assert mismatched <= 0.005 * rows, (kind, mismatched, rows)


@pytest.mark.parametrize("variant", VARIANTS)
def test_nucleus_mask_api_and_edge_cases(variant):
    config = {"variant": variant}
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(8, 1000, generator=gen) * 3
    for top_p in (0.3, 0.95):
        mask = nucleus_mask_triton(logits.to(DEV), 0.8, top_p, config=config).cpu()
        assert torch.equal(mask, reference_mask(logits, 0.8, top_p))
        assert 0 < int(mask.sum()) < mask.numel()
    # tiny top_p keeps exactly the top token (the top token is always kept)
    mask = nucleus_mask_triton(logits.to(DEV), 1.0, 1e-6, config=config).cpu()
    assert torch.equal(mask.sum(-1), torch.ones(8, dtype=torch.int64))
    assert torch.equal(mask.float().argmax(-1), logits.argmax(-1))
    # flat row, top_p exactly at a tie boundary: the lower token ids are kept
    mask = nucleus_mask_triton(torch.zeros(2, 1000, device=DEV), 1.0, 0.25, config=config).cpu()
    assert torch.equal(mask, reference_mask(torch.zeros(2, 1000), 1.0, 0.25))
    # tiny rows (V = 1 and 3: one-element and padded register blocks)
    for V in (1, 3):
        small = torch.randn(4, V, generator=gen)
        keys = torch.arange(4)
        for top_p in (0.5, 1.0):
            got, got_mask = sample_next_triton(small.to(DEV), keys.to(DEV), keys.to(DEV), 1.0, top_p,
                                               return_mask=True, config=config)
            assert torch.equal(got.cpu(), sample_next(small, keys, keys, 1.0, top_p))
            assert torch.equal(got_mask.cpu(), reference_mask(small, 1.0, top_p))
    # greedy
    keys = torch.arange(8)
    assert torch.equal(sample_next_triton(logits.to(DEV), keys.to(DEV), keys.to(DEV), 0.0, 0.9, config=config).cpu(),
                       logits.argmax(-1))


def test_variant_choice(monkeypatch):
    """Rows up to REGISTER_ROW_MAX tokens run the register-resident kernel, longer ones the blocked
    one; the config override forces either, and a blocked-only key (BLOCK, SBLOCK) means blocked."""
    limit = nucleus_triton.REGISTER_ROW_MAX
    assert limit >= 32000  # our models' vocabulary is held in registers
    assert kernel_variant(32000) == kernel_variant(limit) == "registers"
    assert kernel_variant(limit + 1) == "blocked"
    assert kernel_variant(100, {"variant": "blocked"}) == "blocked"
    assert kernel_variant(10 * limit, {"variant": "registers"}) == "registers"
    assert kernel_variant(100, {"BLOCK": 2048, "SBLOCK": 1024, "K": 8, "num_warps": 8}) == "blocked"
    assert kernel_variant(100, {"K": 4}) == "registers"
    with pytest.raises(ValueError):
        kernel_variant(100, {"variant": "sorted"})

    # what _launch actually runs, with a small limit so that both sides of it are cheap
    nucleus_triton._launch(torch.zeros(1, 2, device=DEV), torch.zeros(1, device=DEV), 1.0, 0.5, False)
    launched = []

    class Spy:
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, grid):
            def run(*args, **kwargs):
                launched.append((self.name, kwargs))
                return self.kernel[grid](*args, **kwargs)
            return run

    monkeypatch.setattr(nucleus_triton, "_kernels", {k: Spy(k, v) for k, v in nucleus_triton._kernels.items()})
    monkeypatch.setattr(nucleus_triton, "REGISTER_ROW_MAX", 64)
    gen = torch.Generator().manual_seed(3)
    keys = torch.arange(2)
    for V, config, variant, params in [
        (64, None, "registers", {**nucleus_triton.REGISTER_CONFIG, "VPAD": 64}),
        (65, None, "blocked", nucleus_triton.CONFIG),
        (40, {"BLOCK": 16, "SBLOCK": 8}, "blocked", {**nucleus_triton.CONFIG, "BLOCK": 16, "SBLOCK": 8}),
        (100, {"variant": "registers", "K": 4, "BLOCK": 16}, "registers",
         {**nucleus_triton.REGISTER_CONFIG, "K": 4, "VPAD": 128}),
    ]:
        logits = torch.randn(2, V, generator=gen) * 2
        launched.clear()
        got = sample_next_triton(logits.to(DEV), keys.to(DEV), keys.to(DEV), 0.8, 0.9, config=config)
        assert [name for name, _ in launched] == [variant], (V, config)
        assert {k: launched[0][1][k] for k in params} == params, (V, config)
        forbidden = {"variant"} | ({"BLOCK", "SBLOCK"} if variant == "registers" else set())
        assert not set(launched[0][1]) & forbidden, launched[0][1]
        assert torch.equal(got.cpu(), sample_next(logits, keys, keys, 0.8, 0.9))


def test_samples_follow_the_renormalised_nucleus():
    probs = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    logits = probs.log()[None].expand(400, -1).contiguous()
    keys = torch.arange(400)
    steps = torch.zeros_like(keys)
    want = sample_next(logits, keys, steps, 1.0, 0.7)  # the reference follows the renormalised nucleus
    assert set(want.tolist()) == {0, 1, 2}
    for t in range(3):
        assert abs((want == t).float().mean().item() - probs[t].item() / 0.8) < 0.08
    # and the kernel draws exactly its tokens (the interpreter runs one program per row: 100 rows)
    n = 400 if DEV == "cuda" else 100
    toks = sample_next_triton(logits[:n].to(DEV), keys[:n].to(DEV), steps[:n].to(DEV), 1.0, 0.7,
                              config={"variant": "registers"}).cpu()  # the default variant
    assert set(toks.tolist()) == {0, 1, 2}
    assert torch.equal(toks, want[:n])
