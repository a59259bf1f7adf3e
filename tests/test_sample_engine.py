"""Sample engine on CPU: greedy == full-forward argmax for every mixer, seeded sampling independent of
batch composition, exact nucleus, counter-based RNG."""

from __future__ import annotations

import itertools

import pytest
import torch

from recall2reason.models import ModelConfig, build_model
from recall2reason.models.layers import MIXERS, get_mixer
from recall2reason.sample.engine import Engine, Request
from recall2reason.sample.rng import hash32, open_unit, row_key, token_uniforms
from recall2reason.sample.sampling import mass_above, nucleus_mask, sample_next

get_mixer("attention")  # import every mixer module so MIXERS is complete
V = 64


def tiny_model(layers: list[str], seed: int = 0, dtype=torch.float64):
    torch.manual_seed(seed)
    cfg = ModelConfig(d_model=32, n_layers=len(layers), n_heads=4, n_kv_heads=2, mlp_ratio=4, vocab_size=V,
                      max_seq_len=256, layers=layers, backend="reference", init_std=0.2)
    return build_model(cfg).to(dtype).eval()


# every registered mixer alone and interleaved with attention (the hybrids' pattern)
ARCHS = {f"{m}": [m, m] for m in sorted(MIXERS)}
ARCHS.update({f"{m}+attention": [m, "attention", m] for m in sorted(MIXERS) if m != "attention"})


def run_engine(model, reqs, *, batch_size, max_new=12, temperature=0.8, top_p=0.9, eos=None, ignore_eos=False):
    eng = Engine(model, batch_size=batch_size, max_len=max(len(r.prompt) for r in reqs) + max_new,
                 max_new_tokens=max_new, eos_id=V - 1 if eos is None else eos, temperature=temperature,
                 top_p=top_p, ignore_eos=ignore_eos)
    return {c.key: c for c in eng.generate(reqs)}


def prompts(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, V - 1, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist() for _ in range(n)]


# -- rng ------------------------------------------------------------------------------------------
def test_hash32_tensor_matches_python_ints_and_is_a_bijection_sample():
    xs = list(range(0, 1 << 32, 9973 * 37))[:5000] + [0, 1, (1 << 32) - 1]
    t = hash32(torch.tensor(xs, dtype=torch.long)).tolist()
    assert t == [hash32(x) for x in xs]
    assert len(set(t)) == len(set(xs))  # distinct inputs -> distinct outputs
    assert all(0 <= v < (1 << 32) for v in t)


def test_token_uniforms_are_uniform_and_depend_only_on_key_step_and_token():
    keys = torch.tensor([row_key(s) for s in range(400)])
    u = token_uniforms(keys, torch.full_like(keys, 7), 50)
    assert u.shape == (400, 50) and u.dtype == torch.float32
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean().item() - 0.5) < 0.01
    counts = torch.histc(u, bins=10, min=0, max=1)
    assert counts.min() > 1800 and counts.max() < 2200
    # same (key, step) -> same numbers, alone or in any batch, and a prefix of a longer vocabulary
    assert torch.equal(token_uniforms(keys[5:6], torch.tensor([7]), 50)[0], u[5])
    assert torch.equal(token_uniforms(keys[5:6], torch.tensor([7]), 80)[0, :50], u[5])
    assert not torch.equal(token_uniforms(keys[5:6], torch.tensor([8]), 50)[0], u[5])
    # tokens of one row, and rows of one step, are not copies of each other
    assert u[0].unique().numel() == 50 and u[:, 0].unique().numel() > 390
    # the extreme hash values stay strictly inside (0, 1), so -log u is finite and positive
    ends = open_unit(torch.tensor([0, (1 << 32) - 1]))
    assert 0 < ends[0] < 1e-6 and 1 - 1e-6 < ends[1] < 1
    assert torch.isfinite(-ends.log()).all() and (-ends.log() > 0).all()


# -- sampling -------------------------------------------------------------------------------------
def test_top_p_keeps_exactly_the_nucleus_and_renormalises():
    probs = torch.tensor([0.05, 0.4, 0.02, 0.25, 0.2, 0.08])  # sorted: 1 .4, 3 .25, 4 .2, 5 .08, 0 .05, 2 .02
    logits = probs.log()[None]
    # thresholds away from the exact cumulative sums (.4, .65, .85, .93, .98), where float rounding decides
    cases = {0.3: {1}, 0.39: {1}, 0.41: {1, 3}, 0.64: {1, 3}, 0.66: {1, 3, 4}, 0.9: {1, 3, 4, 5}, 0.95: {1, 3, 4, 5, 0},
             0.99: set(range(6)), 1.0: set(range(6))}
    n = 20000
    keys = torch.tensor([row_key(s) for s in range(n)])
    for top_p, nucleus in cases.items():
        toks = sample_next(logits.expand(n, -1), keys, torch.zeros_like(keys), 1.0, top_p)
        seen = set(toks.tolist())
        assert seen == nucleus, (top_p, seen, nucleus)
        mass = probs[sorted(nucleus)].sum()
        for t in nucleus:  # frequencies follow the renormalised nucleus
            assert abs((toks == t).float().mean().item() - probs[t].item() / mass.item()) < 0.015, (top_p, t)
    assert nucleus_mask(probs[None], 0.9).tolist() == [[False, True, False, True, True, True]]


def test_nucleus_keeps_or_drops_equal_probabilities_together():
    probs = torch.tensor([[0.3, 0.2, 0.3, 0.2]])
    assert nucleus_mask(probs, 0.5).tolist() == [[True, False, True, False]]  # mass above the 0.2s: 0.6
    assert nucleus_mask(probs, 0.65).tolist() == [[True, True, True, True]]
    flat = torch.full((2, 10), 0.1)
    assert nucleus_mask(flat, 0.25).all()  # nothing is more probable than anything else
    assert nucleus_mask(flat, 1e-6).all()


def test_mass_above_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randint(0, 6, (5, 40), generator=g).float() * 0.5 + torch.randn(5, 40, generator=g)
                          * (torch.arange(5) > 2)[:, None], -1)  # rows 0-2 have large tie groups
    brute = ((probs[:, None, :] > probs[:, :, None]) * probs[:, None, :].double()).sum(-1)
    assert torch.allclose(mass_above(probs), brute, rtol=0, atol=1e-12)


def test_temperature_zero_is_argmax_and_temperature_sharpens():
    logits = torch.randn(50, V, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    keys = torch.arange(50)
    assert torch.equal(sample_next(logits, keys, keys, 0.0, 0.9), logits.argmax(-1))
    n = 4000
    k = torch.tensor([row_key(s) for s in range(n)])
    row = logits[:1].expand(n, -1)
    hot = (sample_next(row, k, k * 0, 2.0, 1.0) == logits[0].argmax()).float().mean()
    cold = (sample_next(row, k, k * 0, 0.3, 1.0) == logits[0].argmax()).float().mean()
    assert cold > hot


# -- engine ---------------------------------------------------------------------------------------
def greedy_reference(model, prompt, max_new):
    ids = list(prompt)
    for _ in range(max_new):
        ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("arch", sorted(ARCHS))
@torch.inference_mode()
def test_greedy_equals_full_forward_argmax(arch):
    model = tiny_model(ARCHS[arch])
    ps = prompts(3)
    reqs = [Request(i, p, seed=i) for i, p in enumerate(ps)]
    got = run_engine(model, reqs, batch_size=2, max_new=8, temperature=0.0, ignore_eos=True)
    for i, p in enumerate(ps):
        assert got[i].tokens == greedy_reference(model, p, 8), (arch, i)
        assert got[i].finish_reason == "length"


def sampled_reference(model, prompt, seed, max_new, temperature, top_p, eos):
    """One sequence at a time, full forward each step, same counter-based draws."""
    key = torch.tensor([row_key(seed)])
    ids = list(prompt)
    for step in range(max_new):
        logits = model(torch.tensor([ids]))[:, -1]
        t = int(sample_next(logits, key, torch.tensor([step]), temperature, top_p))
        ids.append(t)
        if t == eos:
            break
    return ids[len(prompt):]


@pytest.mark.parametrize("arch", sorted(ARCHS))
@torch.inference_mode()
def test_seeded_sampling_independent_of_batch_composition(arch):
    model = tiny_model(ARCHS[arch], seed=3)
    ps = prompts(3, seed=2)
    # 3 prompts x 3 samples; same prompt consecutively (shared prefill) and interleaved orders
    reqs = [Request((i, j), p, seed=1000 * i + j) for i, p in enumerate(ps) for j in range(3)]
    # EOS: a token that some completions draw and others do not (found with EOS ignored), so some
    # rows stop early, slots get refilled, and others run to the length limit
    probe = run_engine(model, reqs, batch_size=9, max_new=12, temperature=1.0, top_p=0.9, ignore_eos=True)
    rows_with = {t: sum(t in c.tokens for c in probe.values()) for t in range(V)}
    eos = min(rows_with, key=lambda t: abs(rows_with[t] - len(reqs) / 2))
    runs = []
    for bs, order in [(1, reqs), (4, reqs[::-1]), (9, reqs[1::2] + reqs[::2])]:
        out = run_engine(model, order, batch_size=bs, max_new=12, eos=eos, temperature=1.0, top_p=0.9)
        runs.append({k: (c.tokens, c.finish_reason) for k, c in out.items()})
    for r in runs[1:]:
        assert r == runs[0]
    reasons = {v[1] for v in runs[0].values()}
    assert reasons == {"eos", "length"}, reasons  # both stop paths exercised
    for (i, j), (toks, reason) in list(runs[0].items())[:2]:  # and equal to the naive loop
        ref = sampled_reference(model, ps[i], 1000 * i + j, 12, 1.0, 0.9, eos)
        assert toks + ([eos] if reason == "eos" else []) == ref


@torch.inference_mode()
def test_engine_edge_cases():
    model = tiny_model(["attention"], dtype=torch.float32)
    reqs = [Request(i, [1, 2, 3], seed=i) for i in range(5)]
    one = run_engine(model, reqs, batch_size=2, max_new=1)
    assert all(len(c.tokens) + (c.finish_reason == "eos") == 1 for c in one.values())
    full = run_engine(model, reqs, batch_size=8, max_new=9, ignore_eos=True)
    assert all(len(c.tokens) == 9 and c.n_generated == 9 and c.finish_reason == "length" for c in full.values())
    # an EOS-heavy model: every completion that stops on EOS excludes it from the tokens
    with torch.no_grad():
        model.lm_head.weight[7] += 3 * model.final_norm(model.embed.weight).mean(0)
    out = run_engine(model, reqs, batch_size=2, max_new=30, eos=7)
    for c in out.values():
        assert 7 not in c.tokens
        assert (c.finish_reason == "eos") == (c.n_generated == len(c.tokens) + 1)
    with pytest.raises(ValueError, match="max_len"):
        eng = Engine(model, batch_size=2, max_len=5, max_new_tokens=4, eos_id=7, temperature=1, top_p=1)
        list(eng.generate([Request(0, [1, 2], 0)]))


def test_archs_cover_every_registered_mixer():
    assert {m for a in ARCHS.values() for m in a} == set(MIXERS)
    assert list(itertools.chain(ARCHS))  # non-empty


def test_step_compiled_reports_what_runs():
    # CPU: the compile option is CUDA-only, so the step runs eager whatever was asked
    model = tiny_model(["attention"], dtype=torch.float32)
    for compile_step in (False, True):
        eng = Engine(model, batch_size=2, max_len=16, max_new_tokens=4, eos_id=2, temperature=1, top_p=1,
                     compile_step=compile_step)
        assert eng.step_compiled is False


# -- decode-attention choice ------------------------------------------------------------------------
def test_engine_passes_its_decode_attention_to_every_step_without_touching_the_layers(monkeypatch):
    # the sampler's kernel choice is an argument of model.step, not an attribute written into layers
    model = tiny_model(["attention", "gla"])
    before = {n: dict(vars(m)) for n, m in model.named_modules()}
    seen = []
    step = model.step

    def spy(tokens, states, pos, decode_attention="unset"):
        seen.append(decode_attention)
        return step(tokens, states, pos, decode_attention=decode_attention)

    monkeypatch.setattr(model, "step", spy)
    eng = Engine(model, batch_size=2, max_len=20, max_new_tokens=4, eos_id=V - 1, temperature=0.8, top_p=0.9,
                 attention_kernel=True)
    assert eng.decode_attention == "sdpa"  # the Triton kernel is CUDA-only: CPU keeps masked SDPA
    list(eng.generate([Request(("p", 0), [1, 2, 3], seed=0)]))
    assert seen and set(seen) == {"sdpa"}
    assert {n: dict(vars(m)) for n, m in model.named_modules() if n} == {n: v for n, v in before.items() if n}
