"""Gold parsing on every row of the real GSM8K test set and MATH500 (../shared/data).

Each problem is scored through the stage's process pool with two "completions": the gold answer
itself and the dataset's full reference solution. Every gold must parse and verify against itself,
and every reference solution through its last ending: MATH500's ``\\boxed{}``, GSM8K's ``#### N``
(math-verify's own search of the whole text, used before issue 40, misread 4 of the 1319 GSM8K
solutions: it prefers "answer ... :" phrases and ``$...$`` spans over the last line).
"""

import json
from pathlib import Path

import pytest

from recall2reason.vote.stage import score_all

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def gsm8k_tasks():
    for i, line in enumerate(open(DATA / "gsm8k" / "test.jsonl", encoding="utf-8")):
        r = json.loads(line)
        gold = r["answer"].split("####")[-1].strip()
        yield {"id": f"gsm8k/{i}", "gold": gold, "answer_style": "gsm8k", "timeout_s": 5,
               "texts": [f"#### {gold}", r["answer"]]}


def math500_tasks():
    for line in open(DATA / "math500" / "test.jsonl", encoding="utf-8"):
        r = json.loads(line)
        yield {"id": r["unique_id"], "gold": r["answer"], "answer_style": "math", "timeout_s": 5,
               "texts": ["\\boxed{" + r["answer"] + "}", r["solution"]], "subject": r["subject"], "level": r["level"]}


@pytest.mark.skipif(not (DATA / "math500" / "test.jsonl").exists(), reason="../shared/data not present")
def test_every_gold_verifies_against_itself_and_reference():
    tasks = list(gsm8k_tasks()) + list(math500_tasks())
    assert len(tasks) == 1319 + 500
    gold_failures, reference_failures = [], {}
    for task, res in zip(tasks, score_all(tasks, workers=2)):
        row = res["row"]
        if row["gold_parsed"] is None or not row["correct"][0]:
            gold_failures.append((task["id"], task["gold"], row["gold_parsed"], row["answers"][0]))
        elif not row["correct"][1] or len(row["groups"]) != 1:
            reference_failures[task["id"]] = (task["gold"], row["answers"][1])
    assert not gold_failures, f"{len(gold_failures)} gold answers do not verify against themselves: {gold_failures}"
    assert not reference_failures, f"reference solutions whose extracted answer differs from gold: {reference_failures}"
