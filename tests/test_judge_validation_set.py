"""The judge validation set: the committed file is what the seeded generator makes from
../shared/data, every item's final answer is what its label says (checked with the vote stage's
extractor and math-verify), and the injections do what they claim on a hand-made solution."""

from __future__ import annotations

import json
import random
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from recall2reason.judge import validation_set as vs
from recall2reason.judge.categories import ALL_LABELS, NO_ERROR
from recall2reason.vote.extract import extract_answer, parse_gold, verify_pair

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ITEMS = vs.load()

Q = ("Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and bakes muffins with 4. She sells the rest "
     "at $2 per egg. How many dollars does she make every week?")  # fmt: skip
A = ("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18 every day.\n"
     "In a week she makes 18 * 7 = $<<18*7=126>>126.\n#### 126")  # fmt: skip


def test_committed_set_shape():
    counts = Counter((it["answer_style"], it["label"]) for it in ITEMS)
    assert all(counts["gsm8k", label] == 30 for label in vs.GSM8K_LABELS if label != vs.PR)
    assert counts["gsm8k", vs.PR] >= 25  # unit steps whose constant the question does not state are rarer
    assert counts["math", "Calculation Error"] == counts["math", NO_ERROR] == 20 and counts["math", "Goal Interpretation Error"] >= 15
    assert len({it["id"] for it in ITEMS}) == len(ITEMS) == sum(counts.values())
    assert {it["label"] for it in ITEMS} <= set(ALL_LABELS)
    gsm8k = [it for it in ITEMS if it["answer_style"] == "gsm8k"]
    assert len({it["source"] for it in gsm8k}) == len(gsm8k)  # one item per problem


def test_every_final_answer_matches_its_label():
    """The completion's answer (as the vote stage reads it) equals the gold exactly for No Error."""
    for it in ITEMS:
        pred = extract_answer(it["completion"], 5)
        gold = parse_gold(it["gold"], it["answer_style"], 5)
        assert pred is not None and gold is not None, it["id"]
        assert verify_pair(gold, pred, 5) is (it["label"] == NO_ERROR), (it["id"], it["label"], pred.key, gold.key)
        assert it["is_correct"] is (it["label"] == NO_ERROR)


@pytest.mark.skipif(not (DATA / "gsm8k" / "test.jsonl").exists(), reason="../shared/data (GSM8K, MATH500) not present")
def test_committed_set_is_the_seeded_generator_output():
    items = vs.build(DATA)
    committed = [json.loads(line) for line in open(vs.DEFAULT_PATH, encoding="utf-8")]
    assert items == committed


def test_parse_carries_every_step():
    sol = vs.parse_gsm8k(Q, A)
    assert [(c.expr, c.value) for c in sol.calcs] == [("16-3-4", 9), ("9*2", 18), ("18*7", 126)]
    assert sol.render().splitlines()[1] == "She makes 9 * 2 = $18 every day."
    assert vs.parse_gsm8k(Q, A.replace("<<9*2=18>>18", "<<9*2=19>>19")) is None  # a wrong annotation
    assert vs.parse_gsm8k(Q, A.replace("#### 126", "#### 125")) is None  # the last step is not the gold


def test_injections_change_one_thing_and_carry_it():
    sol = vs.parse_gsm8k(Q, A)
    rng = random.Random(0)
    text, final, detail = vs.inject_state_tracking(sol, rng)
    assert "16 * 2 = $32" in text and final == 224  # the eggs before the update, then carried on
    assert vs.inject_procedural(sol, rng) is None  # 18 / 7 is no number a solution would write
    text, final, _ = vs.inject_conceptual(sol, rng)
    assert "18 * 5 = $90" in text and final == 90  # a week of 5 days
    hours = vs.parse_gsm8k("Tom runs for 120 minutes every day. How many hours does he run in 3 days?",
                           "He runs 120 / 60 = <<120/60=2>>2 hours a day.\nIn 3 days he runs 2 * 3 = <<2*3=6>>6 hours.\n#### 6")
    text, final, _ = vs.inject_procedural(hours, rng)
    assert text == "He runs 120 * 60 = 7200 hours a day.\nIn 3 days he runs 7200 * 3 = 21600 hours." and final == 21600
    text, final, _ = vs.inject_conceptual(hours, rng)
    assert text.startswith("He runs 120 / 100 = 1.2 hours") and final == Fraction(18, 5)
    text, final, _ = vs.inject_goal(sol, random.Random(1))
    assert final in (9, 18) and "18 * 7" not in text
    text, final, _ = vs.inject_key_value(sol, random.Random(3))
    assert text.splitlines()[0] != sol.render().splitlines()[0] and final != 126
    assert vs.parse_gsm8k(Q, A).render() == sol.render()  # the injections worked on copies


def test_load_names_file_and_line(tmp_path):
    bad = tmp_path / "v.jsonl"
    bad.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps({**ITEMS[0], "label": "Vibes Error"}) + "\n")
    with pytest.raises(ValueError, match=r"v\.jsonl:2: unknown label 'Vibes Error'"):
        vs.load(bad)
