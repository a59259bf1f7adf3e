"""CPU test of the GLA decode step's custom op (models/kernels/gla_step.py): with a PyTorch stand-in
for FLA's ``fused_recurrent_gla``, the kernels path of ``GatedLinearAttention.step`` gives the
reference path's outputs and states, eagerly and compiled with ``fullgraph=True`` (the op must stay
one opaque call that updates the state in place; a graph break or a lost in-place update fails)."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from recall2reason.models import ModelConfig
from recall2reason.models.layers import get_mixer
from recall2reason.models.ops.gla import recurrent_gla_step


def _stand_in_fused_recurrent_gla(q, k, v, gk, initial_state, output_final_state):
    """FLA's signature and results: o in q's dtype, a fresh fp32 final state."""
    h = initial_state.clone().float()
    o = torch.stack([recurrent_gla_step(q[:, t], k[:, t], v[:, t], gk[:, t], h) for t in range(q.shape[1])], 1)
    return o.to(q.dtype), h


@pytest.fixture
def fla_stand_in(monkeypatch):
    calls = []

    def fused_recurrent_gla(**kw):
        # FLA's wrapper breaks Dynamo's graph (an lru_cache'd helper, Triton's getenv_bool): so does this
        torch._dynamo.graph_break()
        calls.append(kw["q"].shape)
        return _stand_in_fused_recurrent_gla(**kw)

    fake = types.ModuleType("fla.ops.gla")
    fake.fused_recurrent_gla = fused_recurrent_gla
    for name in ("fla", "fla.ops"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "fla.ops.gla", fake)
    return calls


def gla_pair():
    cfg = ModelConfig.from_dict(dict(d_model=32, n_layers=1, n_heads=4, n_kv_heads=4, vocab_size=64, max_seq_len=64,
                                     layers=["gla"], backend="reference"))
    torch.manual_seed(0)
    ref = get_mixer("gla")(cfg, 0, "reference").eval()
    ker = get_mixer("gla")(cfg, 0, "reference").eval()
    ker.load_state_dict(ref.state_dict())
    ker.backend = "kernels"  # only step() runs; its short conv step is PyTorch on either backend
    return ref, ker


# inductor, as the sampler compiles the step: the state must come back updated in its own storage
@pytest.mark.parametrize("compiled", [None, "aot_eager", "inductor"], ids=["eager", "aot_eager", "inductor"])
def test_kernels_step_matches_reference_step(fla_stand_in, compiled):
    ref, ker = gla_pair()
    step = torch.compile(ker.step, fullgraph=True, backend=compiled) if compiled else ker.step
    x = torch.randn(3, 5, 32)
    with torch.no_grad():
        s_ref, s_ker = (m.init_state(3, 8, x.device, x.dtype) for m in (ref, ker))
        h_storage = s_ker["h"].data_ptr()
        pos = torch.zeros(3, dtype=torch.long)
        for t in range(5):
            y_ref = ref.step(x[:, t:t + 1], s_ref, pos)
            y_ker = step(x[:, t:t + 1], s_ker, pos)
            torch.testing.assert_close(y_ker, y_ref)
            torch.testing.assert_close(s_ker["h"], s_ref["h"])
            assert s_ker["h"].data_ptr() == h_storage
            pos = pos + 1
    assert fla_stand_in and all(shape[1] == 1 for shape in fla_stand_in)  # FLA was called, one token at a time


def test_fake_gives_fla_output_shape_and_dtype():
    from torch._subclasses.fake_tensor import FakeTensorMode

    from recall2reason.models.kernels.gla_step import gla_recurrent_step

    with FakeTensorMode():
        q = torch.empty(2, 1, 4, 8, dtype=torch.bfloat16)
        v = torch.empty(2, 1, 4, 16, dtype=torch.bfloat16)
        o = gla_recurrent_step(q, q, v, q, torch.empty(2, 4, 8, 16))
    assert o.shape == (2, 1, 4, 16) and o.dtype == torch.bfloat16
