"""The DAG itself: planning the paper study, targeted builds, config validation, lint."""

import json
import re
import shlex
import subprocess

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
    assert counts["probe"] == 13 and counts["probe_set"] == 1
    for rule in ("table1", "table7", "extraction", "judge_validation", "fig2", "fig3", "fig4", "fig5", "fig9",
                 "gpu_seconds", "contamination", "recall", "recall_vs_reasoning", "recall_table"):
        assert counts[rule] == 1, rule


def test_fig3_plans_only_the_gsm8k_branch():
    out = snakemake("-n", "results/figures/fig3.pdf").stdout
    counts = job_counts(out)
    assert counts == {"eval_set": 1, "tokenizer": 1, "tokenize": 1, "pretrain": 13, "sample": 13,
                      "vote": 13, "judge": 13, "fig3": 1}
    assert "math500" not in out


def test_recall_figure_plans_only_pretraining_and_probes():
    out = snakemake("-n", "results/figures/recall.pdf").stdout
    assert job_counts(out) == {"tokenizer": 1, "tokenize": 1, "pretrain": 13, "probe_set": 1, "probe": 13, "recall": 1}
    assert "eval_set" not in out and "rule sample" not in out


def test_recall_vs_reasoning_plans_the_gsm8k_branch_and_the_probes():
    counts = job_counts(snakemake("-n", "results/figures/recall_vs_reasoning.pdf").stdout)
    assert counts == {"eval_set": 1, "tokenizer": 1, "tokenize": 1, "pretrain": 13, "sample": 13, "vote": 13,
                      "judge": 13, "probe_set": 1, "probe": 13, "recall_vs_reasoning": 1}


def test_probe_jobs_get_the_engine_keys_only(tmp_path):
    """Each probe job's --cfg holds the probe decoding keys, the sampler's engine keys and the
    extractor timeout only: sampling settings (n, temperature) and the probe set's keys leave it
    as it is (a new probe set reruns the probes as a changed input file)."""
    (tmp_path / "c.yaml").write_text("models:\n  only: [gla50]\n")
    out = snakemake("-n", "-p", "results/probes/gla50.jsonl", "--configfile", str(tmp_path / "c.yaml")).stdout
    cmd = next(line for line in out.splitlines() if "recall2reason.probe run" in line)
    cfg = json.loads(re.search(r"--cfg '([^']+)'", cmd).group(1))
    assert cfg == {"probe": {"batch_size": 256, "max_new_tokens": 128},
                   "sample": {"attention_kernel": True, "compile": True, "cuda_graph": True, "dtype": "auto",
                              "prompt_prefix": "eos", "sync_every": 4},
                   "vote": {"timeout_s": 5}}
    (tmp_path / "n.yaml").write_text("sample:\n  n: 8\n  temperature: 0.5\nprobe:\n  per_cell: 3\n")
    again = snakemake("-n", "-p", "results/probes/gla50.jsonl", "--configfile", str(tmp_path / "c.yaml"), str(tmp_path / "n.yaml")).stdout
    assert cmd in again.splitlines()  # the probe job's command is unchanged (only the probe set's is not)


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
        ("probe:\n  ks: [2, 128]\n", "probe.ks.1: 128 is greater than the maximum of 64"),
        ("probe:\n  kinds: [binding, recall]\n", "probe.kinds.1: 'recall' is not one of"),
        ("probe:\n  max_value: 50\n", "probe.max_value: 50 leaves 49 numbers"),
        ("report:\n  correlation: {bootstrap: -1}\n", "report.correlation.bootstrap: -1 is less than the minimum of 0"),
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


def test_gpu_smoke_study_plans_all_13_models_on_the_gpu_profile(shared_dir):
    """configs/gpu-smoke.yaml (real data from ../shared): the 13 architectures at the paper's depth,
    every GPU job taking one of the workstation profile's `gpu_jobs`, sharing one compile cache."""
    out = snakemake("-n", "-p", "all", "--profile", "workstation", "--resources", "gpu_jobs=6",
                    "--configfile", "configs/gpu-smoke.yaml").stdout
    counts = job_counts(out)
    assert counts["pretrain"] == 13 and counts["sample"] == 26 and counts["judge"] == 26
    cmds = [line for line in out.splitlines() if "recall2reason.pretrain --cfg" in line or "recall2reason.sample --cfg" in line]
    assert len(cmds) == 13 + 26 and all("; exec python -m" in c for c in cmds)
    assert all("--compile-cache results/gpu-smoke/.cache/compile" in c for c in cmds)
    layers = {re.search(r'"name":"(\w+)"', c).group(1): re.search(r'"layers":\[([^]]*)\]', c).group(1).count("attention")
              for c in cmds if "recall2reason.pretrain" in c}
    assert layers["transformer"] == 12 and layers["gdn50"] == 6 and layers["mamba83"] == 2 and layers["gla100"] == 0
    assert re.search(r'"n_layers":12', cmds[0]) and re.search(r'"d_model":256', cmds[0])


def test_the_500m_study_size_plans_13_models_of_its_stated_sizes():
    """configs/scale-500m.yaml: the 13 models at d_model 1024 x 24 layers, of the sizes its header
    states, with the paper's placements scaled to 24 layers and micro-batches that split the batch."""
    import torch
    import yaml

    from recall2reason.models import build_model
    from recall2reason.study import expand_models

    out = snakemake("-n", "-p", "all", "--configfile", "configs/scale-500m.yaml").stdout
    counts = job_counts(out)
    assert counts["pretrain"] == 13 and counts["sample"] == 26
    cmds = [line for line in out.splitlines() if "recall2reason.pretrain --cfg" in line]
    assert all("results/scale-500m/" in c and '"d_model":1024' in c and '"n_layers":24' in c for c in cmds)
    base, over = (yaml.safe_load((REPO / p).read_text()) for p in ("config.yaml", "configs/scale-500m.yaml"))
    models = {**base["models"], **over["models"], "base": {**base["models"]["base"], **over["models"]["base"]},
              "mixers": {**base["models"]["mixers"], "mamba": {**base["models"]["mixers"]["mamba"], "dt_rank": None}}}
    sizes = {}
    for spec in expand_models(models):
        with torch.device("meta"):  # shapes only, no memory
            sizes[spec.name] = round(build_model(spec.model_config("reference")).num_params() / 1e6)
    assert sizes["transformer"] == 468 and sizes["gla100"] == sizes["gdn50"] == 469
    assert 448 <= min(v for k, v in sizes.items() if k.startswith("mamba")) <= max(
        v for k, v in sizes.items() if k.startswith("mamba")) <= 458
    header = (REPO / "configs/scale-500m.yaml").read_text().split("\n\n")[0]
    assert "Transformer 468M, GLA / GDN 469M, Mamba 448-458M" in header


@pytest.mark.parametrize(
    "judge, named",
    [
        ("{backend: gemini, model: gemini-2.5-flash-lite}", "neither GEMINI_API_KEY nor GOOGLE_API_KEY is set"),
        ("{backend: openai, model: m, base_url: 'http://127.0.0.1:9/v1'}", "judge.base_url http://127.0.0.1:9/v1: cannot connect"),
    ],
)
def test_dry_run_warns_what_the_judge_preflight_would_stop_on(tmp_path, monkeypatch, judge, named):
    for key in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    over = tmp_path / "c.yaml"
    over.write_text(f"results_dir: {tmp_path / 'results'}\njudge: {judge}\n")
    proc = snakemake("-n", "all", "--configfile", "configs/demo.yaml", "configs/test.yaml", str(over))
    out = proc.stdout + proc.stderr
    assert out.count("judge preflight: ") == 1 and named in out  # once, not once per judge job
    assert "This was a dry-run" in out


def _rule_body(rule: str) -> str:
    text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    return re.search(rf"^rule {rule}:.*?\n(.*?)(?=^\S|\Z)", text, re.S | re.M).group(1)


LONG_RULES = ("tokenizer", "tokenize", "contamination", "pretrain", "sample", "probe_set", "probe", "vote", "judge")


@pytest.mark.parametrize("rule", LONG_RULES)
def test_long_rules_exec_their_stage(rule):
    """`exec python ...`: the job's shell becomes the stage, so a TERM or KILL to the job reaches it
    and no orphan keeps writing next to a rerun."""
    body = _rule_body(rule)
    command = re.search(r"^    shell:\n(?:\s*#.*\n)*\s*(?:KEEP_PREVIOUS_LOG \+ )?\"(.*?)\"", body, re.M).group(1)
    assert command.startswith("exec python -m recall2reason."), command


def test_a_retried_gpu_job_keeps_the_failed_attempts_log(tmp_path):
    """pretrain / sample / probe run KEEP_PREVIOUS_LOG first: the profiles retry a crashed job, and
    the retry's `> {log}` would otherwise erase the only trace of why the first attempt failed."""
    text = (REPO / "workflow" / "rules" / "common.smk").read_text()
    keep = re.search(r'^KEEP_PREVIOUS_LOG = "(.*)"$', text, re.M).group(1)
    log = tmp_path / "logs dir" / "pretrain" / "gla75.log"
    log.parent.mkdir(parents=True)
    attempt = keep.replace("{log:q}", shlex.quote(str(log))) + "echo attempt $1 > " + shlex.quote(str(log))
    for n in (1, 2):
        subprocess.run(["bash", "-c", attempt, "-", str(n)], check=True)
    assert log.read_text() == "attempt 2\n" and log.with_name("gla75.log.previous").read_text() == "attempt 1\n"
    for rule in ("pretrain", "sample", "probe"):
        assert "KEEP_PREVIOUS_LOG + " in _rule_body(rule), rule
