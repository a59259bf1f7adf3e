"""Score one problem: parse its n completions, cluster equal answers, check against gold.

:func:`score_problem` is the unit of work of the process pool: it takes plain data (texts,
gold) and returns plain data (the problems.jsonl row and the per-problem curves), so no
sympy object crosses a process boundary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from recall2reason.vote.estimators import maj_exact_curve, maj_first_curve, pass_at_k_curve
from recall2reason.vote.extract import Parsed, Stats, extract_answer, parse_gold, same_answer, verify_pair


@dataclass
class Group:
    answer: str  # canonical key of the representative (the largest exact-key group)
    forms: list[str]  # every canonical key merged into this group
    samples: list[int]
    rep: Parsed
    correct: bool = False

    @property
    def size(self) -> int:
        return len(self.samples)


def cluster_answers(answers: Sequence[Parsed | None], timeout_s: float) -> list[Group]:
    """Group answers by canonical key, then merge groups math-verify deems equal.

    Keys first (cheap, exact); then each key group, largest first, joins the first existing
    cluster whose representative it equals, else starts a new one. Comparing against cluster
    representatives only (no transitive chaining) keeps calls at <= groups x clusters and
    stops a chain of "approximately equal" floats from swallowing distinct answers.
    Returned sorted by size (desc), then first sample index.
    """
    by_key: dict[str, Group] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        if a.key not in by_key:
            by_key[a.key] = Group(answer=a.key, forms=[a.key], samples=[], rep=a)
        by_key[a.key].samples.append(i)
    clusters: list[Group] = []
    for grp in sorted(by_key.values(), key=lambda g: (-g.size, g.samples[0])):
        for c in clusters:
            if same_answer(c.rep, grp.rep, timeout_s):
                c.samples.extend(grp.samples)
                c.forms.append(grp.answer)
                break
        else:
            clusters.append(grp)
    for c in clusters:
        c.samples.sort()
    clusters.sort(key=lambda g: (-g.size, g.samples[0]))
    return clusters


def score_problem(task: dict[str, Any]) -> dict[str, Any]:
    """Parse, cluster and score one problem.

    ``task``: {"id", "gold", "answer_style", "texts" (list by sample_idx), "timeout_s",
    "subject", "level"}. Returns {"row": problems.jsonl row, "maj_exact", "maj_first",
    "pass_k": per-k floats, "stats": Stats as dict}.
    """
    timeout_s = task["timeout_s"]
    stats = Stats()
    gold = parse_gold(task["gold"], task["answer_style"], timeout_s, stats)
    answers = [extract_answer(t, timeout_s, stats) for t in task["texts"]]
    groups = cluster_answers(answers, timeout_s)
    for g in groups:  # each group checked against gold once, through its representative
        g.correct = gold is not None and verify_pair(gold, g.rep, timeout_s)

    n = len(answers)
    label: list[int | None] = [None] * n
    for gi, g in enumerate(groups):
        for i in g.samples:
            label[i] = gi
    correct = [lab is not None and groups[lab].correct for lab in label]
    n_none = sum(a is None for a in answers)
    row = {
        "id": task["id"],
        "gold": task["gold"],
        "gold_parsed": gold.key if gold is not None else None,
        "n": n,
        "answers": [a.key if a is not None else None for a in answers],
        "correct": correct,
        "no_answer": n_none,
        "no_ending": stats.no_ending,  # of no_answer: completions that never state an answer
        "groups": [
            {"answer": g.answer, "size": g.size, "correct": g.correct, "samples": g.samples, "forms": g.forms}
            for g in groups
        ],
        "subject": task.get("subject"),
        "level": task.get("level"),
    }
    return {
        "row": row,
        "maj_exact": [float(x) for x in maj_exact_curve([g.size for g in groups], [g.correct for g in groups], n_none)],
        "maj_first": maj_first_curve(label, [g.correct for g in groups]),
        "pass_k": [float(x) for x in pass_at_k_curve(n, sum(correct))],
        "stats": asdict(stats),
    }
