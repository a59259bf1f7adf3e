"""Synthetic generator: seeded determinism, separate eval stream, answers consistent with solutions."""

import re

from recall2reason.data import synthetic
from recall2reason.data.evalsets import gsm8k_gold

N = 300


def test_seeded_determinism_and_streams():
    a = list(synthetic.generate("gsm8k", 50, seed=7))
    assert a == list(synthetic.generate("gsm8k", 50, seed=7))
    assert list(synthetic.generate("gsm8k", 50, seed=7, start=20)) == a[20:]  # any start index
    assert a != list(synthetic.generate("gsm8k", 50, seed=8))
    m = list(synthetic.generate("math", 50, seed=7))
    assert m == list(synthetic.generate("math", 50, seed=7))
    # The eval stream never reproduces training documents under the same seed.
    train_q = {r["question"] for r in synthetic.generate("gsm8k", 2000, seed=7)}
    eval_q = [r["question"] for r in synthetic.generate("gsm8k", 200, seed=7, stream="eval")]
    assert sum(q in train_q for q in eval_q) == 0


def test_gsm_answers_follow_the_worked_solution():
    distractor_seen = False
    for i in range(N):
        row = synthetic.gsm8k_problem(3, i)
        q, sol = row["question"], row["answer"]
        lines = sol.split("\n")
        assert lines[-1] == f"#### {row['_answer']}"
        assert gsm8k_gold(sol) == str(row["_answer"])
        anns = re.findall(r"<<([^=<>]+)=(-?\d+)>>", sol)
        assert anns, sol
        for expr, val in anns:  # every calculator annotation is right
            assert eval(expr) == int(val), (expr, val)
        # ... and the text before each annotation states the same expression.
        for expr, val in re.findall(r"(\d+ [-+*] \d+) = <<[^>]+>>(\d+)", sol):
            assert eval(expr) == int(val)
        # The final answer is the last quantity computed for the asked-about person(s).
        assert re.findall(r"(\d+)", lines[-2])[-1] == str(row["_answer"])
        assert len(re.findall(r"\b[A-Z][a-z]+ has \d+", q)) >= 2  # several entities bound to quantities
        distractor_seen |= bool(re.search(r"years old|miles|windows|blocks|also has", q))
        assert row["_answer"] >= 0
    assert distractor_seen


def test_gsm_rows_track_state_independently():
    # Re-simulate from the problem text alone: the generator's answer must match.
    for i in range(N):
        row = synthetic.gsm8k_problem(11, i)
        q = row["question"]
        have = {n: int(k) for n, k in re.findall(r"([A-Z][a-z]+) has (\d+) \w+\.", q)}
        for m in re.finditer(r"([A-Z][a-z]+) (gives (\d+) \w+ to ([A-Z][a-z]+)|buys (\d+) more|loses (\d+)|finds (\d+)|doubles|triples)", q):
            p = m.group(1)
            if m.group(3):
                have[p] -= int(m.group(3)); have[m.group(4)] += int(m.group(3))
            elif m.group(5) or m.group(7):
                have[p] += int(m.group(5) or m.group(7))
            elif m.group(6):
                have[p] -= int(m.group(6))
            else:
                have[p] *= 2 if m.group(2) == "doubles" else 3
        ask = re.search(r"How many \w+ (?:does ([A-Z][a-z]+) have|do ([A-Z][a-z]+) and ([A-Z][a-z]+) have together)", q)
        want = have[ask.group(1)] if ask.group(1) else have[ask.group(2)] + have[ask.group(3)]
        assert want == row["_answer"], (q, row["answer"])


def test_math_answers_follow_the_worked_solution():
    kinds = set()
    for i in range(N):
        row = synthetic.math_problem(5, i)
        sol = row["solution"]
        assert sol.endswith(f"The answer is $\\boxed{{{row['answer']}}}$.")
        assert row["subject"] and 1 <= row["level"] <= 5
        kinds.add(row["subject"])
        # Every arithmetic equality "a op b = c" stated in the solution holds.
        for lhs, rhs in re.findall(r"(-?\d+ (?:[-+/]|\\cdot) \(?-?\d+\)?(?: [-+] \d+)?) = (-?\d+)", sol):
            assert eval(lhs.replace("\\cdot", "*").replace("/", "//")) == int(rhs), (lhs, rhs, sol)
        if row["subject"] == "Prealgebra":  # linear equation: plug the answer back in
            a, b, c = re.search(r"\$(\d+)x ([-+] \d+) = (-?\d+)\$", row["problem"]).groups()
            assert int(a) * int(row["answer"]) + int(b.replace(" ", "")) == int(c)
        if row["subject"] == "Number Theory":
            a, b, m = map(int, re.search(r"\$(\d+) \\cdot (\d+)\$ is divided by \$(\d+)\$", row["problem"]).groups())
            assert a * b % m == int(row["answer"])
    assert kinds == {"Algebra", "Prealgebra", "Number Theory"}
