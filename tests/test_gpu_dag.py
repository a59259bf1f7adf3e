"""GPU: a reduced GPU smoke study (configs/gpu-smoke.yaml) through Snakemake, every stage a job.

Real Llama-2 tokenizer and GSM8K / MATH text from ../shared, the kernels backend, torch.compile,
CUDA-graph training micro-steps and the compiled, graphed Triton sampler, then vote, judge and
every table and figure: what `make gpu-smoke` runs, with two or three models and a few steps.
Skipped with the reason where CUDA, the kernel packages or ../shared are missing. On the device:
``python -m pytest -ra tests/test_gpu_dag.py``.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import REPO, SHARED, snakemake

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

if not torch.cuda.is_available():
    pytest.skip("no CUDA device: the GPU smoke DAG needs one", allow_module_level=True)

from recall2reason.models.layers import get_mixer  # noqa: E402

TABLES = [f"tables/{t}.{e}" for t in ("table1", "table7", "recall") for e in ("csv", "md", "tex")] + [
    "tables/extraction.csv", "tables/extraction.md", "tables/judge_validation.md"]
FIGURES = [f"figures/{f}.{e}" for f in ("fig2", "fig3", "fig4", "fig5", "fig9", "gpu_seconds", "recall", "recall_vs_reasoning")
           for e in ("pdf", "png")]


def _models() -> list[str]:
    if not get_mixer("gla").kernels_available():
        pytest.skip("flash-linear-attention is not importable: no kernels backend for GLA / GDN")
    # mamba50 too where mamba-ssm is built (it compiles from source on the GPU node)
    return ["transformer", "gla50"] + (["mamba50"] if get_mixer("mamba").kernels_available() else [])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if not SHARED.is_dir():  # (conftest's shared_dir fixture is function-scoped)
        pytest.skip(f"{SHARED} (the shared reference data) is not present")
    models = _models()
    tmp = tmp_path_factory.mktemp("gpu_smoke")
    overlay = tmp / "reduced.yaml"
    overlay.write_text(json.dumps({
        "results_dir": str(tmp / "results"),
        "models": {"only": models},
        "eval": {"gsm8k": {"limit": 8}, "math500": {"limit": 4}},
        "train": {"max_steps": 12, "warmup_steps": 4, "log_every": 4},
        "sample": {"n": 8, "max_new_tokens": 48},
        "judge": {"first_k": 2},
        "probe": {"ks": [2, 8], "per_cell": 2, "max_new_tokens": 16},
    }))
    configs = ["--configfile", "configs/gpu-smoke.yaml", str(overlay)]
    # as `make gpu-smoke` runs it (greedy scheduler: the device image has no pulp for the ILP one)
    snakemake("all", "--profile", "workstation", "--resources", f"gpu_jobs={len(models)}", "--set-threads", "pretrain=2",
              "sample=2", "probe=2", "vote=2", "--scheduler", "greedy", *configs, timeout=900)
    return tmp / "results", models, configs


def test_every_table_and_figure_is_written(smoke):
    results, _, _ = smoke
    for rel in TABLES + FIGURES + ["data/train/contamination.csv"]:
        assert (results / rel).stat().st_size > 200, rel


def test_gpu_stages_ran_the_kernels_compiled_and_graphed(smoke):
    results, models, _ = smoke
    for model in models:
        meta = json.loads((results / f"pretrain/{model}/config.json").read_text())
        assert meta["backend"] == "kernels", (model, meta["backend"])
        assert meta["device"].startswith("NVIDIA"), meta["device"]
        log = (results / f"logs/pretrain/{model}.log").read_text()
        assert "CUDA graph: captured the micro-step" in log and "training eagerly" not in log, log[-3000:]
        metrics = [json.loads(line) for line in (results / f"pretrain/{model}/metrics.jsonl").read_text().splitlines()]
        assert metrics[-1]["step"] == 12 and metrics[-1]["loss"] < metrics[0]["loss"], metrics
        for ds in ("gsm8k", "math500"):
            slog = (results / f"logs/sample/{model}/{ds}/part-0.log").read_text()
            assert "first completion after" in slog and "decode step failed" not in slog, slog[-3000:]
            stats = json.loads((results / f"samples/{model}/{ds}/part-0.stats.json").read_text())
            assert stats["device"].startswith("NVIDIA") and stats["tokens_per_s"] > 0, stats
            rows = (results / f"samples/{model}/{ds}/part-0.jsonl").read_text().splitlines()
            assert len(rows) == {"gsm8k": 8, "math500": 4}[ds] * 8
        probes = (results / f"probes/{model}.jsonl").read_text().splitlines()
        assert len(probes) == 4 * 2 * 3 * 2  # kinds x ks x distances x per_cell


def test_up_to_date_after_the_run(smoke):
    _, _, configs = smoke
    out = snakemake("-n", "all", *configs).stdout
    assert "Nothing to be done" in out, out[-2000:]
