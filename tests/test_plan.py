"""The study's cost plan (`python -m recall2reason.plan`): the table against its benchmark reports, totals
computed by hand, the fallback marks, unknown GPU kinds, the dry run's line, bad configs."""

import json
import re
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, snakemake
from recall2reason.common import ConfigError, from_dict
from recall2reason.judge.config import JudgeConfig
from recall2reason.judge.estimate import estimate_sets
from recall2reason.plan import PlanConfig, PlanError, load_study_config, load_table, plan_study, resolve, total_line
from recall2reason.plan.config import PAPER_TOKENS_PER_EPOCH
from recall2reason.plan.study import eval_rows, pretrain_tokens
from recall2reason.plan.table import GPU_KINDS, TABLE_PATH, default_table

COST_LINE = "study cost (python -m recall2reason.plan for the table): "


def overlay(tmp_path, text: str, name: str = "c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -------------------------------------------------------------------------------- the table


def test_every_figure_is_copied_from_its_report():
    """No number of the table is invented: each appears, as the report writes it, in the report
    file the row names, and so does its date."""
    table = load_table()
    assert table.rows
    for r in table.rows:
        assert re.fullmatch(r"benchmarks/reports/\d{4}-\d{2}-\d{2}-[a-z0-9-]+\.md", r.report), r.report
        path = REPO / r.report
        assert path.is_file(), f"{r.stage} {r.model} {r.gpu}: no report {r.report}"
        body = path.read_text()
        for figure in (r.tokens_per_s, r.transformer_tokens_per_s):
            assert f"{figure:,}" in body, (r.stage, r.model, r.gpu, figure, r.report)
        assert r.date in body, (r.model, r.date, r.report)


def test_table_rows_say_whether_they_are_current():
    seen = set()
    for r in load_table().rows:
        key = (r.stage, r.model, r.gpu)
        assert key not in seen, f"two rows for {key}: keep the latest only"
        seen.add(key)
        assert r.current == (r.stale is None), f"{key}: a stale row says why (stale:), a current one does not"
        assert re.fullmatch(r"[0-9a-f]{7,40}", r.commit) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.date)


def test_a_gpu_kind_outside_the_known_ones_is_refused_in_the_table(tmp_path):
    data = yaml.safe_load(TABLE_PATH.read_text())
    data["pretrain"][0]["gpu"] = "b200"
    with pytest.raises(PlanError, match=r"pretrain\[0\]: gpu 'b200' is not one of"):
        load_table(overlay(tmp_path, yaml.safe_dump(data), "t.yaml"))


# -------------------------------------------------------------------------------- totals by hand

# round numbers, so that every expected figure below can be checked with a pencil
HAND_TABLE = """
shape: {seq_len: 2048, base: {d_model: 768}, mixers: {}}
pretrain:
  - {model: transformer, gpu: h100, tokens_per_s: 500000, transformer_tokens_per_s: 500000, date: 2026-12-06,
     commit: aaaaaaa, current: true, report: x.md}
  - {model: gla50, gpu: h100, tokens_per_s: 400000, transformer_tokens_per_s: 500000, date: 2026-12-06,
     commit: aaaaaaa, current: true, report: x.md}
  - {model: gla100, gpu: h200, tokens_per_s: 300000, transformer_tokens_per_s: 400000, date: 2026-12-02,
     commit: bbbbbbb, current: false, stale: "before everything", report: z.md}
sample:
  - {model: transformer, gpu: h200, tokens_per_s: 96000, transformer_tokens_per_s: 96000, date: 2026-12-03,
     commit: ccccccc, current: true, report: t.md}
  - {model: gla50, gpu: h200, tokens_per_s: 120000, transformer_tokens_per_s: 96000, date: 2026-12-03,
     commit: ccccccc, current: true, report: t.md}
"""

SMALL_STUDY = """
models: {only: [transformer, gla50, gla75]}
train: {max_steps: 1000}
eval:
  gsm8k: {format: synthetic_gsm8k, n: 10}
  math500: {format: synthetic_math, n: 5}
sample: {n: 4}
probe: {per_cell: 1}
judge: {first_k: 2}
plan: {completion_tokens: 100}
"""


def test_small_study_totals_match_the_table_by_hand(tmp_path):
    table = load_table(overlay(tmp_path, HAND_TABLE, "t.yaml"))
    config = load_study_config([overlay(tmp_path, SMALL_STUDY)], root=REPO)
    p = plan_study(config, table=table)

    train_tokens = 1000 * 524288
    # gla75 was never measured: a tie between gla50 (25 points away) and gla100 (25): the slower,
    # gla100, whose stale h200 ratio 300k / 400k = 0.75 carries over to the h100 Transformer's 500k
    train = {"transformer": 500_000, "gla50": 400_000, "gla75": 0.75 * 500_000}
    # no h100 decode figure: the h200 Transformer's 96k x 3.35 / 4.8 (HBM bandwidth), gla50 by its
    # ratio 120k / 96k = 1.25; gla75's nearest sibling with a decode figure is gla50
    t_dec = 96_000 * 3.35 / 4.8
    dec = {"transformer": t_dec, "gla50": 1.25 * t_dec, "gla75": 1.25 * t_dec}
    sample_tokens = (10 + 5) * 4 * 100
    probe_tokens = 4 * 6 * 3 * 1 * 128

    rows = {s: {r["model"]: r for r in p["stages"][s]["models"]} for s in p["stages"]}
    for m in train:
        assert rows["pretrain"][m]["tokens_per_s"] == pytest.approx(train[m])
        assert rows["pretrain"][m]["gpu_hours"] == pytest.approx(train_tokens / train[m] / 3600)
        assert rows["sample"][m]["gpu_hours"] == pytest.approx(sample_tokens / dec[m] / 3600)
        assert rows["probe"][m]["gpu_hours"] == pytest.approx(probe_tokens / dec[m] / 3600)
    expected = sum(train_tokens / train[m] / 3600 + (sample_tokens + probe_tokens) / dec[m] / 3600 for m in train)
    assert p["total"]["gpu_hours"] == pytest.approx(expected)
    assert p["total"]["complete"] and p["total"]["unknown"] == []

    # the judge: 15 problems x first_k 2 x 3 models, priced by the judge's own estimate
    assert p["judge"]["calls"] == 15 * 2 * 3
    sets, _ = eval_rows(config, REPO)
    est = estimate_sets(from_dict(JudgeConfig, config["judge"], "judge"), list(sets.items()), 3, 100)
    assert p["total"]["dollars_online"] == est["dollars_online"] > 0
    assert p["total"]["dollars_batch"] == est["dollars_batch"]
    assert f"{expected:.1f} h100 GPU-hours" in total_line(p)


def test_pretraining_tokens_come_from_max_steps_the_manifest_or_the_paper(tmp_path):
    config = load_study_config(root=REPO)
    tokens, how = pretrain_tokens(config, PlanConfig(), tmp_path)
    steps = int(((int(PAPER_TOKENS_PER_EPOCH) - 1) // 2048) * 4 / 256)
    assert tokens == steps * 524288 and round(tokens / 1e9, 1) == 37.1 and "App. B" in how
    manifest = tmp_path / "results/data/train/manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"epochs": 2, "shards": [{"n_tokens": 2048 * 256 * 3 + 1}, {"n_tokens": 2048 * 256}]}))
    tokens, how = pretrain_tokens(config, PlanConfig(), tmp_path)
    assert tokens == 8 * 524288 and "manifest" in how  # (4 x 256 sequences) x 2 epochs / 256 per step
    demo = load_study_config(["configs/demo.yaml"], root=REPO)
    assert pretrain_tokens({**demo, "train": {**demo["train"], "max_steps": None}}, PlanConfig(), tmp_path)[0] is None


# -------------------------------------------------------------------------------- marks


def test_rates_without_a_current_measurement_are_marked():
    t = default_table()
    assert resolve(t, "pretrain", "transformer", "h100").kind == "measured"
    assert resolve(t, "pretrain", "gla50", "h100").kind == "measured"
    stale = resolve(t, "pretrain", "mamba100", "h100")
    assert stale.kind == "ratio" and stale.flagged and "STALE" in stale.how and "on h200" in stale.how
    sib = resolve(t, "pretrain", "mamba75", "h100", "mamba", 75.0)
    assert sib.kind == "sibling" and "never measured; SIBLING mamba100" in sib.how and "STALE" in sib.how
    sib = resolve(t, "pretrain", "gla75", "h100", "gla", 75.0)  # a current sibling: flagged, not stale
    assert sib.kind == "sibling" and sib.flagged and "never measured; SIBLING gla100's: measured" in sib.how
    assert "STALE" not in sib.how
    assert resolve(t, "pretrain", "gdn83", "h100", "gdn", 83.3).how.startswith("never measured; SIBLING gdn100")
    assert resolve(t, "pretrain", "transformer", "h200").kind == "stale"  # before the whole-model compile
    with pytest.raises(PlanError, match="no figure of 'rwkv50' nor of any rwkv model"):
        resolve(t, "pretrain", "rwkv50", "h100", "rwkv", 50.0)


def test_the_printed_plan_marks_every_estimated_rate():
    out = subprocess.run([sys.executable, "-m", "recall2reason.plan", "--configfile", "configs/demo.yaml",
                          "configs/test.yaml"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "no measured figure for this shape: data.seq_len 256 (measured 2048), d_model 64 (measured 768)" in out
    out = subprocess.run([sys.executable, "-m", "recall2reason.plan"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    lines = {ln.split()[0]: ln for ln in out.splitlines()[:20] if ln.startswith("  ") and "37.10 B" in ln}
    assert set(lines) == {"transformer", "mamba50", "mamba75", "mamba83", "mamba100", "gla50", "gla75", "gla83",
                          "gla100", "gdn50", "gdn75", "gdn83", "gdn100"}
    for m in ("mamba75", "mamba83", "gla75", "gla83", "gdn75", "gdn83"):
        assert "never measured; SIBLING" in lines[m], lines[m]
    for m in ("mamba75", "mamba83", "mamba100", "gdn75", "gdn83", "gdn100"):
        assert "STALE" in lines[m], lines[m]
    for m in ("transformer", "mamba50", "gla50", "gdn50", "gla100"):
        assert lines[m].rstrip().endswith("]") and "measured [" in lines[m], lines[m]
    assert "8 of 13 pretrain rates stale or estimated" in out
    assert "not counted: eval.gsm8k comes from the Hub" in out  # never a silent zero


# -------------------------------------------------------------------------------- GPU kinds


def test_unknown_gpu_kind_is_an_error_naming_the_known_ones():
    config = load_study_config(root=REPO)
    with pytest.raises(PlanError, match=r"unknown GPU kind 'b200': known kinds are h100, h200"):
        plan_study(config, PlanConfig(gpu="b200"))
    proc = subprocess.run([sys.executable, "-m", "recall2reason.plan", "--gpu", "b200"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "error: unknown GPU kind 'b200'" in proc.stderr and proc.stdout == ""


def test_a_gpu_kind_without_figures_is_scaled_by_datasheet_peaks_and_says_so():
    t = default_table()
    a100 = resolve(t, "pretrain", "transformer", "a100")
    assert a100.kind == "scaled" and a100.tokens_per_s == pytest.approx(473117 * 312.0 / 989.4)
    assert "SCALED from h100 x 312/989.4 (bf16 dense TFLOP/s, datasheet: an assumption)" in a100.how
    dec = resolve(t, "sample", "transformer", "a100")  # the decode step is bandwidth-bound: scaled by HBM
    assert dec.kind == "scaled" and dec.tokens_per_s == pytest.approx(97242 * 2.039 / 3.35) and "HBM bandwidth" in dec.how
    gla = resolve(t, "pretrain", "gla50", "a100")
    assert gla.kind == "ratio" and gla.tokens_per_s == pytest.approx(428644 / 473117 * a100.tokens_per_s)


def test_plan_section_defaults_match_the_schema_and_the_dataclass():
    section = yaml.safe_load((REPO / "config.yaml").read_text())["plan"]
    schema = yaml.safe_load((REPO / "workflow/schemas/sections/plan.schema.yaml").read_text())
    assert set(section) == set(schema["properties"]) == set(PlanConfig.__dataclass_fields__)
    for key, spec in schema["properties"].items():
        assert spec["default"] == getattr(PlanConfig(), key) == section[key], key
    assert schema["properties"]["gpu"]["enum"] == list(GPU_KINDS)


# -------------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("plan:\n  gpu: b200\n", "plan.gpu: 'b200' is not one of"),
        ("plan:\n  completion_tokens: 0\n", "plan.completion_tokens: 0 is less than the minimum of 1"),
        ("train:\n  lr: -1\n", "train.lr: -1 is less than or equal to the minimum of 0"),
        ("models:\n  only: [transformer, gdn51]\n", "models.only names unknown model(s) ['gdn51']"),
        ("train:\n  micro_batch_size: {tranformer: 64}\n", "train.micro_batch_size.tranformer: no model of that name"),
        ("- just\n- a list\n", "expected a mapping at the top level, got list"),
    ],
)
def test_bad_config_is_named_clearly(tmp_path, yaml_text, message):
    bad = overlay(tmp_path, yaml_text, "bad.yaml")
    proc = subprocess.run([sys.executable, "-m", "recall2reason.plan", "--configfile", str(bad)], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config file '.*nope.yaml' does not exist"):
        load_study_config([tmp_path / "nope.yaml"], root=REPO)
    with pytest.raises(ConfigError, match="run from the repository root, or pass --base"):
        load_study_config(root=tmp_path)


# -------------------------------------------------------------------------------- the dry run


def test_dry_run_prints_the_study_cost_once(tmp_path):
    c = overlay(tmp_path, SMALL_STUDY + f"results_dir: {tmp_path / 'results'}\n")
    proc = snakemake("-n", "all", "--configfile", str(c))
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith(COST_LINE)]
    assert len(lines) == 1
    expected = total_line(plan_study(load_study_config([c], root=REPO), root=REPO))
    assert lines[0] == COST_LINE + expected and "h100 GPU-hours" in expected and "unknown" not in expected


def test_dry_run_with_unknown_parts_says_so_and_still_plans():
    """The paper config reads its eval sets from the Hub: the line names them as unknown, and the
    dry run itself succeeds."""
    proc = snakemake("-n", "all")
    line = next(ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith(COST_LINE))
    assert line.startswith(COST_LINE + "at least ") and "judge $ unknown" in line
    assert "unknown: sample, judge: eval.gsm8k comes from the Hub" in line and "This was a dry-run" in proc.stdout


def test_paper_study_total_in_the_readme_is_what_the_plan_prints(shared_dir, tmp_path):
    """README, "Before you start": the command and the total it prints for the paper study."""
    paths = overlay(tmp_path, "eval:\n  gsm8k: {path: ../shared/data/gsm8k/test.jsonl}\n"
                              "  math500: {path: ../shared/data/math500/test.jsonl}\n")
    out = subprocess.run([sys.executable, "-m", "recall2reason.plan", "--configfile", str(paths)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    total = next(ln for ln in out.splitlines() if ln.startswith("total: "))
    assert "at least" not in total
    readme = (REPO / "README.md").read_text()
    assert total in readme, f"README's cost section is out of date; the plan now prints:\n{total}"
