"""GPU: an exported hybrid runs FLA's and mamba-ssm's kernels on CUDA and computes what HybridLM's
kernels backend computes, in a full forward and decoding through its state.

Skipped, with the reason shown by ``-ra``, where CUDA, transformers or a kernel package is missing.
Tolerance as in test_gpu_kernels.py: relative L2 error 5e-3 in fp32 (FLA's matmuls run in TF32).
"""

from __future__ import annotations

import sys

import pytest
import torch

pytestmark = pytest.mark.gpu

if not torch.cuda.is_available():
    pytest.skip("no CUDA device: the exported model's kernel paths need one", allow_module_level=True)
pytest.importorskip("transformers")

from recall2reason.data import synthetic  # noqa: E402
from recall2reason.data.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402
from recall2reason.export.config import ExportConfig  # noqa: E402
from recall2reason.export.run import export_model  # noqa: E402
from recall2reason.models import ModelConfig, build_model, save_model  # noqa: E402
from recall2reason.models.kernels import fla_available, mamba_ssm_available  # noqa: E402

if not (fla_available() and mamba_ssm_available()):
    pytest.skip("flash-linear-attention and mamba-ssm must both import", allow_module_level=True)

from transformers import AutoModelForCausalLM  # noqa: E402


def rel_err(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@torch.no_grad()
def test_exported_hybrid_runs_the_kernels_and_matches(tmp_path, monkeypatch):
    texts = [r["question"] + "\n" + r["answer"] for r in synthetic.generate("gsm8k", 300, 1)]
    tok = load_tokenizer(train_tokenizer(texts, tmp_path / "tokenizer.model", 400))
    torch.manual_seed(0)
    cfg = ModelConfig.from_dict(dict(d_model=256, n_layers=4, n_heads=4, n_kv_heads=4, vocab_size=tok.vocab_size,
                                     max_seq_len=512, layers=["mamba", "attention", "gla", "gdn"], backend="kernels"))
    ours = build_model(cfg).cuda().eval()
    save_model(ours, tmp_path / "ckpt", extra={"name": "hybrid", "tokenizer_sha256": tok.sha256})
    export_model(ExportConfig(), model_dir=tmp_path / "ckpt", tokenizer=tok.path, prompt_prefix="eos", out=tmp_path / "hf")
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", trust_remote_code=True).float().cuda().eval()

    module = sys.modules[type(hf).__module__]
    used = []
    real_kernel = module.kernel
    monkeypatch.setattr(module, "kernel", lambda *a: used.append(a[:2]) or real_kernel(*a))
    ids = torch.randint(0, tok.vocab_size, (2, 300), device="cuda", generator=torch.Generator("cuda").manual_seed(0))
    want = ours(ids)
    got = hf(ids).logits
    assert {m.split(".")[0] for m, _ in used} == {"mamba_ssm", "fla"}
    assert all(real_kernel(m, n, ids.float()) is not None for m, n in set(used)), set(used)
    assert rel_err(got, want) < 5e-3

    first = hf(ids[:, :280], use_cache=True)  # prefill, then 20 decode steps through the state
    logits = [first.logits[:, -1]]
    state = first.decode_state
    for t in range(280, 299):
        step = hf(ids[:, t : t + 1], decode_state=state, use_cache=True)
        logits.append(step.logits[:, -1])
    assert rel_err(torch.stack(logits, 1), want[:, 279:299]) < 5e-3
