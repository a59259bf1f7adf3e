"""Recall vs reasoning in the report: rank correlation and bootstrap against hand computations and
exhaustive enumeration, the recall table's arithmetic, and its two figures."""

from __future__ import annotations

import csv
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_report_data import CFG, MODELS, write_curves, write_judge  # noqa: E402

from recall2reason.judge.categories import NO_ERROR  # noqa: E402
from recall2reason.probe.score import summary_rows, write_summary  # noqa: E402
from recall2reason.report.__main__ import main  # noqa: E402
from recall2reason.report.recall import average_ranks, bootstrap_spearman, spearman  # noqa: E402

KV, FLS = "Key-Value Binding Error", "Flawed Logical Synthesis"


def test_average_ranks_by_hand():
    assert average_ranks([10, 20, 20, 5]).tolist() == [2, 3.5, 3.5, 1]
    assert average_ranks([7, 7, 7]).tolist() == [2, 2, 2]


def test_spearman_against_the_textbook_formula_and_by_hand():
    rng = np.random.default_rng(1)
    for n in (3, 5, 13):
        for _ in range(20):
            x, y = rng.permutation(n), rng.permutation(n)  # no ties: 1 - 6 sum d^2 / (n (n^2 - 1))
            d = x - y
            assert spearman(x, y) == pytest.approx(1 - 6 * float(d @ d) / (n * (n * n - 1)))
    # ties: ranks x (1, 2.5, 2.5, 4), y (1, 3, 2, 4): sum dx dy = 4.5, sum dx^2 = 4.5, sum dy^2 = 5
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert spearman([0.1, 0.5, 0.3], [9, 1, 4]) == pytest.approx(-1.0)  # any decreasing relation
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_bootstrap_interval_against_exhaustive_enumeration():
    """For 4 pairs every one of the 4^4 equally likely resamples can be listed: the Monte-Carlo
    interval's bounds must be 2.5 % and 97.5 % quantiles of that exact distribution."""
    x, y = np.array([0.2, 0.5, 0.4, 0.9]), np.array([0.3, 0.1, 0.6, 0.7])
    exact = [spearman(x[list(i)], y[list(i)]) for i in itertools.product(range(4), repeat=4)]
    defined = np.array([r for r in exact if not math.isnan(r)])
    lo, hi, n_defined = bootstrap_spearman(x, y, n_boot=20000, seed=3)
    assert n_defined / 20000 == pytest.approx(len(defined) / len(exact), abs=0.01)
    for bound, q in ((lo, 0.025), (hi, 0.975)):
        below, at_or_below = np.mean(defined < bound - 1e-12), np.mean(defined <= bound + 1e-12)
        assert below <= q + 0.01 and at_or_below >= q - 0.01, (bound, below, at_or_below)
    assert bootstrap_spearman(x, y, 500, 7) == bootstrap_spearman(x, y, 500, 7)  # seeded
    assert all(math.isnan(v) for v in bootstrap_spearman(x[:2], y[:2], 100, 0)[:2])  # two models: no interval


# -- the table and the figures from hand-made stage outputs -----------------------------------

RECALL = {"transformer": 0.9, "mamba50": 0.5, "gla50": 0.6, "gdn50": 0.75, "gdn100": 0.25}  # of 20 probes
KV_ERRORS = {"transformer": 1, "mamba50": 5, "gla50": 4, "gdn50": 2, "gdn100": 6}  # of 8 errors per generation
MAJ = {"transformer": 0.62, "mamba50": 0.38, "gla50": 0.42, "gdn50": 0.5, "gdn100": 0.3}  # at k = 8


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("recall")
    files = {"probes": [], "judge": [], "curves": []}
    for m in MODELS:
        n_correct = round(20 * RECALL[m])
        kinds = ["binding", "update"] * 10
        rows = [{"kind": kinds[i], "k": 2 ** (1 + i % 3), "distance": 0.0,
                 "outcome": "correct" if i < n_correct else "other_key"} for i in range(20)]
        path = root / "probes" / f"{m}.summary.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_summary(path, summary_rows(rows))
        judge = root / "judge" / m / "gsm8k.jsonl"
        write_judge(judge, [{KV: KV_ERRORS[m], FLS: 8 - KV_ERRORS[m], NO_ERROR: 2}] * 2)
        curves = root / "vote" / m / "gsm8k.curves.csv"
        write_curves(curves, MAJ[m] - 0.04 * 3, 0.04)  # rises by 0.04 per doubling: MAJ at k = 8
        files["probes"].append(str(path))
        files["judge"].append(str(judge))
        files["curves"].append(str(curves))
    return root, files


def _recall_table(root, files, cfg=CFG):
    out = {ext: root / "tables" / f"recall.{ext}" for ext in ("csv", "md", "tex")}
    corr = root / "tables" / "recall_correlation.csv"
    rc = main(["table", "--which", "recall", "--cfg", cfg, "--probes", *files["probes"], "--judge", *files["judge"],
               "--curves", *files["curves"], "--out-csv", str(out["csv"]), "--out-md", str(out["md"]),
               "--out-tex", str(out["tex"]), "--out-correlation", str(corr)])
    return rc, out, corr


def test_recall_table_arithmetic(results):
    root, files = results
    rc, out, corr = _recall_table(root, files)
    assert rc == 0
    rows = {r["model"]: r for r in csv.DictReader(out["csv"].open())}
    assert list(rows) == ["transformer", "mamba50", "gla50", "gdn50", "gdn100"]  # the paper's order
    for m in MODELS:
        r = rows[m]
        assert float(r["recall"]) == pytest.approx(RECALL[m], abs=1e-4)
        assert float(r["kv_share"]) == pytest.approx(KV_ERRORS[m] / 8, abs=1e-4)
        assert float(r["maj"]) == pytest.approx(MAJ[m], abs=1e-4)
        n_correct = round(20 * RECALL[m])  # correct probes are the first ones: even indices are binding
        assert float(r["binding"]) == pytest.approx(math.ceil(n_correct / 2) / 10, abs=1e-4)
    # recall falls as the KV share rises, in exactly the same order: rho = -1 in every resample
    c = {r["target"]: r for r in csv.DictReader(corr.open())}
    assert float(c["kv_share"]["spearman"]) == -1.0 and float(c["maj"]["spearman"]) == 1.0
    assert (float(c["kv_share"]["lo"]), float(c["kv_share"]["hi"])) == (-1.0, -1.0)
    assert int(c["maj"]["n_models"]) == 5 and int(c["maj"]["n_boot"]) == 2000
    md = out["md"].read_text()
    assert "| Transformer | 90.0 % | 90.0 % | 90.0 % | 12.5 % | 62.0 % |" in md
    assert "Spearman rho = -1.00, 95 % CI [-1.00, -1.00], 5 models" in md and "maj@8" in md
    assert r"Spearman rho = 1.00" in out["tex"].read_text() and r"12.5 \%" in out["tex"].read_text()


def test_recall_correlation_with_noise_and_too_few_models(results, tmp_path):
    root, files = results
    cfg = json.loads(CFG) | {"correlation": {"bootstrap": 300, "seed": 1}}
    rc, _, corr = _recall_table(tmp_path, {k: v[:2] for k, v in files.items()}, json.dumps(cfg))
    assert rc == 0
    c = list(csv.DictReader(corr.open()))
    assert c[0]["n_models"] == "2" and c[0]["spearman"] == "nan" and c[0]["n_boot"] == "300"


def test_recall_figures_build_and_are_deterministic(results, tmp_path):
    root, files = results
    outs = []
    for tag, probes in (("a", files["probes"]), ("b", files["probes"][::-1])):
        for name, args in (("recall", ["--probes", *probes]),
                           ("recall_vs_reasoning", ["--probes", *probes, "--judge", *files["judge"], "--curves", *files["curves"]])):
            pdf, png = tmp_path / tag / f"{name}.pdf", tmp_path / tag / f"{name}.png"
            assert main(["figure", name, "--cfg", CFG, *args, "--out-pdf", str(pdf), "--out-png", str(png)]) == 0
            assert pdf.read_bytes()[:5] == b"%PDF-" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            outs.append(png.read_bytes())
    assert outs[:2] == outs[2:]  # argument order does not matter


def test_bad_inputs_name_the_file(results, tmp_path, caplog):
    root, files = results
    bad = tmp_path / "probes" / "gdn50.summary.csv"
    bad.parent.mkdir(parents=True)
    text = Path(files["probes"][3]).read_text()
    bad.write_text(text.replace("accuracy", "acc", 1))
    png = tmp_path / "f.png"
    assert main(["figure", "recall", "--cfg", CFG, "--probes", str(bad), "--out-png", str(png)]) == 2
    assert str(bad) in caplog.text and "accuracy" in caplog.text and not png.exists()
    rows = list(csv.DictReader(text.splitlines()))
    rows[0]["accuracy"] = "1.5"
    with open(bad, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["figure", "recall", "--cfg", CFG, "--probes", str(bad), "--out-png", str(png)]) == 2
    assert f"{bad}:2" in caplog.text
    wrong_name = tmp_path / "probes" / "gdn50.csv"
    wrong_name.write_text(text)
    assert main(["figure", "recall", "--cfg", CFG, "--probes", str(wrong_name), "--out-png", str(png)]) == 2
    assert "<model>.summary.csv" in caplog.text
    rc = main(["figure", "recall_vs_reasoning", "--cfg", CFG, "--probes", *files["probes"], "--judge", *files["judge"][:2],
               "--curves", *files["curves"], "--out-png", str(png)])
    assert rc == 2 and "--judge has no file for model(s)" in caplog.text
