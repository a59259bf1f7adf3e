"""The GPU benchmark scripts run their CPU dry runs: a script that breaks is found here, not in a
paid device slot (a broken call in profile_gpu.py once cost a 10-minute GPU run)."""

from __future__ import annotations

import json
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_sample_throughput_dry_run(tmp_path):
    out = tmp_path / "sample.json"
    run("sample_throughput.py", "--tiny", "--device", "cpu", "--models", "transformer", "gdn50", "--rounds", "1",
        "--batch", "4", "--n", "2", "--prompt-len", "6", "--new-tokens", "6", "--json", str(out))
    res = json.loads(out.read_text())["results"]
    for m in ("transformer", "gdn50"):
        assert res[m]["tokens"] == 4 * 6 and res[m]["repro_ok"] is True, res[m]
        assert res[m]["step_bytes"]["total"] > res[m]["step_bytes"]["weights"] > 0


def test_train_throughput_dry_run(tmp_path):
    out = tmp_path / "train.json"
    run("train_throughput.py", "--tiny", "--models", "transformer,gla50", "--no-compile", "--residual", "both",
        "--gla-train", "fused,fla", "--out", str(out))
    rows = json.loads(out.read_text())["results"]
    res = {(r["model"], r["kernels"]["gla_train"], r["residual_dtype"]): r for r in rows}
    # the kernel choices reach the model's config (models.kernels); only GLA models vary gla_train
    assert set(res) == {("transformer", "fused", d) for d in ("fp32", "compute")} | {
        ("gla50", k, d) for k in ("fused", "fla") for d in ("fp32", "compute")}
    assert all(r["tokens_per_s"] > 0 for r in res.values())
    assert res["gla50", "fla", "fp32"]["gla_train"] == "reference" and res["transformer", "fused", "fp32"]["gla_train"] == "-"
    assert res["gla50", "fused", "fp32"]["short_conv"] == "reference"
    # the reference backend ignores the kernel choice: the same weights and data train the same function
    assert res["gla50", "fla", "fp32"]["loss"] == res["gla50", "fused", "fp32"]["loss"]
    for m in ("transformer", "gla50"):
        # --tiny trains in fp32, where the residual stream is fp32 either way
        assert res[m, "fused", "compute"]["loss"] == res[m, "fused", "fp32"]["loss"], m


def test_profile_gpu_dry_run(tmp_path):
    run("profile_gpu.py", "--tiny", "--models", "transformer,gla50", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "profile.json").read_text())["train"]
    assert [r["model"] for r in rows] == ["transformer", "gla50"] and not any("error" in r for r in rows), rows
    assert all((tmp_path / f"kernels_train_{m}.txt").read_text() for m in ("transformer", "gla50"))


def test_mixer_kernels_dry_run(tmp_path):
    out = tmp_path / "mixers.json"
    run("mixer_kernels.py", "--dry-run", "--out", str(out))
    res = json.loads(out.read_text())
    assert {r["mixer"] for r in res["agreement"]} >= {"mamba", "gla", "gdn"}
    run("mixer_kernels.py", "--dry-run", "--timing-only", "--out", str(out))
    res = json.loads(out.read_text())
    assert res["agreement"] == [] and {r["mixer"] for r in res["timing_ms"]} == {"attention", "mamba", "gla", "gdn"}


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_every_benchmark_script_compiles(script):
    py_compile.compile(str(BENCH / script), doraise=True)


def test_decode_roofline_counts_the_bytes_a_step_must_move():
    """benchmarks/decode_roofline.py against the bytes written out by hand for a tiny Transformer
    and a tiny GLA100 (bf16 weights, the model's own state dtypes)."""
    import torch

    sys.path.insert(0, str(BENCH))
    try:
        from decode_roofline import decode_step_bytes, hbm_bandwidth
    finally:
        sys.path.remove(str(BENCH))
    from recall2reason.models import build_model

    base = {"d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "vocab_size": 512, "max_seq_len": 128}
    B, ctx = 8, 40.0
    tf = build_model({**base, "layers": ["attention", "attention"]})
    b = decode_step_bytes(tf, B, ctx)
    n_params = sum(p.numel() for p in tf.parameters())
    assert b["weights"] == 2 * (n_params - 512 * 64 + B * 64)  # the embedding: only the B rows read
    assert b["kv_cache"] == 2 * 2 * (B * 2 * 16 * 2) * (ctx + 1)  # layers x (k, v) x B x H_kv x hd x bf16 x positions
    assert b["recurrent_state"] == 0 and b["logits"] == 2 * B * 512 * 2
    assert b["total"] == sum(v for k, v in b.items() if k != "total")
    gla = build_model({**base, "layers": ["gla", "gla"]})
    g = decode_step_bytes(gla, B, ctx)
    state_bytes = sum(t.numel() * t.element_size() for st in gla.init_state(B, 1, torch.device("meta"), torch.bfloat16)
                      for t in st.values())
    assert g["kv_cache"] == 0 and g["recurrent_state"] == 2 * state_bytes > 0
    assert hbm_bandwidth("NVIDIA H100 80GB HBM3") == 3.35e12 and hbm_bandwidth("NVIDIA H200") == 4.8e12
    with pytest.raises(KeyError, match="no HBM bandwidth known"):
        hbm_bandwidth("NVIDIA L4")


def test_decode_roofline_table_runs():
    out = run("decode_roofline.py", "--models", "transformer", "mamba100", "--batch", "512").stdout
    rows = [line for line in out.splitlines() if line.startswith("| transformer") or line.startswith("| mamba100")]
    assert len(rows) == 2 and float(rows[0].split("|")[-2]) > float(rows[1].split("|")[-2]) > 0
