"""CPU tests of the recurrent mixers (Mamba, GLA, Gated DeltaNet) and the hybrids built from them.

The chunked / parallel reference ops are checked against token-by-token loops written here from
the recurrences in their docstrings; layers against causality, step-wise decoding and each
other's backend; configs against the paper's 13 models.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from recall2reason.models import ModelConfig, build_model, load_model, resolve_backend, save_model
from recall2reason.models.layers import get_mixer
from recall2reason.models.layers.base import project
from recall2reason.models.model import SwiGLU
from recall2reason.models.ops.delta_rule import chunk_gated_delta_rule, l2norm
from recall2reason.models.ops.gla import chunk_gla
from recall2reason.models.ops.selective_scan import selective_scan
from recall2reason.study import expand_models

REPO = Path(__file__).resolve().parents[1]
RECURRENT = ("mamba", "gla", "gdn")


def tiny_cfg(layers, **kw) -> ModelConfig:
    d = dict(d_model=32, n_layers=len(layers), n_heads=4, n_kv_heads=4, vocab_size=64, max_seq_len=128,
             layers=list(layers), backend="reference", mamba={"dt_rank": None})
    d.update(kw)
    return ModelConfig.from_dict(d)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the CPU is shared; small ops are faster single-threaded anyway


# -- ops against token-by-token loops ----------------------------------------------------------

def loop_gla(q, k, v, g, h0):
    S, out = h0.clone(), []
    for t in range(q.shape[1]):
        S = S * g[:, t].exp()[..., None] + k[:, t, ..., None] * v[:, t, :, None, :]
        out.append((q[:, t, ..., None] * q.shape[-1] ** -0.5 * S).sum(-2))
    return torch.stack(out, 1), S


def loop_delta(q, k, v, g, beta, h0):
    S, out = h0.clone(), []
    for t in range(q.shape[1]):
        S = S * g[:, t].exp()[..., None, None]
        kt = k[:, t]
        v_new = beta[:, t, :, None] * (v[:, t] - (S * kt[..., None]).sum(-2))
        S = S + kt[..., None] * v_new[..., None, :]
        out.append((q[:, t, ..., None] * q.shape[-1] ** -0.5 * S).sum(-2))
    return torch.stack(out, 1), S


def loop_selective(u, delta, A, B, C, D, z, h0):
    h, ys = h0.clone(), []
    for t in range(u.shape[-1]):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    return torch.stack(ys, -1) * F.silu(z), h


@pytest.mark.parametrize("T", [5, 50])
def test_chunk_gla_matches_recurrence_values_and_grads(T):
    B, H, K, V = 2, 3, 8, 6
    q, k, v = torch.randn(B, T, H, K), torch.randn(B, T, H, K), torch.randn(B, T, H, V)
    g = F.logsigmoid(torch.randn(B, T, H, K) * 3)  # strong and weak decays
    h0 = torch.randn(B, H, K, V)
    ins = [t.double().requires_grad_() for t in (q, k, v, g, h0)]
    o, S = chunk_gla(*ins[:4], initial_state=ins[4], output_final_state=True)
    o_ref, S_ref = loop_gla(*ins)
    torch.testing.assert_close(o, o_ref)
    torch.testing.assert_close(S, S_ref)
    grads = torch.autograd.grad((o * o_ref.detach().cos()).sum() + S.sum(), ins)
    grads_ref = torch.autograd.grad((o_ref * o_ref.detach().cos()).sum() + S_ref.sum(), ins)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b)


def test_chunk_gla_is_stable_for_very_strong_decays():
    B, T, H, K = 1, 64, 2, 4
    q, k, v = torch.randn(B, T, H, K), torch.randn(B, T, H, K), torch.randn(B, T, H, K)
    g = torch.full((B, T, H, K), -60.0)  # exp(-cumsum) would overflow fp32 within a chunk
    o, _ = chunk_gla(q, k, v, g)
    assert torch.isfinite(o).all()
    torch.testing.assert_close(o, loop_gla(q, k, v, g, torch.zeros(B, H, K, K))[0])


@pytest.mark.parametrize("T", [7, 70])
def test_chunk_delta_rule_matches_recurrence_values_and_grads(T):
    B, H, K, V = 2, 2, 8, 6
    q, k, v = torch.randn(B, T, H, K), torch.randn(B, T, H, K), torch.randn(B, T, H, V)
    g, beta, h0 = F.logsigmoid(torch.randn(B, T, H) * 3), torch.rand(B, T, H), torch.randn(B, H, K, V)
    ins = [t.double().requires_grad_() for t in (q, k, v, g, beta, h0)]
    o, S = chunk_gated_delta_rule(*ins[:5], initial_state=ins[5], output_final_state=True, use_qk_l2norm=True,
                                  chunk_size=16)
    o_ref, S_ref = loop_delta(l2norm(ins[0]), l2norm(ins[1]), *ins[2:])
    torch.testing.assert_close(o, o_ref)
    torch.testing.assert_close(S, S_ref)
    grads = torch.autograd.grad(o.square().sum() + S.sum(), ins)
    grads_ref = torch.autograd.grad(o_ref.square().sum() + S_ref.sum(), ins)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("T,chunk", [(3, None), (45, None), (45, 1), (45, 64), (64, 16)])
def test_selective_scan_matches_recurrence_values_and_grads(T, chunk):
    b, d, n = 2, 5, 4
    u, dt, z = torch.randn(b, d, T), torch.randn(b, d, T), torch.randn(b, d, T)
    A, Bm, Cm, D = -torch.rand(d, n) * 4, torch.randn(b, n, T), torch.randn(b, n, T), torch.randn(d)
    bias, h0 = torch.randn(d), torch.randn(b, d, n)
    ins = [t.double().requires_grad_() for t in (u, dt, A, Bm, Cm, D, z, bias, h0)]
    y, last = selective_scan(*ins[:7], delta_bias=ins[7], delta_softplus=True, initial_state=ins[8],
                             return_last_state=True, chunk_size=chunk)
    delta = F.softplus(ins[1] + ins[7][:, None])
    y_ref, last_ref = loop_selective(ins[0], delta, *ins[2:7], ins[8])
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(last, last_ref)
    grads = torch.autograd.grad(y.square().sum() + last.sum(), ins)
    grads_ref = torch.autograd.grad(y_ref.square().sum() + last_ref.sum(), ins)
    for a, b_ in zip(grads, grads_ref):
        torch.testing.assert_close(a, b_)


# -- layers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", RECURRENT)
def test_mixer_shapes_and_causality(name):
    cfg = tiny_cfg([name])
    mixer = get_mixer(name)(cfg, 0, "reference")
    x = torch.randn(2, 40, 32)
    y = mixer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    x2 = x.clone()
    x2[:, 23:] = torch.randn(2, 17, 32)
    y2 = mixer(x2)
    torch.testing.assert_close(y2[:, :23], y[:, :23])
    assert (y2[:, 23:] - y[:, 23:]).abs().max() > 1e-3  # later outputs do see the change


@pytest.mark.parametrize("name", RECURRENT)
def test_mixer_prefill_and_step_equal_forward(name):
    cfg = tiny_cfg([name])
    mixer = get_mixer(name)(cfg, 0, "reference").eval()
    T, B = 30, 3
    x = torch.randn(B, T, 32)
    with torch.no_grad():
        full = mixer(x)
        state = mixer.init_state(B, 64, x.device, x.dtype)
        starts = [2, 9, 5]  # rows at different positions: each row is its own sequence
        for r, s in enumerate(starts):
            torch.testing.assert_close(mixer.prefill(x[r:r + 1, :s], state, r), full[r:r + 1, :s], atol=1e-5, rtol=1e-4)
        ptr = torch.tensor(starts)
        for _ in range(T - max(starts)):
            y = mixer.step(x[torch.arange(B), ptr][:, None], state, ptr)
            torch.testing.assert_close(y[:, 0], full[torch.arange(B), ptr], atol=1e-5, rtol=1e-4)
            ptr = ptr + 1


def test_step_updates_state_in_place_without_new_tensors():
    for name in RECURRENT:
        mixer = get_mixer(name)(tiny_cfg([name]), 0, "reference").eval()
        state = mixer.init_state(2, 16, "cpu", torch.float32)
        ptrs = {k: v.data_ptr() for k, v in state.items()}
        with torch.no_grad():
            mixer.step(torch.randn(2, 1, 32), state, torch.zeros(2, dtype=torch.long))
        assert {k: v.data_ptr() for k, v in state.items()} == ptrs
        assert all(v.abs().sum() > 0 for v in state.values()), name


@pytest.mark.parametrize("layers", [["mamba", "attention", "mamba", "mamba"], ["gla", "gla", "attention", "gla"],
                                    ["attention", "gdn", "gdn", "attention"]])
def test_hybrid_model_decoding_equals_forward(layers):
    model = build_model(tiny_cfg(layers)).eval()
    ids = torch.randint(0, 64, (2, 24))
    with torch.no_grad():
        full = model(ids)
        states = model.init_state(2, 32)
        torch.testing.assert_close(model.prefill(ids[:1, :4], states, 0), full[0:1, 3], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(model.prefill(ids[1:, :8], states, 1), full[1:2, 7], atol=1e-4, rtol=1e-4)
        pos = torch.tensor([4, 8])
        for _ in range(12):
            logits = model.step(ids[torch.arange(2), pos], states, pos)
            torch.testing.assert_close(logits, full[torch.arange(2), pos], atol=1e-4, rtol=1e-4)
            pos = pos + 1


# -- parameters, checkpoints, backends ---------------------------------------------------------

# the upstream modules' state_dict keys (read from fla 0.6.0 and mamba-ssm 2.3.2 sources)
UPSTREAM_KEYS = {
    "mamba": {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias",
              "A_log", "D", "out_proj.weight"},
    "gla": {"q_proj.weight", "k_proj.weight", "v_proj.weight", "q_conv1d.weight", "k_conv1d.weight",
            "v_conv1d.weight", "gk_proj.0.weight", "gk_proj.1.weight", "gk_proj.1.bias", "g_norm.weight",
            "o_proj.weight"},
    "gdn": {"q_proj.weight", "k_proj.weight", "v_proj.weight", "a_proj.weight", "b_proj.weight", "A_log", "dt_bias",
            "q_conv1d.weight", "k_conv1d.weight", "v_conv1d.weight", "o_norm.weight", "o_proj.weight"},
}


@pytest.mark.parametrize("name", RECURRENT)
def test_paper_mixer_parameters_use_upstream_names_and_shapes(name):
    cfg = ModelConfig.from_dict({"layers": [name] * 12, "backend": "reference"})
    with torch.device("meta"):
        sd = get_mixer(name)(cfg, 0, "reference").state_dict()
    assert set(sd) == UPSTREAM_KEYS[name]
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    if name == "mamba":  # Table 3: d_inner 768, d_state 16, d_conv 4, dt_rank 32
        assert shapes["in_proj.weight"] == (1536, 768) and shapes["x_proj.weight"] == (32 + 32, 768)
        assert shapes["A_log"] == (768, 16) and shapes["conv1d.weight"] == (768, 1, 4)
    elif name == "gla":  # Table 5: 12 heads of 64, low-rank gate 16, conv 4 without bias
        assert shapes["gk_proj.0.weight"] == (16, 768) and shapes["g_norm.weight"] == (64,)
        assert shapes["q_conv1d.weight"] == (768, 1, 4)
    else:  # Table 4: head_dim 64, expand_v 1, no output gate
        assert shapes["v_proj.weight"] == (768, 768) and shapes["A_log"] == (12,) and shapes["o_norm.weight"] == (64,)


def test_special_inits():
    model = build_model(tiny_cfg(["mamba", "gla", "gdn"], mamba={"dt_rank": 8, "d_state": 6}))
    m, g, d = (b.mixer for b in model.blocks)
    torch.testing.assert_close(m.A_log, torch.arange(1, 7).float().log().expand(32, 6))
    torch.testing.assert_close(m.D, torch.ones(32))
    dt = F.softplus(m.dt_proj.bias)
    assert dt.min() >= 1e-4 - 1e-7 and dt.max() <= 0.1 + 1e-6
    assert m.dt_proj.weight.abs().max() <= 8 ** -0.5  # uniform init, not the generic normal
    assert (g.gk_proj[1].bias == 0).all()
    assert 0 < d.A_log.exp().min() and d.A_log.exp().max() <= 16


def test_checkpoint_round_trip_between_backends(tmp_path):
    cfg = tiny_cfg(["mamba", "gla", "gdn", "attention"])
    ref = build_model(cfg)
    save_model(ref, tmp_path)
    kern, _ = load_model(tmp_path, backend="kernels")  # built with the kernels backend name, on CPU
    assert kern.backend == "kernels"
    assert list(kern.state_dict()) == list(ref.state_dict())
    for k, v in kern.state_dict().items():
        assert torch.equal(v, ref.state_dict()[k]), k
    back, _ = load_model(tmp_path, backend="reference")
    ids = torch.randint(0, 64, (1, 12))
    torch.testing.assert_close(back(ids), ref(ids))


def test_kernel_choices_round_trip_through_config_json(tmp_path):
    # models.kernels is part of the model config: every layer holds it, config.json records it,
    # loading reads it back; a checkpoint from before it existed loads with the defaults
    import json

    from recall2reason.models.config import KernelConfig

    cfg = tiny_cfg(["gla", "attention", "gdn"], kernels={"short_conv": "triton", "gla_train": "fla"})
    model = build_model(cfg)
    assert all(b.mixer.kernels is model.cfg.kernels for b in model.blocks)
    assert model.kernels_used() == {"short_conv": "reference", "gla_train": "reference"}
    save_model(model, tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["model"]["kernels"] == {"short_conv": "triton", "gla_train": "fla"}
    back, _ = load_model(tmp_path)
    assert back.cfg.kernels == KernelConfig(short_conv="triton", gla_train="fla")
    assert back.blocks[0].mixer.kernels.gla_train == "fla"
    del meta["model"]["kernels"]  # an older checkpoint
    (tmp_path / "config.json").write_text(json.dumps(meta))
    old, _ = load_model(tmp_path)
    assert old.cfg.kernels == KernelConfig() == KernelConfig(short_conv="auto", gla_train="fused")


def test_bad_kernel_choice_is_a_clear_error():
    from recall2reason.common.cfg import ConfigError
    from recall2reason.models.config import KernelConfig

    with pytest.raises(ConfigError, match=r"model\.kernels\.short_conv: 'gluonn' is not one of"):
        tiny_cfg(["gla"], kernels={"short_conv": "gluonn"})
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) model\.kernels\.mlp"):
        tiny_cfg(["gla"], kernels={"mlp": "split"})  # the deleted variants are no keys
    with pytest.raises(ConfigError, match="model.kernels.gla_train: unknown kernel 'chunk'"):
        KernelConfig(gla_train="chunk")  # built directly, not from a dict
    model = build_model(tiny_cfg(["attention"]))
    state = model.init_state(1, 8)
    with pytest.raises(ValueError, match="unknown decode_attention 'flash'"):
        model.step(torch.zeros(1, dtype=torch.long), state, torch.zeros(1, dtype=torch.long), decode_attention="flash")


def test_kernel_choices_in_the_schema_match_the_dataclass():
    # config.yaml's models.kernels validates; a bad value is an error naming its key at DAG parse
    # time; the schema's keys and enums are KernelConfig's, and config.yaml's values its defaults
    import typing
    from dataclasses import fields

    from recall2reason.common.schema import config_errors
    from recall2reason.models.config import KernelConfig

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    schema_path = REPO / "workflow/schemas/config.schema.yaml"
    assert config_errors(config, schema_path) == []
    assert config["models"]["kernels"] == {f.name: f.default for f in fields(KernelConfig)}
    schema = yaml.safe_load((REPO / "workflow/schemas/sections/models.schema.yaml").read_text())
    props = schema["properties"]["kernels"]["properties"]
    hints = typing.get_type_hints(KernelConfig)
    assert {k: v["enum"] for k, v in props.items()} == {f.name: list(typing.get_args(hints[f.name])) for f in fields(KernelConfig)}
    bad = copy.deepcopy(config)
    bad["models"]["kernels"]["gla_train"] = "chunk"
    errors = config_errors(bad, schema_path)
    assert len(errors) == 1 and "models.kernels.gla_train" in errors[0], errors
    bad["models"]["kernels"] = {"mlp": "split"}
    assert any("mlp" in e for e in config_errors(bad, schema_path))


def test_study_passes_models_kernels_into_every_model_config():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    kernels = {"short_conv": "mix", "gla_train": "fla"}
    for spec in expand_models(config["models"]):
        cfg = ModelConfig.from_dict(spec.model_config("reference", kernels))
        assert (cfg.kernels.short_conv, cfg.kernels.gla_train) == ("mix", "fla")
    assert "kernels" not in spec.model_config()  # none given: ModelConfig's defaults
    # the pretrain rule's params carry only choices off the defaults: with config.yaml's section
    # they are those of a config without it (no rerun of existing checkpoints)
    from recall2reason.study import kernels_section

    assert config["models"]["kernels"] and kernels_section(config["models"]) is None
    assert kernels_section({"kernels": {"short_conv": "auto", "gla_train": "fla"}}) == {"gla_train": "fla"}


def test_auto_backend_is_reference_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert resolve_backend(tiny_cfg(["mamba", "gla", "gdn"], backend="auto")) == "reference"
    assert resolve_backend(tiny_cfg(["gdn"], backend="kernels")) == "kernels"  # forcing is honoured


# -- ablation knobs --------------------------------------------------------------------------

def _mixer_sd(name, **mixer_kw):
    cfg = tiny_cfg([name], **{name: mixer_kw} if name != "mamba" else {"mamba": {"dt_rank": None, **mixer_kw}})
    return get_mixer(name)(cfg, 0, "reference")


def test_kernel_availability_checks_do_not_break_compiled_graphs():
    # the layers ask which kernels exist inside their forward, i.e. inside torch.compile'd blocks;
    # traced, the import behind a check broke the graph at every short conv (2026-12-06-pretrain-3-whole-model-compile)
    from recall2reason.models import kernels

    checks = (kernels.fla_available, kernels.mamba_ssm_available, kernels.causal_conv1d_available)

    def f(x):
        for check in checks:
            x = x * 2 if check() else x - 1
        return x

    got = torch.compile(f, fullgraph=True, backend="eager")(torch.zeros(2))  # raises at a graph break
    assert torch.equal(got, f(torch.zeros(2)))


def test_mamba_knobs_change_shapes():
    base = _mixer_sd("mamba")
    assert base.d_inner == 32 and base.dt_rank == 2  # expand 1; dt_rank "auto" = ceil(32 / 16)
    m = _mixer_sd("mamba", d_inner=48, d_state=8, dt_rank=4, d_conv=2)
    assert m.in_proj.weight.shape == (96, 32) and m.A_log.shape == (48, 8)
    assert m.x_proj.weight.shape == (4 + 16, 48) and m.dt_proj.weight.shape == (48, 4)
    assert m.conv1d.weight.shape == (48, 1, 2)
    assert m(torch.randn(1, 9, 32)).shape == (1, 9, 32)


@pytest.mark.parametrize("name", ["gla", "gdn"])
def test_short_conv_knobs(name):
    off = _mixer_sd(name, use_short_conv=False)
    assert not any("conv" in k for k in off.state_dict())
    big = _mixer_sd(name, conv_size=2)
    assert big.q_conv1d.weight.shape[-1] == 2
    x = torch.randn(1, 10, 32)
    assert off(x).shape == big(x).shape == x.shape
    biased = _mixer_sd(name, conv_bias=True)
    assert biased.v_conv1d.bias is not None


def test_gdn_output_gate_knob():
    plain, gated = _mixer_sd("gdn"), _mixer_sd("gdn", use_gate=True)
    assert "g_proj.weight" in gated.state_dict() and "g_proj.weight" not in plain.state_dict()
    gated.load_state_dict({**plain.state_dict(), "g_proj.weight": gated.g_proj.weight.detach()})
    x = torch.randn(1, 10, 32)
    assert (gated(x) - plain(x)).abs().max() > 1e-4  # same weights, the gate changes the function
    state = gated.init_state(1, 16, "cpu", torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(gated.prefill(x, state, 0), gated(x))


def test_gla_output_gate_and_gate_knobs():
    gated = _mixer_sd("gla", use_output_gate=True)
    assert {"g_proj.weight", "g_norm_swish_gate.weight"} <= set(gated.state_dict())
    unfused = _mixer_sd("gla", use_output_gate=True, fuse_norm=False)
    assert "g_norm.weight" in unfused.state_dict()
    low = _mixer_sd("gla", gate_low_rank_dim=4)
    assert low.gk_proj[0].weight.shape == (4, 32)
    a, b = _mixer_sd("gla", gate_logit_normalizer=1), _mixer_sd("gla", gate_logit_normalizer=16)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 12, 32)
    assert (a(x) - b(x)).abs().max() > 1e-4


# -- the paper's 13 models ---------------------------------------------------------------------

def paper_models_cfg():
    return yaml.safe_load((REPO / "config.yaml").read_text())["models"]


def test_thirteen_paper_models_build_with_expected_sizes():
    specs = expand_models(paper_models_cfg())
    assert len(specs) == 13
    for spec in specs:
        cfg = ModelConfig.from_dict(spec.model_config("reference"))
        with torch.device("meta"):  # counting only: no memory, no init work
            model = build_model(cfg)
        n = model.num_params()
        # ~150M in the paper; exact: 156.4M (mamba100) .. 162.8M (gla100)
        assert 150e6 < n < 170e6, (spec.name, n)
        kinds = [b.mixer.mixer_name for b in model.blocks]
        assert kinds == spec.layer_types
        assert kinds.count("attention") == len(spec.attention_layers)


def test_ablation_models_from_config_extra():
    mc = copy.deepcopy(paper_models_cfg())
    mc["extra"] = {
        "gdn83_attn_0_11": {"mixer": "gdn", "attention_layers": [0, 11]},
        "gdn83_gate": {"mixer": "gdn", "attention_layers": [5, 11], "mixers": {"gdn": {"use_gate": True}}},
        "mamba83_small": {"mixer": "mamba", "attention_layers": [5, 11],
                          "mixers": {"mamba": {"d_inner": 512, "d_state": 8, "dt_rank": 8}}},
    }
    mc["only"] = list(mc["extra"])
    with torch.device("meta"):
        models = {s.name: build_model(s.model_config("reference")) for s in expand_models(mc)}
    kinds = [b.mixer.mixer_name for b in models["gdn83_attn_0_11"].blocks]
    assert kinds[0] == kinds[11] == "attention" and kinds.count("attention") == 2
    assert hasattr(models["gdn83_gate"].blocks[0].mixer, "g_proj")
    mm = models["mamba83_small"].blocks[0].mixer
    assert (mm.d_inner, mm.d_state, mm.dt_rank) == (512, 8, 8)


@pytest.mark.parametrize("name", ["mamba", "gla", "gdn"])
def test_tiny_hybrid_trains(name):
    model = build_model(tiny_cfg([name, "attention", name]))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.randint(0, 64, (4, 33))
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3, losses


@pytest.mark.parametrize("name", RECURRENT)
def test_gpu_agreement_helper_plumbing_on_cpu(name):
    """The helper behind tests/test_gpu_kernels.py, run reference-vs-reference on CPU: identical
    weights must give identical outputs and gradients."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from agreement import compare, layer_pair

    cfg = tiny_cfg([name])
    r = compare(name, torch.float32, batch=1, seqlen=12, cfg=cfg, device="cpu", other="reference")
    assert r["finite"] and r["out"] == 0.0 and r["dx"] == 0.0 and r["dparam_max"] == 0.0
    ref, other = layer_pair(name, cfg, device="cpu", other="reference")
    assert other.backend == "reference" and all(torch.equal(a, b) for a, b in zip(ref.state_dict().values(),
                                                                                 other.state_dict().values()))


def test_rope_tables_stay_fp32_outside_the_state_dict():
    """RoPE's cos/sin tables survive a bf16 cast in fp32, match the inline formula, never enter a
    checkpoint, and grow when decoding needs positions past max_seq_len."""
    from recall2reason.models.ops.rope import rope_cos_sin

    model = build_model(tiny_cfg(["attention", "mamba"]))
    att = model.blocks[0].mixer
    model.to(torch.bfloat16)
    assert att.rope_cos.dtype == att.rope_sin.dtype == torch.float32
    cos, sin = rope_cos_sin(torch.arange(model.cfg.max_seq_len), att.head_dim, att.rope_theta)
    torch.testing.assert_close(att.rope_cos, cos, rtol=0, atol=0)
    torch.testing.assert_close(att.rope_sin, sin, rtol=0, atol=0)
    assert not [k for k in model.state_dict() if "rope" in k]
    model.init_state(1, model.cfg.max_seq_len + 7)
    assert att.rope_cos.shape[0] == model.cfg.max_seq_len + 7


def test_swiglu_is_olmos_fused_projection_split_into_value_then_gate():
    # the MLP's one input projection must stay OLMo's layout:
    # ff_proj's output chunked as (value, gate), hidden = silu(gate) * value
    torch.manual_seed(0)
    mlp = SwiGLU(16, 24)
    assert {k: tuple(v.shape) for k, v in mlp.state_dict().items()} == {
        "ff_proj.weight": (48, 16), "ff_out.weight": (16, 24)}
    x = torch.randn(3, 5, 16, requires_grad=True)
    wrt = [x, mlp.ff_proj.weight, mlp.ff_out.weight]
    value, gate = mlp.ff_proj(x).chunk(2, dim=-1)
    fused = mlp.ff_out(F.silu(gate) * value)
    fused_grads = torch.autograd.grad(fused.square().sum(), wrt)
    y = mlp(x)
    torch.testing.assert_close(y, fused)
    for g, g_fused in zip(torch.autograd.grad(y.square().sum(), wrt), fused_grads):
        torch.testing.assert_close(g, g_fused)
    # swapping the halves (gate first) is a different function: the test would see it
    swapped = mlp.ff_out(F.silu(value) * gate)
    assert not torch.allclose(swapped, fused)


def test_project_is_the_separate_projections_as_one_gemm():
    # GLA / GDN run their input projections as one GEMM over the concatenated weights; values and
    # gradients must be those of the separate nn.Linear layers, whose parameters stay in place
    torch.manual_seed(0)
    lins = [torch.nn.Linear(16, w, bias=False) for w in (8, 8, 3)]
    x = torch.randn(2, 5, 16, requires_grad=True)
    wrt = [x] + [lin.weight for lin in lins]
    outs = project(x, *lins)
    assert [tuple(o.shape) for o in outs] == [(2, 5, 8), (2, 5, 8), (2, 5, 3)]
    loss = sum((o * (i + 1)).square().sum() for i, o in enumerate(outs))
    ref_outs = [lin(x) for lin in lins]
    ref_loss = sum((o * (i + 1)).square().sum() for i, o in enumerate(ref_outs))
    for o, r in zip(outs, ref_outs):
        torch.testing.assert_close(o, r)
    for g, r in zip(torch.autograd.grad(loss, wrt), torch.autograd.grad(ref_loss, wrt)):
        torch.testing.assert_close(g, r)
    with pytest.raises(ValueError, match="bias-free"):
        project(x, torch.nn.Linear(16, 4))


@pytest.mark.parametrize("name", ["gla", "gdn"])
def test_prefill_stores_the_conv_windows_of_the_projections(name):
    # prefill takes each decoding window from the same fused projection it convolves
    torch.manual_seed(0)
    mixer = get_mixer(name)(tiny_cfg([name]), 0, "reference")
    x = torch.randn(1, 6, 32)
    state = mixer.init_state(2, 16, x.device, x.dtype)
    with torch.no_grad():
        mixer.prefill(x, state, slot=1)
        for n in "qkv":
            window = getattr(mixer, f"{n}_proj")(x)[0, -mixer.c.conv_size:].t()  # (D, W), oldest input first
            torch.testing.assert_close(state[f"conv_{n}"][1], window)
            assert not state[f"conv_{n}"][0].any()  # the other slot is untouched
