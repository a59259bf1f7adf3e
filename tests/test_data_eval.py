"""Eval sets (../shared/data copies + synthetic) and the contamination report."""

import csv
import json
from pathlib import Path

import pytest

from recall2reason.common import from_dict, read_jsonl
from recall2reason.data.__main__ import main
from recall2reason.data.contamination import contamination_report
from recall2reason.data.evalsets import EvalSetConfig, build_eval_rows
from recall2reason.data.sources import DataConfig
from recall2reason.data.template import format_prompt

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FIX = Path(__file__).parent / "fixtures" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared/data")
KEYS = {"id", "question", "prompt", "gold", "answer_style", "reference_solution", "subject", "level"}


@needs_shared
def test_gsm8k_test_from_local_copy(tmp_path):
    out = tmp_path / "gsm8k.jsonl"
    assert main(["eval", "--cfg", json.dumps({"format": "gsm8k", "path": str(SHARED / "gsm8k/test.jsonl")}), "--name", "gsm8k", "--out", str(out)]) == 0
    rows = list(read_jsonl(out))
    assert len(rows) == 1319 and set(rows[0]) == KEYS
    r = rows[0]
    assert r["question"].startswith("Janet\u2019s ducks") and r["gold"] == "18" and r["answer_style"] == "gsm8k"
    assert r["prompt"] == format_prompt(r["question"]) and r["reference_solution"].endswith("#### 18")
    assert r["subject"] is None and r["level"] is None
    assert all(g["gold"] and "####" not in g["gold"] for g in rows)
    assert all(g["gold"].replace(",", "").lstrip("-").replace(".", "", 1).isdigit() for g in rows)  # raw number strings
    assert len({g["id"] for g in rows}) == 1319


@needs_shared
def test_math500_from_local_copy_with_limit():
    rows = build_eval_rows("math500", from_dict(EvalSetConfig, {"format": "math500", "path": str(SHARED / "math500/test.jsonl")}))
    assert len(rows) == 500
    src = [json.loads(l) for l in (SHARED / "math500/test.jsonl").read_text().splitlines()]
    for r, s in zip(rows, src):
        assert r["gold"] == s["answer"] and r["id"] == s["unique_id"] and r["subject"] == s["subject"] and r["level"] == s["level"]
        assert r["answer_style"] == "math" and r["prompt"] == format_prompt(s["problem"])
    assert sum(r["subject"] == "Algebra" for r in rows) == 124
    few = build_eval_rows("m", from_dict(EvalSetConfig, {"format": "math500", "path": str(SHARED / "math500/test.jsonl"), "limit": 7}))
    assert few == rows[:7]


def test_synthetic_eval_sets_and_errors(tmp_path):
    g = build_eval_rows("gsm8k", from_dict(EvalSetConfig, {"format": "synthetic_gsm8k", "n": 20}))
    assert len(g) == 20 and g[0]["answer_style"] == "gsm8k" and g[0]["reference_solution"].endswith("#### " + g[0]["gold"])
    m = build_eval_rows("math500", from_dict(EvalSetConfig, {"format": "synthetic_math", "n": 20, "seed": 9}))
    assert m[0]["answer_style"] == "math" and f"\\boxed{{{m[0]['gold']}}}" in m[0]["reference_solution"]
    assert m[0]["subject"] and m[0]["level"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "answer": "no gold line"}) + "\n")
    with pytest.raises(ValueError, match="####"):
        build_eval_rows("x", from_dict(EvalSetConfig, {"format": "gsm8k", "path": str(bad)}))
    assert main(["eval", "--cfg", json.dumps({"format": "math500", "path": str(bad)}), "--name", "x", "--out", str(tmp_path / "o.jsonl")]) == 2
    assert not (tmp_path / "o.jsonl").exists()


@needs_shared
def test_contamination_report(tmp_path):
    ev = tmp_path / "eval"
    main(["eval", "--cfg", json.dumps({"format": "gsm8k", "path": str(SHARED / "gsm8k/test.jsonl"), "limit": 40}), "--name", "gsm8k", "--out", str(ev / "gsm8k.jsonl")])
    main(["eval", "--cfg", json.dumps({"format": "math500", "path": str(SHARED / "math500/test.jsonl"), "limit": 40}), "--name", "math500", "--out", str(ev / "math500.jsonl")])
    # The MATH test file holds every MATH-500 problem, so it must flag all of them; the
    # OpenMathInstruct-2 fixture copies one GSM8K test problem (the first), MetaMathQA none.
    cfg = from_dict(DataConfig, {"sources": {
        "omi2": {"format": "openmathinstruct2", "path": str(FIX / "openmathinstruct2.jsonl")},
        "mmqa": {"format": "metamathqa", "path": str(FIX / "metamathqa.jsonl")},
        "math_test": {"format": "math", "path": str(SHARED / "math/test.jsonl"), "n_docs": 5000},
        "gsm_train": {"format": "gsm8k", "path": str(SHARED / "gsm8k/train.jsonl"), "n_docs": 2000},
    }}, "data")
    out = tmp_path / "train" / "contamination.csv"
    contamination_report(cfg, [ev / "gsm8k.jsonl", ev / "math500.jsonl"], out, n=13, workers=2)
    rows = {(r["eval_set"], r["source"]): r for r in csv.DictReader(out.open())}
    assert rows[("gsm8k", "omi2")]["n_contaminated"] == "1" and rows[("gsm8k", "omi2")]["example_ids"] == "gsm8k-00000"
    assert rows[("gsm8k", "mmqa")]["n_contaminated"] == "0" and rows[("math500", "omi2")]["n_contaminated"] == "0"
    assert rows[("math500", "math_test")]["n_contaminated"] == "40" and rows[("math500", "math_test")]["frac_contaminated"] == "1.0"
    assert rows[("math500", "gsm_train")]["n_contaminated"] == "0"
    assert int(rows[("gsm8k", "gsm_train")]["n_contaminated"]) <= 2  # GSM8K train/test are (nearly) disjoint
    assert int(rows[("gsm8k", "all")]["n_contaminated"]) >= 1 and rows[("gsm8k", "omi2")]["n_train_docs"] == "8"
    assert rows[("math500", "all")]["n_problems"] == "40"


def test_contamination_short_problem_must_match_whole(tmp_path):
    ev = tmp_path / "e.jsonl"
    ev.write_text(json.dumps({"id": "s1", "question": "Compute $\\dbinom{8}{3}$."}) + "\n"
                  + json.dumps({"id": "s2", "question": "Compute $\\dbinom{9}{4}$."}) + "\n")
    cfg = from_dict(DataConfig, {"sources": {"omi2": {"format": "openmathinstruct2", "path": str(FIX / "openmathinstruct2.jsonl")}}}, "data")
    rows = contamination_report(cfg, [ev], tmp_path / "c.csv", workers=1)
    assert rows[0]["n_contaminated"] == 1 and rows[0]["example_ids"] == "s1"
