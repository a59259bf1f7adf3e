"""Report stage: table arithmetic on hand-made judge output, every figure from demo-like results."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_report_data import CFG, MODELS, demo_results, train_tokenizer, write_curves, write_judge  # noqa: E402

from recall2reason.judge.categories import CATEGORIES, NO_ERROR  # noqa: E402
from recall2reason.report.__main__ import main  # noqa: E402
from recall2reason.report.flops import FlopModel  # noqa: E402
from recall2reason.report.tables import count_errors  # noqa: E402

KV, FLS, CALC = "Key-Value Binding Error", "Flawed Logical Synthesis", "Calculation Error"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    d = demo_results(root)
    d["tokenizer"] = train_tokenizer(root)
    return d


def _table(tmp_path, judge_files, which="table1", extra=()):
    out = {ext: tmp_path / f"{which}.{ext}" for ext in ("csv", "md", "tex")}
    rc = main(["table", "--which", which, "--cfg", CFG, "--judge", *map(str, judge_files),
               "--out-csv", str(out["csv"]), "--out-md", str(out["md"]), "--out-tex", str(out["tex"]), *extra])
    return rc, out


def test_table_averages_counts_over_generation_indices(tmp_path):
    # gdn50: index 0 has 3 KV errors, index 1 has 1 -> 2.0 per generation; FLS 1 and 2 -> 1.5
    g = tmp_path / "judge" / "gdn50" / "gsm8k.jsonl"
    write_judge(g, [{KV: 3, FLS: 1, NO_ERROR: 2, "Error": 1}, {KV: 1, FLS: 2, CALC: 1, NO_ERROR: 3}], [2, 0])
    t = tmp_path / "judge" / "transformer" / "gsm8k.jsonl"
    write_judge(t, [{FLS: 4, KV: 1, NO_ERROR: 2}, {FLS: 2, KV: 1, NO_ERROR: 4}], [0, 1])

    c = count_errors(g)
    assert (c.n_indices, c.n_problems, c.n_rows) == (2, 7, 14)
    assert c.means[KV] == 2.0 and c.means[FLS] == 1.5 and c.means[CALC] == 0.5
    assert c.means[NO_ERROR] == 2.5 and c.means["Judge error"] == 0.5
    assert c.means["Total errors"] == 4.0
    assert c.means["Judge vs math-verify disagreements"] == 1.0

    rc, out = _table(tmp_path, [g, t])  # given out of order: columns come in the paper's order
    assert rc == 0
    rows = list(csv.reader(out["csv"].open()))
    assert rows[0] == ["group", "category", "transformer", "gdn50"]
    assert [r[1] for r in rows[1:9]] == list(CATEGORIES)
    body = {r[1]: (float(r[2]), float(r[3])) for r in rows[1:]}
    assert body[KV] == (1.0, 2.0) and body[FLS] == (3.0, 1.5) and body["Total errors"] == (4.0, 4.0)

    md = out["md"].read_text()
    assert "| Key-Value Binding Error | 1.00 | **2.00** |" in md  # max of gdn50's column
    assert "| Flawed Logical Synthesis | **3.00** | 1.50 |" in md  # max of the Transformer's column
    assert "| Total errors | 4.00 | 4.00 |" in md  # extra rows are never marked
    assert md.index("Transformer") < md.index("GDN50")
    tex = out["tex"].read_text()
    assert r"\textbf{2.00}" in tex and r"\textbf{3.00}" in tex and r"Parametric Memory \& Procedural" in tex
    assert tex.count(r"\textbf") == 2


def test_table_ties_are_all_marked(tmp_path):
    j = tmp_path / "judge" / "gla50" / "math500.jsonl"
    write_judge(j, [{KV: 2, FLS: 2, NO_ERROR: 1}])
    rc, out = _table(tmp_path, [j], which="table7")
    assert rc == 0
    md = out["md"].read_text()
    assert "MATH500" in md and md.count("**2.00**") == 2


def test_table_bad_input_names_file_and_keeps_old_output(tmp_path, caplog):
    j = tmp_path / "judge" / "mamba50" / "gsm8k.jsonl"
    write_judge(j, [{KV: 1, NO_ERROR: 1}])
    rows = j.read_text().splitlines()
    bad = json.loads(rows[0]) | {"error_category": "Vibes Error", "error_group": "A"}
    j.write_text("\n".join([*rows, json.dumps(bad | {"problem_id": "p9"})]) + "\n")
    old = tmp_path / "table1.csv"
    old.write_text("previous\n")
    rc, _ = _table(tmp_path, [j])
    assert rc == 2 and old.read_text() == "previous\n"
    assert str(j) in caplog.text and "Vibes Error" in caplog.text

    j.write_text("\n".join([*rows, rows[0]]) + "\n")  # the same completion twice
    rc, _ = _table(tmp_path, [j])
    assert rc == 2 and "repeats problem" in caplog.text

    rc, _ = _table(tmp_path, [j], extra=("--names", "a", "b"))
    assert rc == 2 and "--names" in caplog.text


def _problems(path, rows):
    """vote problems.jsonl with (n, no_answer, no_ending) per problem."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"p{i}", "n": n, "no_answer": a, "no_ending": e}) + "\n"
                            for i, (n, a, e) in enumerate(rows)))  # fmt: skip
    return str(path)


def test_extraction_table_counts_no_answers(tmp_path, caplog):
    files = [
        _problems(tmp_path / "vote" / "gdn50" / "gsm8k.problems.jsonl", [(8, 2, 1), (8, 0, 0)]),
        _problems(tmp_path / "vote" / "gdn50" / "math500.problems.jsonl", [(8, 8, 8)]),
        _problems(tmp_path / "vote" / "transformer" / "gsm8k.problems.jsonl", [(8, 1, 0), (8, 0, 0)]),
    ]
    out_csv, out_md = tmp_path / "extraction.csv", tmp_path / "extraction.md"
    args = ["extraction", "--cfg", CFG, "--problems", *files, "--out-csv", str(out_csv), "--out-md", str(out_md)]
    assert main(args) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["model"], r["dataset"]) for r in rows] == [("transformer", "gsm8k"), ("gdn50", "gsm8k"), ("gdn50", "math500")]
    assert rows[1] == {"model": "gdn50", "dataset": "gsm8k", "problems": "2", "completions": "16", "no_answer": "2",
                       "no_answer_pct": "12.50", "no_ending": "1", "unreadable": "1"}  # fmt: skip
    md = out_md.read_text()
    assert "| Transformer | 6.2 | 0.0 | 6.2 | - | - | - |" in md and "| GDN50 | 12.5 | 6.2 | 6.2 | 100.0 | 100.0 | 0.0 |" in md

    _problems(tmp_path / "vote" / "gdn50" / "gsm8k.problems.jsonl", [(8, 2, 1), (8, 1, 3)])
    assert main(args) == 2
    assert f"{files[0]}:2" in caplog.text and "no_ending <= no_answer" in caplog.text


def _figure(name, out_dir, args):
    pdf, png = out_dir / f"{name}.pdf", out_dir / f"{name}.png"
    rc = main(["figure", name, "--cfg", CFG, *args, "--out-pdf", str(pdf), "--out-png", str(png)])
    assert rc == 0
    assert pdf.read_bytes()[:5] == b"%PDF-" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return pdf, png


def test_every_figure_builds(demo, tmp_path):
    m = demo["models"]
    curves = [m[n]["curves"] for n in MODELS]
    judge = [m[n]["judge"] for n in MODELS]
    for name in ("fig2", "fig4"):
        _figure(name, tmp_path, ["--curves", *curves])
    for name in ("fig3", "fig9"):
        _figure(name, tmp_path, ["--judge", *judge])
    _figure("fig5", tmp_path, ["--curves", *curves, "--model-configs", *[m[n]["pretrain"] for n in MODELS],
                               "--samples", *[p for n in MODELS for p in m[n]["samples"]],
                               "--eval", demo["eval"], "--tokenizer", demo["tokenizer"]])
    _figure("gpu_seconds", tmp_path, ["--curves", *curves, "--sample-stats", *[p for n in MODELS for p in m[n]["stats"]]])


def test_figures_are_deterministic_and_work_for_any_subset(demo, tmp_path):
    m = demo["models"]
    a = _figure("fig2", tmp_path / "a", ["--curves", m["gdn50"]["curves"], m["transformer"]["curves"]])
    b = _figure("fig2", tmp_path / "b", ["--curves", m["transformer"]["curves"], m["gdn50"]["curves"]])
    assert a[0].read_bytes() == b[0].read_bytes() and a[1].read_bytes() == b[1].read_bytes()
    _figure("fig2", tmp_path, ["--curves", m["transformer"]["curves"]])  # Transformer only
    _figure("fig3", tmp_path, ["--judge", m["transformer"]["judge"]])
    _figure("fig3", tmp_path, ["--judge", m["gla50"]["judge"]])  # a hybrid without its reference


def test_figure_rejects_bad_curves(tmp_path, caplog):
    c = tmp_path / "vote" / "gla50" / "gsm8k.curves.csv"
    write_curves(c, 0.2, 0.05)
    c.write_text(c.read_text().replace("maj_first_lo", "maj_first_low"))
    rc = main(["figure", "fig2", "--curves", str(c), "--out-png", str(tmp_path / "f.png")])
    assert rc == 2 and str(c) in caplog.text and "maj_first_lo" in caplog.text
    assert not (tmp_path / "f.png").exists()


def test_unknown_model_needs_cfg(tmp_path, caplog):
    c = tmp_path / "vote" / "hyena50" / "gsm8k.curves.csv"
    write_curves(c, 0.2, 0.05)
    assert main(["figure", "fig2", "--curves", str(c), "--out-png", str(tmp_path / "f.png")]) == 2
    assert "hyena50" in caplog.text
    cfg = json.dumps({"models": [{"name": "hyena50", "class": "hyena", "attention_pct": 50.0}]})
    assert main(["figure", "fig2", "--cfg", cfg, "--curves", str(c), "--out-png", str(tmp_path / "f.png")]) == 0


def test_flop_model_by_hand():
    fm = FlopModel.from_pretrain_config(
        {"n_non_embedding_params": 1000, "model": {"d_model": 8, "layers": ["attention", "gdn", "attention"]}}
    )
    assert (fm.matmul_params, fm.n_attention_layers) == (1000, 2)
    # P=3, T=3: forwards 5 positions with contexts 1..5 -> 2*1000*5 + 2 layers * 4*8*(1+..+5)
    assert fm.completion_flops(3, 3) == 2 * 1000 * 5 + 2 * 4 * 8 * 15
    recurrent = FlopModel(1000, 8, 0)
    assert recurrent.completion_flops(10, 7) == 2 * 1000 * 16  # constant per token


def test_gpu_seconds_falls_back_to_wall_clock(demo, tmp_path, caplog):
    m = demo["models"]
    stats = []
    for n in ("transformer", "gdn50"):
        for i, s in enumerate(m[n]["stats"]):
            d = json.loads(Path(s).read_text()) | {"gpu_s": None}
            p = tmp_path / "samples" / n / "gsm8k" / f"part-{i}.stats.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(d))
            stats.append(str(p))
    _figure("gpu_seconds", tmp_path, ["--curves", m["transformer"]["curves"], m["gdn50"]["curves"], "--sample-stats", *stats])
    assert "wall-clock" in caplog.text
    assert main(["figure", "gpu_seconds", "--curves", m["gla50"]["curves"], "--sample-stats", *stats,
                 "--out-png", str(tmp_path / "x.png")]) == 2
    assert "gla50" in caplog.text


def test_help_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "recall2reason.report", "figure", "fig5", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--model-configs" in r.stdout


def test_captions_render_with_the_paper_config():
    """Every caption the report rules name renders (Jinja over snakemake.config, then rST)."""
    import jinja2
    import yaml
    from docutils.core import publish_parts

    root = Path(__file__).parents[1]
    config = yaml.safe_load((root / "config.yaml").read_text())
    snakemake = type("Snakemake", (), {"config": config})
    names = ["workflow", "table1", "table7", "fig2", "fig3", "fig4", "fig5", "fig9", "gpu_seconds",
             "recall", "recall_vs_reasoning", "recall_table"]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for name in names:
        text = env.from_string((root / "workflow" / "report" / f"{name}.rst").read_text()).render(snakemake=snakemake)
        html = publish_parts(text, writer="html", settings_overrides={"halt_level": 2, "report_level": 5})["body"]
        assert "{{" not in text and len(html) > 200, name
