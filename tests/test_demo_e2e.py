"""The demo study end to end on the CPU (configs/demo.yaml shrunk by configs/test.yaml), then
what a user does next: rerun after a config change, a targeted figure, the exported models."""

import json
import re
from pathlib import Path

import pytest

from conftest import REPO, snakemake

pytestmark = pytest.mark.slow

TABLES = [f"tables/{t}.{e}" for t in ("table1", "table7", "recall") for e in ("csv", "md", "tex")] + [
    "tables/extraction.csv", "tables/extraction.md", "tables/judge_validation.md"]
FIGURES = [f"figures/{f}.{e}" for f in ("fig2", "fig3", "fig4", "fig5", "fig9", "gpu_seconds", "recall", "recall_vs_reasoning")
           for e in ("pdf", "png")]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    overlay = tmp / "results.yaml"
    overlay.write_text(f"results_dir: {tmp / 'results'}\n")
    configs = ["--configfile", "configs/demo.yaml", "configs/test.yaml", str(overlay)]
    run = snakemake("-c2", "all", "export", *configs)
    (tmp / "run.log").write_text(run.stderr)
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
        probes = [json.loads(l) for l in (results / f"probes/{model}.jsonl").read_text().splitlines()]
        assert len(probes) == 4 * 2 * 2 * 2  # kinds x ks x distances x per_cell (configs/test.yaml)
        summary = (results / f"probes/{model}.summary.csv").read_text().splitlines()
        assert summary[-1].startswith(f"all,all,all,{len(probes)},{sum(p['outcome'] == 'correct' for p in probes)},")
    probe_set = (results / "probes/probe_set.jsonl").read_text().splitlines()
    assert [json.loads(l)["id"] for l in probe_set] == [p["id"] for p in probes]
    correlation = (results / "tables/recall_correlation.csv").read_text()
    assert correlation.startswith("target,n_models,spearman,lo,hi,n_boot,n_defined\nkv_share,2,")


def test_every_model_trains_before_any_sampling_or_probing(demo):
    """Rule priorities: with slots for one job at a time (-c2), the trainings come first, then the
    samples, then the probes (the GPU smoke run without them filled its GPU slots with the probes of
    trained models while four Mamba models waited to train)."""
    started = re.findall(r"^(?:local)?rule (pretrain|sample|probe):", (demo[2] / "run.log").read_text(), re.M)
    assert started.count("pretrain") >= 2 and "probe" in started, started
    assert started == sorted(started, key=["pretrain", "sample", "probe"].index), started


def test_nothing_to_do_when_up_to_date(demo):
    _, configs, _ = demo
    assert planned(snakemake("-n", "all", *configs).stdout) == {}


def test_changing_judge_settings_reruns_judge_and_report_only(demo):
    _, configs, tmp = demo
    change = tmp / "judge.yaml"
    change.write_text("judge:\n  first_k: 1\n")
    counts = planned(snakemake("-n", "all", *configs, str(change)).stdout)
    assert set(counts) == {"judge", "table1", "table7", "fig3", "fig9", "recall_vs_reasoning", "recall_table", "all"}, counts


def test_changing_probe_decoding_reruns_probes_and_recall_outputs_only(demo):
    _, configs, tmp = demo
    change = tmp / "probe.yaml"
    change.write_text("probe:\n  max_new_tokens: 8\n")
    counts = planned(snakemake("-n", "all", *configs, str(change)).stdout)
    assert counts == {"probe": 2, "recall": 1, "recall_vs_reasoning": 1, "recall_table": 1, "all": 1}, counts


def test_one_figure_builds_only_what_it_needs(demo):
    results, configs, _ = demo
    (results / "figures/fig3.pdf").unlink()
    out = snakemake("-n", str(results / "figures/fig3.pdf"), *configs).stdout
    assert planned(out) == {"fig3": 1}
    (results / "figures/recall.pdf").unlink()
    assert planned(snakemake("-n", str(results / "figures/recall.pdf"), *configs).stdout) == {"recall": 1}


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (here: a test's own results folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_sigterm_to_snakemake_stops_its_jobs_and_a_rerun_resumes(demo, tmp_path):
    """TERM to the controlling Snakemake (a user's `kill`, a session's end): the running jobs get it
    too, save their progress and exit, Snakemake exits after them without waiting for the study, and
    the same command run again finishes it with the outputs of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    clean_results, _, _ = demo
    results = tmp_path / "results"
    overlay = tmp_path / "results.yaml"
    overlay.write_text(f"results_dir: {results}\n")
    configs = ["--configfile", "configs/demo.yaml", "configs/test.yaml", str(overlay)]
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "-c2", "all", *configs], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # until a pretrain job has done a step
        if any('"step": 1,' in p.read_text() for p in results.glob(".state/pretrain/*/metrics.jsonl")):
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0, out[-3000:]
    assert "stopping" in out and "running job process(es)" in out, out[-3000:]
    assert not _processes_mentioning(str(results)), "job processes left running"
    assert not (results / "tables/table1.csv").exists()
    assert any(results.glob(".state/pretrain/*/state.pt")), "no pretraining checkpoint written on TERM"
    snakemake("-c2", "all", *configs)  # the same command again
    for rel in ("tables/table1.csv", "vote/transformer/gsm8k.curves.csv", "vote/gdn50/math500.curves.csv"):
        assert (results / rel).read_text() == (clean_results / rel).read_text(), rel


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


def test_demo_ablations_build_with_their_own_target(demo, tmp_path):
    """`snakemake ablations` on the demo: Figures 6-8 and the spike table, reusing the study's
    trained GDN50 (a base) and training only the variants; `all` plans none of them. Three of the
    demo's six sets, one variant each besides the base, keep CI's cost at 4 pretraining jobs and
    1 GSM8K sample + vote job (the whole demo sweep: README, "Ablations")."""
    results, configs, _ = demo
    few = tmp_path / "few.yaml"
    few.write_text("ablations:\n  spikes: {window: 2}\n"  # 40 steps logged every 10: 5 points
                   "  figures: {fig6: [mamba_d_inner_d_xb], fig7: [mamba_dt_rank], fig8: [gdn50_attention]}\n")
    study_before = planned(snakemake("-n", "all", *configs, str(few)).stdout)  # other tests remove some figures
    counts = planned(snakemake("-n", "ablations", *configs, str(few)).stdout)
    assert counts == {"pretrain": 4, "sample": 1, "vote": 1, "fig6": 1, "fig7": 1, "fig8": 1, "ablation_spikes": 1,
                      "ablations": 1}, counts
    snakemake("-c2", "ablations", *configs, str(few), "--set-threads", "pretrain=1", "sample=1")
    for fig in ("fig6", "fig7", "fig8"):
        for ext in ("pdf", "png"):
            assert (results / f"figures/{fig}.{ext}").stat().st_size > 1000, (fig, ext)
    table = (results / "tables/ablation_spikes.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in table[1:]] == ["mamba50_d_xb32", "mamba50", "mamba50_dt_limit0p0001_1_dt_rank2",
                                                    "mamba50"]
    meta = json.loads((results / "pretrain/mamba50_d_xb32/config.json").read_text())
    assert meta["model"]["mamba"]["d_xb"] == 32 and meta["model"]["mamba"]["d_inner"] is None
    assert (results / "vote/gdn50_attn_0_3/gsm8k.curves.csv").is_file()
    assert not (results / "vote/mamba50_d_xb32").exists()  # loss figures need no sampling
    assert planned(snakemake("-n", "all", *configs, str(few)).stdout) == study_before  # the study is untouched
