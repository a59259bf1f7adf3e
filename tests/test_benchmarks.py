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
