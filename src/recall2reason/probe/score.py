"""Scoring recall probes: the vote stage's answer, exact match, what a wrong answer recalled.

A probe's numbers are all distinct (probe/generate.py), so the answer's outcome is one of

    correct     the queried key's current value
    stale       the queried key's overwritten value (``update`` probes: a state-tracking error)
    other_key   the value of another key in the context (a key-value binding error)
    distractor  a number from a distractor sentence
    other       any other answer
    no_answer   the extractor found none
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter
from typing import Iterable

from recall2reason.common.io import atomic_write
from recall2reason.probe.config import KINDS
from recall2reason.vote.extract import cut_completion
from recall2reason.vote.extract import extract_answer as vote_answer

OUTCOMES = ("correct", "stale", "other_key", "distractor", "other", "no_answer")
SUMMARY_COLUMNS = ("kind", "k", "distance", "n", "correct", "accuracy", "lo", "hi", *OUTCOMES[1:])
ALL = "all"
_INT = re.compile(r"-?\d+")


def extract_answer(completion: str, timeout_s: float) -> str | None:
    """The vote stage's canonical answer of a raw completion (its last ``####`` / ``The answer is``
    / ``\\boxed{}`` ending), else the one number of a completion without an ending ("12.", "Ben
    has 12 apples."): a probe's answer is one integer. Several numbers and no ending: no answer."""
    parsed = vote_answer(completion, timeout_s)
    if parsed is not None:
        return parsed.key
    numbers = _INT.findall(cut_completion(completion))
    return numbers[0] if len(numbers) == 1 else None


def outcome(answer: str | None, probe: dict) -> str:
    """Which number of the probe an extracted answer is (see the module docstring)."""
    if answer is None:
        return "no_answer"
    if not _INT.fullmatch(answer):
        return "other"
    value = int(answer)
    if value == probe["gold"]:
        return "correct"
    for name, values in (("stale", probe["stale"]), ("other_key", probe["other_keys"]), ("distractor", probe["distractors"])):
        if value in values:
            return name
    return "other"


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95 % by default)."""
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def summary_rows(rows: Iterable[dict]) -> list[dict]:
    """Accuracy with its Wilson interval and the share of each wrong outcome, per (kind, k,
    distance) cell and pooled: per (kind, k), per kind, per k and overall (``all``)."""
    rows = list(rows)
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        for key in ((r["kind"], r["k"], r["distance"]), (r["kind"], r["k"], ALL), (r["kind"], ALL, ALL),
                    (ALL, r["k"], ALL), (ALL, ALL, ALL)):
            cells.setdefault(key, []).append(r)
    out = []
    for (kind, k, distance), members in sorted(cells.items(), key=lambda kv: _order(kv[0])):
        counts = Counter(r["outcome"] for r in members)
        n = len(members)
        lo, hi = wilson(counts["correct"], n)
        out.append({
            "kind": kind, "k": k, "distance": distance, "n": n, "correct": counts["correct"],
            "accuracy": counts["correct"] / n, "lo": lo, "hi": hi,
            **{o: counts[o] / n for o in OUTCOMES[1:]},
        })
    return out


def _order(cell: tuple) -> tuple:
    """Sort key of a (kind, k, distance) cell: kinds in KINDS order, numbers ascending, a pooled
    value (``all``) after the others."""
    kind, k, distance = cell
    return (kind == ALL, KINDS.index(kind) if kind != ALL else 0,
            k == ALL, 0 if k == ALL else k, distance == ALL, 0.0 if distance == ALL else distance)


def write_summary(path: str | os.PathLike, rows: list[dict]) -> None:
    with atomic_write(path, newline="") as f:
        w = csv.DictWriter(f, fieldnames=SUMMARY_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({c: f"{r[c]:.6f}" if isinstance(r[c], float) and c != "distance" else r[c] for c in SUMMARY_COLUMNS})
