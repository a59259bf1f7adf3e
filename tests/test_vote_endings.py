"""The answer extractor against known truth: committed tricky cases, and every real gold answer
(../shared/data) written in every ending style the training mix and eval sets use."""

import json
from pathlib import Path

import pytest

from recall2reason.vote.endings import final_answer_span, has_ending
from recall2reason.vote.extract import Stats, extract_answer, parse_gold, same_answer

T = 5
HERE = Path(__file__).resolve().parent
CASES = [json.loads(line) for line in open(HERE / "fixtures" / "extraction" / "tricky_cases.jsonl", encoding="utf-8")]
DATA = HERE.parent.parent / "shared" / "data"


@pytest.mark.parametrize("case", CASES, ids=[c["why"] for c in CASES])
def test_tricky_case(case):
    got = extract_answer(case["text"], T)
    if case["answer"] is None:
        assert got is None, f"{case['why']}: read {got.key!r} from {case['text']!r}"
        return
    want = parse_gold(case["answer"], "math", T)
    assert want is not None, case
    assert got is not None, f"{case['why']}: no answer from {case['text']!r}"
    assert same_answer(want, got, T), f"{case['why']}: read {got.key!r}, want {want.key!r}"


def test_cases_cover_every_ending_and_both_outcomes():
    endings = {final_answer_span(c["text"]).ending for c in CASES if c["answer"] is not None}
    assert endings == {"boxed", "answer_is", "hashes"}
    assert sum(c["answer"] is None for c in CASES) >= 10


def test_no_answer_reasons_are_counted():
    stats = Stats()
    assert extract_answer("She has 7 apples.", T, stats) is None  # never states an answer
    assert extract_answer("The answer is 5 6", T, stats) is None  # states one we cannot read
    assert extract_answer("\\boxed{\\frac{1}{2}", T, stats) is None
    assert extract_answer("The answer is 5", T, stats).key == "5"
    assert (stats.no_ending, stats.unreadable) == (1, 2)
    assert has_ending("x \\boxed{") and not has_ending("the answers are 5")


@pytest.mark.skipif(not (DATA / "math" / "train.jsonl").exists(), reason="../shared/data (GSM8K, MATH, MATH500) not present")
def test_every_gold_in_every_ending():
    """Goal of issue 40: 100 % on GSM8K, >= 99.5 % on MATH, and no rendering read as another value
    (style ``reference``: each row's own reference solution read as a completion)."""
    from recall2reason.vote.endings_check import equal_rate, measure

    res = measure(DATA, workers=2)
    table = res["table"]
    assert res["rows"] == 7473 + 1319 + 7500 + 5000 + 500
    assert set(table["gsm8k"]) == {"boxed", "boxed_in_math", "answer_is_colon", "answer_is", "answer_is_math",
                                   "hashes", "answer_is_dollar_sign", "answer_is_unit", "reference"}  # fmt: skip
    different = {e: [f for f in fails if f["outcome"] == "different"] for e, fails in res["failures"].items()}
    assert not any(different.values()), f"renderings read as another value: {different}"
    assert equal_rate(table, "gsm8k") == 1.0, res["failures"].get("gsm8k", [])[:20]
    for e in ("math", "math500"):
        assert equal_rate(table, e) >= 0.995, (e, res["failures"].get(e, [])[:20])
    # the two MATH solutions with an empty \boxed{} have no gold to compare with
    assert sum(c["gold_unparsed"] for c in table["math"].values()) == 2 * len(table["math"])
