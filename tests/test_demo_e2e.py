"""The demo study end to end on the CPU (configs/demo.yaml shrunk by configs/test.yaml), then
what a user does next: rerun after a config change, a targeted figure, the exported models."""

import json
import re

import pytest

from conftest import REPO, snakemake

pytestmark = pytest.mark.slow

TABLES = [f"tables/{t}.{e}" for t in ("table1", "table7") for e in ("csv", "md", "tex")]
FIGURES = [f"figures/{f}.{e}" for f in ("fig2", "fig3", "fig4", "fig5", "fig9", "gpu_seconds") for e in ("pdf", "png")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    overlay = tmp / "results.yaml"
    overlay.write_text(f"results_dir: {tmp / 'results'}\n")
    configs = ["--configfile", "configs/demo.yaml", "configs/test.yaml", str(overlay)]
    snakemake("-c2", "all", "export", *configs)
    return tmp / "results", configs, tmp


def planned(stdout: str) -> dict[str, int]:
    if "Nothing to be done" in stdout:
        return {}
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_every_table_and_figure_is_written(demo):
    results, _, _ = demo
    for rel in TABLES + FIGURES + ["data/train/contamination.csv"]:
        assert (results / rel).stat().st_size > 200, rel
    table1 = (results / "tables/table1.csv").read_text()
    assert "Key-Value Binding Error" in table1 and "GDN50" in table1 + (results / "tables/table1.md").read_text()


def test_stage_outputs_are_consistent(demo):
    results, _, _ = demo
    for model in ("transformer", "gdn50"):
        meta = json.loads((results / f"pretrain/{model}/config.json").read_text())
        assert meta["n_params"] > 0
        metrics = [json.loads(l) for l in (results / f"pretrain/{model}/metrics.jsonl").read_text().splitlines()]
        assert metrics[-1]["step"] == 40 and metrics[-1]["loss"] < metrics[0]["loss"]
        for ds in ("gsm8k", "math500"):
            rows = [json.loads(l) for l in (results / f"samples/{model}/{ds}/part-0.jsonl").read_text().splitlines()]
            assert len(rows) == 12 * 4  # problems x samples
            assert {r["sample_idx"] for r in rows} == set(range(4))
            judged = (results / f"judge/{model}/{ds}.jsonl").read_text().splitlines()
            assert len(judged) == 12 * 2  # problems x judge.first_k
            curves = (results / f"vote/{model}/{ds}.curves.csv").read_text().splitlines()
            assert curves[0].startswith("k,maj_exact") and len(curves) == 1 + 4


def test_nothing_to_do_when_up_to_date(demo):
    _, configs, _ = demo
    assert planned(snakemake("-n", "all", *configs).stdout) == {}


def test_changing_judge_settings_reruns_judge_and_report_only(demo):
    _, configs, tmp = demo
    change = tmp / "judge.yaml"
    change.write_text("judge:\n  first_k: 1\n")
    counts = planned(snakemake("-n", "all", *configs, str(change)).stdout)
    assert set(counts) == {"judge", "table1", "table7", "fig3", "fig9", "all"}, counts


def test_one_figure_builds_only_what_it_needs(demo):
    results, configs, _ = demo
    (results / "figures/fig3.pdf").unlink()
    out = snakemake("-n", str(results / "figures/fig3.pdf"), *configs).stdout
    assert planned(out) == {"fig3": 1}


def test_every_model_exports_for_transformers(demo):
    """`snakemake export`: each model loads with AutoModelForCausalLM and gives its checkpoint's logits."""
    transformers = pytest.importorskip("transformers")
    import torch

    from recall2reason.models import load_model

    results, _, _ = demo
    prompt = json.loads((results / "data/eval/gsm8k.jsonl").read_text().splitlines()[0])["prompt"]
    for model, cls in (("transformer", "LlamaForCausalLM"), ("gdn50", "Recall2ReasonForCausalLM")):
        out = results / "export" / model
        hf = transformers.AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True).float().eval()
        tok = transformers.AutoTokenizer.from_pretrained(out, trust_remote_code=True)
        assert type(hf).__name__ == cls
        ours, _ = load_model(results / "pretrain" / model)
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            want, got = ours.eval()(ids), hf(ids).logits
        assert (got - want).abs().max() <= 1e-5 * want.abs().max(), model
