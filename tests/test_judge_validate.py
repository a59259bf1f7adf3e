"""``python -m recall2reason.judge validate``: offline for rules on the committed set (its kappa
pinned as a floor), and the gemini / openai backends (real clients) against the fake servers on
a small set whose judge answers are scripted, so every reported figure is known in advance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes.llm_server import FakeGemini, FakeOpenAI  # noqa: E402
from test_judge_llm import FAKE_KEY, local_only_env, make_cfg  # noqa: E402,F401 (fixture)

from recall2reason.common import from_dict, read_json  # noqa: E402
from recall2reason.judge.__main__ import main  # noqa: E402
from recall2reason.judge.config import JudgeConfig  # noqa: E402
from recall2reason.judge.validate import ValidationRefused, validate  # noqa: E402
from recall2reason.judge.validation_set import load  # noqa: E402

BACKENDS = {"gemini": FakeGemini, "openai": FakeOpenAI}
PAPER_EXAMPLES = Path(__file__).parent / "fixtures" / "judge" / "paper_examples.jsonl"
KV, CALC, NONE = "Key-Value Binding Error", "Calculation Error", "No Error"


def test_rules_offline_on_the_committed_set(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["validate", "--cfg", json.dumps({"backend": "rules"}), "--json", str(out),
                 "--ledger", str(tmp_path / "ledger.json"), "--md", str(tmp_path / "v.md")]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "0 calls" in text and "confusion matrix" in text and "Cohen's kappa" in text
    assert "the rules backend detects Procedural Retrieval Error: only" in text
    rep = read_json(out)
    n = len(load())
    assert sum(sum(row.values()) for row in rep["confusion"].values()) == rep["overall"]["items"] == n
    assert rep["overall"]["is_correct_agreement"] == 1.0 and rep["math_verify_is_correct_agreement"] == 1.0
    # measured 2026-12-06 (benchmarks/reports/2026-12-06-judge-validation.md): 0.909 over 326 items;
    # the rules before issue 40: 0.444
    assert rep["overall"]["cohen_kappa"] >= 0.88, rep["overall"]
    assert rep["per_label"][CALC]["recall"] >= 0.95 and rep["per_label"][NONE]["precision"] == 1.0
    assert rep["cost"]["calls_this_run"] == 0 and read_json(tmp_path / "ledger.json")["coverage"] == rep["coverage"]
    md = (tmp_path / "v.md").read_text()
    assert f"Cohen's kappa **{rep['overall']['cohen_kappa']:.3f}**" in md and "| Calculation Error | " in md


def test_rules_on_the_papers_examples():
    """The paper's eight App. C.2 examples: the two outside the rules' coverage are missed."""
    rep = validate(from_dict(JudgeConfig, {"backend": "rules"}), PAPER_EXAMPLES, cache_dir=None)
    judged = {it["label"]: it["judged"][0] for it in rep["items"]}
    missed = {label for label, got in judged.items() if got != label}
    assert missed == {"Procedural Retrieval Error", "Conceptual Knowledge Gap"}, judged


def scripted_set(tmp_path: Path) -> Path:
    """Six items whose fake judge answers are known: right, wrong, a flip between repeats, invalid JSON."""
    base = next(it for it in load() if it["answer_style"] == "gsm8k" and it["label"] == NONE)
    plan = [(KV, "[[cat:Key-Value Binding Error]]"), (KV, "[[cat:Calculation Error]]"),
            (CALC, "[[cat:Calculation Error]]"), (CALC, "[[flip:Calculation Error]]"), (NONE, ""), (NONE, "[[badjson]]")]  # fmt: skip
    path = tmp_path / "scripted.jsonl"
    with open(path, "w") as f:
        for i, (label, marker) in enumerate(plan):
            f.write(json.dumps({**base, "id": f"s{i}", "label": label, "completion": f"{marker} {i} {base['completion']}"}) + "\n")
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_llm_backends_against_fake_servers(tmp_path, backend):
    path = scripted_set(tmp_path)
    with BACKENDS[backend]() as fake:
        cfg = from_dict(JudgeConfig, make_cfg(backend, fake.url, 1, concurrency=1, temperature=0.7))
        estimates = []
        rep = validate(cfg, path, tmp_path / "cache", repeats=2, on_estimate=estimates.append)
        assert estimates[0]["calls"] == 12 and estimates[0]["tokens_in"] > 0  # printed before any request
        o = rep["overall"]
        # truth KV KV CALC CALC NONE NONE, judged KV CALC CALC CALC NONE ERR: p_o = 4/6,
        # p_e = (2*1 + 2*3 + 2*1) / 36 = 10/36 -> kappa = (24 - 10) / 26
        assert [it["judged"][0] for it in rep["items"]] == [KV, CALC, CALC, CALC, NONE, "Judge error"]
        assert o["cohen_kappa"] == pytest.approx(14 / 26) and o["accuracy"] == pytest.approx(4 / 6)
        assert o["is_correct_agreement"] == pytest.approx(5 / 6) and o["judge_errors"] == 1
        assert rep["confusion"][KV] == {KV: 1, "State Tracking Error": 0, "Context Synthesis Error": 0,
                                        "Procedural Retrieval Error": 0, "Conceptual Knowledge Gap": 0,
                                        "Flawed Logical Synthesis": 0, CALC: 1, "Goal Interpretation Error": 0,
                                        NONE: 0, "Judge error": 0}  # fmt: skip
        assert rep["per_label"][CALC]["precision"] == pytest.approx(2 / 3) and rep["per_label"][CALC]["recall"] == 1.0
        # the second judgement of the flip item says No Error: 5 of 6 items unanimous
        s = rep["repeat_stability"]
        assert [it["judged"] for it in rep["items"]][3] == [CALC, NONE]
        assert s["unanimous_share"] == pytest.approx(5 / 6) and s["mean_modal_share"] == pytest.approx(5.5 / 6)
        # 12 judgements, the invalid one asked twice each time; the sampled temperature was sent
        assert rep["cost"]["calls_this_run"] == 14 and rep["cost"]["dollars_this_run"] > 0
        body = fake.bodies[0]
        sent = body["generationConfig"]["temperature"] if backend == "gemini" else body["temperature"]
        assert sent == pytest.approx(0.7)

        # the same cache as the study: a second validation asks nothing and reports the same
        n = len(fake.log)
        again = validate(cfg, path, tmp_path / "cache", repeats=2)
        assert len(fake.log) == n and again["cost"]["cache_hits"] == 12 and again["overall"] == o


def test_estimate_first_and_refuse_above_max_dollars(tmp_path, capsys):
    path = scripted_set(tmp_path)
    with FakeGemini() as fake:
        cfg = make_cfg("gemini", fake.url, 1, prices={"input_per_m": 1e6, "output_per_m": 0})
        with pytest.raises(ValidationRefused, match="above --max-dollars 5"):
            validate(from_dict(JudgeConfig, cfg), path, tmp_path / "cache")
        assert fake.log == []  # nothing was asked
        rc = main(["validate", "--cfg", json.dumps(cfg), "--set", str(path), "--cache", str(tmp_path / "cache")])
        captured = capsys.readouterr()
        assert rc == 2 and "judge estimate" in captured.out and "--max-dollars" in captured.err and fake.log == []
    assert FAKE_KEY not in captured.out + captured.err
