"""The DAG itself: planning the paper study, targeted builds, config validation, lint."""

import re

import pytest

from conftest import REPO, snakemake


def job_counts(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_paper_study_plans_every_job_offline():
    counts = job_counts(snakemake("-n", "all").stdout)
    assert counts["pretrain"] == 13
    assert counts["sample"] == 26 and counts["vote"] == 26 and counts["judge"] == 26
    assert counts["tokenizer"] == counts["tokenize"] == 1 and counts["eval_set"] == 2
    for rule in ("table1", "table7", "extraction", "judge_validation", "fig2", "fig3", "fig4", "fig5", "fig9", "gpu_seconds", "contamination"):
        assert counts[rule] == 1, rule


def test_fig3_plans_only_the_gsm8k_branch():
    out = snakemake("-n", "results/figures/fig3.pdf").stdout
    counts = job_counts(out)
    assert counts == {"eval_set": 1, "tokenizer": 1, "tokenize": 1, "pretrain": 13, "sample": 13,
                      "vote": 13, "judge": 13, "fig3": 1}
    assert "math500" not in out


def test_sample_jobs_split_the_samples(tmp_path):
    (tmp_path / "c.yaml").write_text("sample:\n  jobs: 4\n")
    counts = job_counts(snakemake("-n", "all", "--configfile", str(tmp_path / "c.yaml")).stdout)
    assert counts["sample"] == 13 * 2 * 4 and counts["vote"] == 26


def test_models_only_restricts_the_study(tmp_path):
    (tmp_path / "c.yaml").write_text("models:\n  only: [transformer, gdn50]\n")
    counts = job_counts(snakemake("-n", "all", "--configfile", str(tmp_path / "c.yaml")).stdout)
    assert counts["pretrain"] == 2 and counts["sample"] == 4


def test_each_pretrain_job_gets_its_own_micro_batch(tmp_path):
    """config.yaml gives some models their own micro-batch; each job's --cfg holds only its number
    (so changing one model's entry reruns only that model's pretraining)."""
    (tmp_path / "c.yaml").write_text("models:\n  only: [transformer, mamba50]\n")
    out = snakemake("-n", "-p", "all", "--configfile", str(tmp_path / "c.yaml")).stdout
    cmds = [line for line in out.splitlines() if "recall2reason.pretrain --cfg" in line]
    assert len(cmds) == 2
    mb = {re.search(r'"name":"(\w+)"', c).group(1): int(re.search(r'"micro_batch_size":(\d+)', c).group(1)) for c in cmds}
    assert mb == {"transformer": 64, "mamba50": 32}


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("train:\n  lr: -1\n", "train.lr: -1 is less than or equal to the minimum of 0"),
        ("sample:\n  temprature: 0.7\n", "'temprature' was unexpected"),
        ("models:\n  hybrid_classes: [mamba, rwkv]\n", "models.hybrid_classes.1: 'rwkv' is not one of"),
        ("eval:\n  gsm8k:\n    path: /nonexistent/test.jsonl\n", "eval.gsm8k.path: '/nonexistent/test.jsonl' does not exist"),
        ("models:\n  attention_layers: {'50': [1, 3, 12]}\n", "attention at layer(s) [12], but n_layers is 12"),
        ("models:\n  only: [transformer, gdn51]\n", "models.only names unknown model(s) ['gdn51']"),
        ("train:\n  micro_batch_size: {tranformer: 64}\n", "train.micro_batch_size.tranformer: no model of that name"),
        ("train:\n  micro_batch_size: {gla50: 0}\n", "train.micro_batch_size: {"),
    ],
)
def test_bad_config_stops_with_a_message_naming_the_key(tmp_path, yaml_text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml_text)
    proc = snakemake("-n", "all", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_missing_judge_api_key_stops_before_any_job(tmp_path, monkeypatch):
    for key in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    over = tmp_path / "c.yaml"
    over.write_text(f"results_dir: {tmp_path / 'results'}\njudge:\n  backend: gemini\n  model: gemini-2.5-flash-lite\n")
    proc = snakemake("-c1", "all", "--configfile", "configs/demo.yaml", "configs/test.yaml", str(over), check=False)
    assert proc.returncode != 0
    assert "judge preflight failed" in proc.stdout + proc.stderr and "GEMINI_API_KEY" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists() or not any(p.is_file() for p in (tmp_path / "results").rglob("*"))
