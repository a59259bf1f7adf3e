"""CPU tests of Mamba's ablation knobs (Appendix A.3): ``d_xb`` (x projected at d_xb and shared
across d_inner) and ``dt_limit`` (Δ clamped after the softplus). The defaults must be today's
Mamba1 block bit for bit; the new paths are checked against a token loop written here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import fakes.mamba_ssm

from recall2reason.common.cfg import ConfigError
from recall2reason.models import ModelConfig, build_model
from recall2reason.models.layers import get_mixer
from recall2reason.models.ops import conv as conv_ops
from recall2reason.models.ops.selective_scan import selective_scan

D = 32


def mamba(seed=0, **kw):
    cfg = ModelConfig.from_dict(dict(d_model=D, n_layers=1, n_heads=4, n_kv_heads=4, vocab_size=64, max_seq_len=128,
                                     layers=["mamba"], backend="reference", mamba={"dt_rank": 4, "d_state": 4, **kw}))
    torch.manual_seed(seed)
    return get_mixer("mamba")(cfg, 0, "reference")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def todays_forward(m, u):
    """The Mamba1 forward as it stood before d_xb / dt_limit (mamba-ssm's non-fused path)."""
    x, z = m.in_proj(u).chunk(2, dim=-1)
    x = conv_ops.causal_conv1d(x, m.conv1d.weight, m.conv1d.bias, "silu")
    dt, B, C = m.x_proj(x).split([m.dt_rank, m.d_state, m.d_state], dim=-1)
    dt = F.linear(dt, m.dt_proj.weight)
    y = selective_scan(x.transpose(1, 2), dt.transpose(1, 2), -torch.exp(m.A_log.float()), B.transpose(1, 2),
                       C.transpose(1, 2), m.D.float(), z=z.transpose(1, 2), delta_bias=m.dt_proj.bias.float(),
                       delta_softplus=True)
    return m.out_proj(y.transpose(1, 2))


def loop_forward(m, u, repeat, lo=0.0, hi=float("inf")):
    """Token by token from the docstring: x_rep[i] = x[(i // (N r)) N + i % N] (heads of N = d_state)."""
    d_inner, N = m.d_inner, m.d_state
    x, z = m.in_proj(u).split([m.d_xb, d_inner], dim=-1)
    x = conv_ops.causal_conv1d(x, m.conv1d.weight, m.conv1d.bias, "silu")
    dt, B, C = m.x_proj(x).split([m.dt_rank, N, N], dim=-1)
    delta = F.softplus(F.linear(dt, m.dt_proj.weight, m.dt_proj.bias)).clamp(lo, hi)
    src = torch.tensor([(i // (N * repeat)) * N + i % N for i in range(d_inner)])
    xr = x[..., src]
    A = -torch.exp(m.A_log)
    h = torch.zeros(u.shape[0], d_inner, N)
    ys = []
    for t in range(u.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + delta[:, t, :, None] * B[:, t, None, :] * xr[:, t, :, None]
        ys.append((h * C[:, t, None, :]).sum(-1) + m.D * xr[:, t])
    y = torch.stack(ys, 1) * F.silu(z)
    return m.out_proj(y)


def test_d_xb_equal_to_d_inner_is_todays_block():
    today, same = mamba(), mamba(d_xb=D)
    assert same.repeat == 1 and same.dt_limit is None
    assert {k: v.shape for k, v in today.state_dict().items()} == {k: v.shape for k, v in same.state_dict().items()}
    assert all(torch.equal(a, b) for a, b in zip(today.state_dict().values(), same.state_dict().values()))
    u = torch.randn(2, 19, D)
    with torch.no_grad():
        assert torch.equal(today(u), same(u))
        assert torch.equal(today(u), todays_forward(today, u))  # bit for bit the pre-knob forward


def test_default_model_parameters_are_unchanged():
    # a whole hybrid with the defaults: the same parameter count and RNG stream as before the knobs
    cfg = dict(d_model=D, n_layers=2, n_heads=4, n_kv_heads=4, vocab_size=64, layers=["mamba", "attention"],
               backend="reference")
    torch.manual_seed(1)
    a = build_model(ModelConfig.from_dict(cfg))
    torch.manual_seed(1)
    b = build_model(ModelConfig.from_dict({**cfg, "mamba": {"d_xb": None, "dt_limit": None}}))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    # in_proj [x | z], conv, x_proj, dt_proj, A_log, D, out_proj at d_inner = d_model, d_state 16, dt_rank 32
    n = 64 * D + D * 4 + D + D * (32 + 32) + 32 * D + D + D * 16 + D + D * D
    assert sum(p.numel() for p in a.blocks[0].mixer.parameters()) == n


@pytest.mark.parametrize("d_xb, d_inner", [(8, 32), (16, 32), (8, 48)])
def test_d_xb_shares_x_heads_across_d_inner(d_xb, d_inner):
    m = mamba(d_xb=d_xb, d_inner=d_inner)
    sd = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert sd["in_proj.weight"] == (d_xb + d_inner, D) and sd["conv1d.weight"] == (d_xb, 1, 4)
    assert sd["x_proj.weight"] == (4 + 8, d_xb) and sd["dt_proj.weight"] == (d_inner, 4)
    assert sd["A_log"] == (d_inner, 4) and sd["out_proj.weight"] == (D, d_inner)
    u = torch.randn(2, 13, D)
    with torch.no_grad():
        torch.testing.assert_close(m(u), loop_forward(m, u, d_inner // d_xb), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("limit", [[0.05, 0.2], [0.5, None]])
def test_dt_limit_clamps_delta(limit):
    plain, clipped = mamba(), mamba(dt_limit=limit)
    clipped.load_state_dict(plain.state_dict())
    u = torch.randn(2, 11, D)
    x, _ = clipped.in_proj(u).split([clipped.d_xb, clipped.d_inner], -1)
    _, delta, _, _ = clipped._ssm_inputs(x)
    hi = limit[1] if limit[1] is not None else float("inf")
    assert delta.min() >= limit[0] and delta.max() <= hi
    with torch.no_grad():
        torch.testing.assert_close(clipped(u), loop_forward(clipped, u, 1, limit[0], hi), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(clipped(u), plain(u))  # init Δ lies in [1e-3, 0.1]: both limits bite
    loss = clipped(u).square().sum()
    loss.backward()
    assert clipped.dt_proj.bias.grad is not None and torch.isfinite(clipped.dt_proj.bias.grad).all()


@pytest.mark.parametrize("kw", [{"d_xb": 8}, {"dt_limit": [0.01, 0.05]}, {"d_xb": 16, "d_inner": 64, "dt_limit": [0.0, None]}])
def test_knobs_decode_like_forward(kw):
    m = mamba(**kw).eval()
    T, B = 17, 2
    u = torch.randn(B, T, D)
    with torch.no_grad():
        full = m(u)
        state = m.init_state(B, 32, u.device, u.dtype)
        assert state["conv"].shape[1] == m.d_xb
        torch.testing.assert_close(m.prefill(u[:1, :5], state, 0), full[:1, :5], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(m.prefill(u[1:, :3], state, 1), full[1:, :3], atol=1e-5, rtol=1e-4)
        pos = torch.tensor([5, 3])
        for _ in range(10):
            y = m.step(u[torch.arange(B), pos][:, None], state, pos)
            torch.testing.assert_close(y[:, 0], full[torch.arange(B), pos], atol=1e-5, rtol=1e-4)
            pos = pos + 1


@pytest.mark.parametrize("kw", [{}, {"dt_limit": [0.01, 0.05]}])
def test_kernels_decode_step_never_passes_mamba_ssm_a_missing_dt_bias(kw, monkeypatch):
    """Under dt_limit the bias and softplus are applied before the scan; the kernels' decode step must
    then hand mamba-ssm a zero dt_bias, not None, and still decode like the reference."""
    import sys
    import types

    fake = types.ModuleType("mamba_ssm.ops.triton.selective_state_update")
    fake.selective_state_update = fakes.mamba_ssm.selective_state_update
    for name in ("mamba_ssm", "mamba_ssm.ops", "mamba_ssm.ops.triton"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    ref = mamba(**kw).eval()
    ker = mamba(**kw).eval()
    ker.backend = "kernels"  # only step() is exercised: its conv falls back to PyTorch without causal-conv1d
    u = torch.randn(2, 6, D)
    with torch.no_grad():
        states = [m.init_state(2, 8, u.device, u.dtype) for m in (ref, ker)]
        pos = torch.zeros(2, dtype=torch.long)
        for t in range(6):
            y_ref, y_ker = (m.step(u[:, t:t + 1], s, pos) for m, s in zip((ref, ker), states))
            torch.testing.assert_close(y_ker, y_ref)
            pos = pos + 1


@pytest.mark.parametrize("kw, msg", [({"d_xb": 12}, "must divide"), ({"d_xb": 6, "d_state": 4}, "must divide"),
                                     ({"dt_limit": [0.2, 0.1]}, "dt_limit"), ({"dt_limit": [0.1]}, "dt_limit")])
def test_bad_knobs_are_config_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        mamba(**kw)
