"""Accuracy-vs-samples estimators for one problem, and bootstrap intervals over problems.

A problem has n samples in answer groups of sizes s_1..s_G (each group correct or not) plus
``n_none`` samples without an answer. For k = 1..n:

* ``maj_exact_curve``: probability that majority voting over a uniformly random size-k subset
  of the n samples is correct, ties broken uniformly at random, the no-answer bucket never
  winning (all k without answer: wrong). Exact, as Fractions, without enumerating subsets.
* ``pass_at_k_curve``: the unbiased pass@k estimator of Chen et al. (2021).
* ``maj_first_curve``: majority over samples 0..k-1 only, ties to the first-seen answer (what
  ``collections.Counter.most_common`` does in common harnesses); kept for parity.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import numpy as np


def _binom_row(m: int) -> list[int]:
    return [math.comb(m, i) for i in range(m + 1)]


def _convolve(a: list[int], b: list[int]) -> list[int]:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        if x:
            for j, y in enumerate(b):
                out[i + j] += x * y
    return out


def maj_exact_curve(sizes: Sequence[int], correct: Sequence[bool], n_none: int = 0) -> list[Fraction]:
    """Exact expected majority-vote accuracy for k = 1..n (index k-1), ties split uniformly.

    For a correct group g and a count t >= 1 of its members in the subset, g wins with
    probability 1/(1+j) when j other groups also have exactly t members and none has more.
    Groups smaller than t can never beat g, so they join the no-answer bucket in a "free"
    pool (any number chosen); only groups of size >= t enter a small dynamic program over
    (members chosen, groups tied at t). Counts are integers; everything is scaled by
    lcm(1..G) so that the 1/(1+j) weights stay integral.
    """
    if len(sizes) != len(correct):
        raise ValueError("sizes and correct must have the same length")
    if any(s < 1 for s in sizes) or n_none < 0:
        raise ValueError("group sizes must be >= 1 and n_none >= 0")
    n = sum(sizes) + n_none
    scale = math.lcm(*range(1, len(sizes) + 1)) if sizes else 1
    wins = [0] * (n + 1)  # wins[k] * 1/(scale * C(n, k)) = P(correct) at k
    for g, (s_g, ok) in enumerate(zip(sizes, correct)):
        if not ok:
            continue
        others = [s for h, s in enumerate(sizes) if h != g]
        for t in range(1, s_g + 1):
            free = n_none + sum(s for s in others if s < t)
            # dp[j][c]: ways to choose c members of the groups of size >= t, each at most t,
            # exactly j of them at t (tied with g)
            dp: list[list[int]] = [[1]]
            for s_h in (s for s in others if s >= t):
                below = [math.comb(s_h, x) for x in range(t)]
                at_t = math.comb(s_h, t)
                new = [[0] * (len(dp[0]) + t) for _ in range(len(dp) + 1)]
                for j, row in enumerate(dp):
                    for c, ways in enumerate(row):
                        if ways:
                            for x, b in enumerate(below):
                                new[j][c + x] += ways * b
                            new[j + 1][c + t] += ways * at_t
                dp = new
            free_row = _binom_row(free)
            c_g = math.comb(s_g, t)
            for j, row in enumerate(dp):
                weight = c_g * (scale // (j + 1))
                for c, ways in enumerate(_convolve(row, free_row)):
                    k = t + c
                    if ways and k <= n:
                        wins[k] += weight * ways
    return [Fraction(wins[k], scale * math.comb(n, k)) for k in range(1, n + 1)]


def pass_at_k_curve(n: int, n_correct: int) -> list[Fraction]:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) for k = 1..n (Chen et al. 2021)."""
    if not 0 <= n_correct <= n:
        raise ValueError(f"need 0 <= n_correct <= n, got {n_correct} of {n}")
    return [1 - Fraction(math.comb(n - n_correct, k), math.comb(n, k)) for k in range(1, n + 1)]


def maj_first_curve(labels: Sequence[int | None], group_correct: Sequence[bool]) -> list[float]:
    """Majority over the first k samples (labels[i] = group of sample i, None = no answer).

    Ties go to the group seen first among those samples, as ``Counter.most_common`` does.
    """
    counts: dict[int, int] = {}
    first_seen: dict[int, int] = {}
    out = []
    best: int | None = None
    for i, lab in enumerate(labels):
        if lab is not None:
            counts[lab] = counts.get(lab, 0) + 1
            first_seen.setdefault(lab, i)
            # only lab's count changed, so the leader is lab or stays; order: count, then first seen
            if best is None or (counts[lab], -first_seen[lab]) > (counts[best], -first_seen[best]):
                best = lab
        out.append(float(best is not None and group_correct[best]))
    return out


def bootstrap_ci(
    per_problem: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over problems (axis 0) with a percentile bootstrap interval resampling problems.

    ``per_problem`` is (problems, k). Resampling is done with multinomial counts, so memory is
    (n_boot, problems) rather than (n_boot, problems, k). With ``n_boot == 0`` the interval
    degenerates to the mean.
    """
    per_problem = np.asarray(per_problem, dtype=np.float64)
    mean = per_problem.mean(axis=0)
    if n_boot == 0:
        return mean, mean.copy(), mean.copy()
    n_problems = per_problem.shape[0]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_problems, np.full(n_problems, 1.0 / n_problems), size=n_boot)
    boots = counts @ per_problem / n_problems  # (n_boot, k)
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(boots, [alpha, 1.0 - alpha], axis=0)
    return mean, lo, hi
