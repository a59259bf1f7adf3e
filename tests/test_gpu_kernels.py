"""GPU: the kernels backend (mamba-ssm / FLA) computes the same function as the reference backend.

Skipped, with the reason shown by ``-ra``, where CUDA or a kernel package is missing. Run on the
device with ``source .gpu/setup.sh && python -m pytest -ra tests/test_gpu_kernels.py``.

Tolerances (relative L2 error ||kernels - reference|| / ||reference||, paper shapes, batch 4,
length 2048): fp32 outputs / input grads 5e-3 and parameter grads 2e-2 (FLA's Triton matmuls run
in TF32); bf16 autocast 3e-2 / 6e-2 (both sides round their bf16 matmul inputs differently).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from recall2reason.models import ModelConfig, build_model
from recall2reason.models.layers import get_mixer

pytestmark = pytest.mark.gpu

if not torch.cuda.is_available():
    pytest.skip("no CUDA device: the kernel backends need one", allow_module_level=True)

from recall2reason.models.kernels import fla_available, mamba_ssm_available  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from agreement import compare, layer_pair, rel_err  # noqa: E402  (benchmarks/agreement.py)

TOL = {torch.float32: (5e-3, 2e-2), torch.bfloat16: (3e-2, 6e-2)}


def need(name: str) -> None:
    if not get_mixer(name).kernels_available():
        pkg = "mamba-ssm" if name == "mamba" else "flash-linear-attention (fla) + triton"
        pytest.skip(f"{pkg} not importable: no kernels backend for {name}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("name", ["mamba", "gla", "gdn"])
def test_kernels_match_reference_at_paper_shapes(name, dtype):
    need(name)
    r = compare(name, dtype, batch=4, seqlen=2048)
    print(f"\nagreement {name} {str(dtype)[6:]}: {r}")  # the figures for benchmarks/reports/ (pytest -s)
    tol_out, tol_param = TOL[dtype]
    assert r["finite"], r
    assert r["out"] < tol_out and r["dx"] < tol_out, r
    assert r["dparam_max"] < tol_param, r


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("train_kernel", ["fused", "fla"])
def test_gla_layer_matches_reference_with_each_train_kernel(train_kernel, dtype):
    need("gla")
    cfg = ModelConfig.from_dict({"layers": ["gla"], "n_layers": 1, "kernels": {"gla_train": train_kernel}})
    r = compare("gla", dtype, batch=4, seqlen=2048, cfg=cfg)
    print(f"\nagreement gla ({train_kernel}) {str(dtype)[6:]}: {r}")
    assert r["finite"], r
    assert r["out"] < TOL[dtype][0] and r["dx"] < TOL[dtype][0], r
    assert r["dparam_max"] < TOL[dtype][1], r


@pytest.mark.parametrize("case", ["init-gates", "init-gates-exact", "saturated-gates"])
def test_fused_chunk_gla_is_as_close_to_fp64_as_flas_chunk_gla(case):
    """ops.fused_chunk_gla in bf16 against an fp64 evaluation of the PyTorch twin: its output and
    four gradients are within 1.5x FLA's chunk_gla's own error (plus 1e-3), on both of its paths
    (one matmul per chunk; the exact per-column form, forced or taken for gates that decay by
    more than 2^96 within a chunk). 2000 tokens: the last chunk is partial."""
    need("gla")
    import torch.nn.functional as F
    from fla.ops.gla import chunk_gla

    from recall2reason.models.ops.fused_chunk_gla import fused_chunk_gla
    from recall2reason.models.ops.gla import chunk_gla as reference_gla

    torch.manual_seed(0)
    B, T, H, K = 2, 2000, 12, 64
    q, k, v = (F.silu(torch.randn(B, T, H, K, device="cuda")).bfloat16().requires_grad_() for _ in range(3))
    gate_scale = 400.0 if case == "saturated-gates" else 1.0
    g = (F.logsigmoid(torch.randn(B, T, H, K, device="cuda") * gate_scale) / 16).bfloat16().requires_grad_()
    do = torch.randn_like(v)
    xs = (q, k, v, g)
    ref_o = reference_gla(*[x.double() for x in xs])[0]
    ref = (ref_o, *torch.autograd.grad(ref_o, xs, do.double()))
    theirs_o = chunk_gla(q=q, k=k, v=v, g=g)[0]
    theirs = (theirs_o, *torch.autograd.grad(theirs_o, xs, do))
    ours_o = fused_chunk_gla(q, k, v, g, exact=case == "init-gates-exact")
    ours = (ours_o, *torch.autograd.grad(ours_o, xs, do))
    for name, a, b, r in zip(("o", "dq", "dk", "dv", "dg"), ours, theirs, ref):
        assert torch.isfinite(a).all(), name
        assert rel_err(a, r) <= 1.5 * rel_err(b, r) + 1e-3, f"{name}: ours {rel_err(a, r):.3g}, FLA {rel_err(b, r):.3g}"


def _upstream(name: str):
    try:
        return _upstream_layer(name)
    except ImportError as e:  # e.g. fla.layers needs transformers, which the kernels do not
        pytest.skip(f"upstream layer class for {name} not importable: {e}")


def _fla_layer_class(module: str, cls: str):
    """FLA's layer class. ``fla.layers``' __init__ imports every layer, and some of them need
    ``transformers``; GLA's and GDN's modules need only fla-core, so where the package import
    fails, load the one module under a bare ``fla.layers`` package."""
    import importlib
    import sys
    import types
    from pathlib import Path

    try:
        return getattr(importlib.import_module("fla.layers"), cls)
    except ImportError:
        import fla

        pkg = types.ModuleType("fla.layers")
        pkg.__path__ = [str(Path(fla.__file__).parent / "layers")]
        sys.modules["fla.layers"] = pkg
        return getattr(importlib.import_module(f"fla.layers.{module}"), cls)


def _upstream_layer(name: str):
    if name == "mamba":
        from mamba_ssm.modules.mamba_simple import Mamba

        return Mamba(d_model=768, d_state=16, d_conv=4, expand=1, dt_rank=32)
    if name == "gla":
        GatedLinearAttention = _fla_layer_class("gla", "GatedLinearAttention")
        return GatedLinearAttention(mode="chunk", hidden_size=768, expand_k=1.0, expand_v=1.0, num_heads=12,
                                    use_short_conv=True, conv_size=4, conv_bias=False, use_output_gate=False,
                                    gate_fn="swish", gate_logit_normalizer=16, gate_low_rank_dim=16, fuse_norm=True)
    GatedDeltaNet = _fla_layer_class("gated_deltanet", "GatedDeltaNet")
    return GatedDeltaNet(hidden_size=768, expand_v=1.0, head_dim=64, num_heads=12, use_gate=False,
                         use_short_conv=True, conv_size=4, conv_bias=False)


# GLA / GDN under bf16 autocast, the training precision: FLA's fp32 kernels autotune for minutes on
# a fresh machine (a 200 s device slot ended inside this test, 2026-12-03-models-mixer-kernels), the bf16 winners are
# in the carried autotune cache. Mamba (no autotuning) stays fp32, with the tight tolerance.
@pytest.mark.parametrize("name, dtype", [("mamba", torch.float32), ("gla", torch.bfloat16), ("gdn", torch.bfloat16)],
                         ids=["mamba-fp32", "gla-bf16", "gdn-bf16"])
def test_same_function_as_the_upstream_layer(name, dtype):
    """Our state_dict loads strictly into mamba-ssm's Mamba / FLA's layer class, which then
    computes what our kernels backend computes."""
    need(name)
    _, ours = layer_pair(name)
    theirs = _upstream(name).cuda()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 512, 768, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        y_ours, y_theirs = ours(x), theirs(x)
    y_theirs = y_theirs[0] if isinstance(y_theirs, tuple) else y_theirs
    assert rel_err(y_ours, y_theirs) < (1e-3 if dtype == torch.float32 else TOL[torch.bfloat16][0])


# mamba-ssm 2.x's selective_scan_fn / selective_state_update with Δ clamped outside them
# (delta_softplus=False; a zero dt_bias for the decode kernel, which cannot take None), and
# causal-conv1d at d_xb channels.
MAMBA_KNOBS = {"d_xb": {"d_xb": 384}, "d_inner_d_xb": {"d_inner": 1536, "d_xb": 384},
               "dt_limit": {"dt_limit": [0.001, 0.1]}, "both": {"d_xb": 192, "dt_limit": [0.0, None]}}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("knobs", list(MAMBA_KNOBS))
def test_mamba_ablation_knobs_match_reference(knobs, dtype):
    """Mamba's d_xb (x shared across d_inner) and dt_limit on the kernels path: the same function
    as the reference at paper width, training and decoding."""
    need("mamba")
    cfg = ModelConfig.from_dict({"layers": ["mamba"], "n_layers": 1, "mamba": MAMBA_KNOBS[knobs]})
    r = compare("mamba", dtype, batch=4, seqlen=2048, cfg=cfg)
    print(f"\nagreement mamba {knobs} {str(dtype)[6:]}: {r}")
    assert r["finite"], r
    assert r["out"] < TOL[dtype][0] and r["dx"] < TOL[dtype][0], r
    assert r["dparam_max"] < TOL[dtype][1], r
    ref, ker = layer_pair("mamba", cfg)
    u = torch.randn(2, 40, 768, device="cuda")
    with torch.no_grad():
        full = ref(u)
        state = ker.init_state(2, 64, u.device, u.dtype)
        for r_ in range(2):
            assert rel_err(ker.prefill(u[r_:r_ + 1, :9], state, r_), full[r_:r_ + 1, :9]) < 5e-3
        pos = torch.full((2,), 9, device="cuda")
        for t in range(9, 40):
            assert rel_err(ker.step(u[:, t:t + 1], state, pos)[:, 0], full[:, t]) < 5e-3, t
            pos = pos + 1


@pytest.mark.parametrize("form", ["triton", "mix", "gluon"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("B, T", [(4, 2048), (1, 37)], ids=["train", "prompt"])
def test_short_conv_forms_match_the_pytorch_twin(form, dtype, B, T):
    """ops.conv.short_conv_forward on ``kernels`` in each form (FLA's all-Triton form, its "mix" form
    with causal-conv1d's CUDA backward, its Gluon kernels) against F.conv1d, on x as the mixers
    pass it: a strided slice of their packed projection; at a training shape and a prompt's."""
    from recall2reason.models import kernels
    from recall2reason.models.ops import conv as conv_ops

    need("gla")
    if form == "mix" and not kernels.causal_conv1d_available():
        pytest.skip("causal-conv1d not importable: the mix form needs it")
    torch.manual_seed(0)
    conv = conv_ops.short_conv(768, 4, bias=True).cuda()
    packed = torch.randn(B, T, 2320, device="cuda", dtype=dtype, requires_grad=True)
    x = packed[..., 768:1536]  # k of a GLA layer's packed q | k | v | gate projection
    dy = torch.randn(B, T, 768, device="cuda", dtype=dtype)
    grads = []
    for backend in ("kernels", "reference"):
        y = conv_ops.short_conv_forward(conv, x, backend, form)
        assert y.shape == x.shape and y.dtype == dtype
        grads.append((y, *torch.autograd.grad(y, (packed, conv.weight, conv.bias), dy)))
    for a, b in zip(*grads):
        assert rel_err(a, b) < TOL[dtype][0]


def _tiny_kernel_model():
    cfg = ModelConfig.from_dict({"d_model": 256, "n_layers": 4, "n_heads": 4, "n_kv_heads": 4, "vocab_size": 512,
                                 "max_seq_len": 256, "layers": ["mamba", "gla", "gdn", "attention"],
                                 "backend": "kernels"})
    torch.manual_seed(0)
    with torch.device("cuda"):
        return build_model(cfg).eval()


def test_kernel_decoding_equals_forward():
    for n in ("mamba", "gla", "gdn"):
        need(n)
    model = _tiny_kernel_model()
    ids = torch.randint(0, 512, (3, 96), device="cuda")
    with torch.no_grad():
        full = model(ids).float()
        states = model.init_state(3, 128)
        starts = [5, 70, 33]  # 70 > 64: FLA's chunk kernels in prefill, fused_recurrent below
        for r, s in enumerate(starts):
            assert rel_err(model.prefill(ids[r:r + 1, :s], states, r), full[r:r + 1, s - 1]) < 2e-3
        pos = torch.tensor(starts, device="cuda")
        rows = torch.arange(3, device="cuda")
        for _ in range(96 - max(starts)):
            logits = model.step(ids[rows, pos], states, pos)
            assert rel_err(logits, full[rows, pos]) < 2e-3
            pos = pos + 1


def test_kernel_step_replays_in_a_cuda_graph():
    for n in ("mamba", "gla", "gdn"):
        need(n)
    model = _tiny_kernel_model()
    ids = torch.randint(0, 512, (2, 40), device="cuda")
    with torch.no_grad():
        eager = model.init_state(2, 64)
        for r in range(2):
            model.prefill(ids[r:r + 1, :8], eager, r)
        graphed = [{k: v.clone() for k, v in s.items()} for s in eager]
        backup = [{k: v.clone() for k, v in s.items()} for s in eager]
        tok, pos = ids[:, 8].clone(), torch.full((2,), 8, device="cuda")
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up (Triton autotuning, lazy init) outside the capture
            for _ in range(2):
                model.step(tok, graphed, pos)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model.step(tok, graphed, pos)
        for s, b in zip(graphed, backup):  # undo the warm-up steps, in place
            for k in s:
                s[k].copy_(b[k])
        for t in range(8, 30):
            tok.copy_(ids[:, t])
            pos.fill_(t)
            graph.replay()
            ref = model.step(ids[:, t], eager, torch.full((2,), t, device="cuda"))
            assert rel_err(out, ref) < 1e-4, t


def test_all_thirteen_models_build_and_train_on_gpu():
    import yaml
    from pathlib import Path

    from recall2reason.study import expand_models

    for n in ("mamba", "gla", "gdn"):
        need(n)
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    specs = expand_models(cfg["models"])
    assert len(specs) == 13
    ids = torch.randint(0, 32000, (2, 257), device="cuda")
    for spec in specs:
        with torch.device("cuda"):
            model = build_model(spec.model_config("auto"))
        assert model.backend == "kernels", spec.name
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        assert torch.isfinite(loss) and 9.5 < loss.item() < 11.5, (spec.name, loss.item())  # ~ln(32000) = 10.4
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None), spec.name
        del model
        torch.cuda.empty_cache()


def test_kernels_available_here():
    assert fla_available() and mamba_ssm_available(), "the device setup should provide both packages"
