"""maj@k / pass@k / first-k estimators of the vote stage against brute force (exact Fractions)."""

import itertools
import math
import random
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from recall2reason.vote.estimators import bootstrap_ci, maj_exact_curve, maj_first_curve, pass_at_k_curve


def brute_maj(sizes, correct, n_none):
    """Average over every size-k subset; winner = most members, ties uniformly at random."""
    labels = [g for g, s in enumerate(sizes) for _ in range(s)] + [None] * n_none
    n = len(labels)
    out = []
    for k in range(1, n + 1):
        total, count = Fraction(0), 0
        for sub in itertools.combinations(range(n), k):
            count += 1
            votes = Counter(labels[i] for i in sub if labels[i] is not None)
            if not votes:
                continue  # all k without an answer: wrong
            top = max(votes.values())
            tied = [g for g, v in votes.items() if v == top]
            total += Fraction(sum(correct[g] for g in tied), len(tied))
        out.append(total / count)
    return out


@pytest.mark.parametrize(
    "sizes,correct,n_none",
    [
        ([3, 3], [True, False], 0),  # a tie at every even k
        ([2, 2, 2], [False, True, False], 1),  # three-way ties plus a no-answer sample
        ([1, 1, 1, 1], [True, False, False, False], 2),  # all singletons
        ([4, 1, 1, 1], [False, True, False, False], 0),  # correct minority
        ([5], [True], 3),  # one group: wrong only when all k are unanswered
        ([3, 2], [True, True], 1),  # two correct groups (math-verify accepts both)
        ([], [], 4),  # nothing parsed at all
    ],
)
def test_maj_exact_equals_brute_force_cases(sizes, correct, n_none):
    assert maj_exact_curve(sizes, correct, n_none) == brute_maj(sizes, correct, n_none)


def test_maj_exact_equals_brute_force_random():
    rng = random.Random(7)
    checked = 0
    while checked < 60:
        sizes = [rng.randint(1, 4) for _ in range(rng.randint(1, 4))]
        n_none = rng.randint(0, 3)
        if sum(sizes) + n_none > 11:
            continue
        correct = [rng.random() < 0.4 for _ in sizes]
        assert maj_exact_curve(sizes, correct, n_none) == brute_maj(sizes, correct, n_none), (sizes, correct, n_none)
        checked += 1


def test_maj_exact_known_values():
    # 3 vs 3, k = 2: P(both from one group) = 2*C(3,2)/C(6,2) = 6/15 -> correct w.p. 3/15;
    # split (9/15) is a tie -> 1/2. Total 3/15 + 9/30 = 1/2.
    assert maj_exact_curve([3, 3], [True, False], 0)[1] == Fraction(1, 2)
    # k = n is the full-sample majority: 4 correct vs 3 wrong always wins
    assert maj_exact_curve([4, 3], [True, False], 2)[-1] == 1
    # k = 1 is the share of correct samples (pass@1)
    assert maj_exact_curve([5, 2, 1], [False, True, False], 2)[0] == Fraction(2, 10)


def test_maj_exact_fast_for_n64():
    sizes = [20, 8, 5, 4, 3, 3, 2, 2] + [1] * 15
    curve = maj_exact_curve(sizes, [True] + [False] * 22, 2)
    assert len(curve) == 64 and curve[0] == Fraction(20, 64) and curve[-1] == 1
    assert all(0 <= c <= 1 for c in curve)
    worst = maj_exact_curve([6] * 10, [True] * 3 + [False] * 7, 4)  # many large tied groups
    assert worst[-1] == Fraction(3, 10)  # all ten tie at k = n: uniform pick, 3 of 10 correct


def brute_pass(n, c, k):
    items = [True] * c + [False] * (n - c)
    subs = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(items[i] for i in s) for s in subs), len(subs))


@pytest.mark.parametrize("n,c", [(1, 0), (1, 1), (5, 0), (5, 2), (8, 3), (8, 8), (10, 1)])
def test_pass_at_k_closed_form(n, c):
    curve = pass_at_k_curve(n, c)
    for k in range(1, n + 1):
        assert curve[k - 1] == brute_pass(n, c, k)
        assert curve[k - 1] == 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert curve[0] == Fraction(c, n)


def test_pass_at_k_rejects_bad_counts():
    with pytest.raises(ValueError):
        pass_at_k_curve(4, 5)


def test_maj_first_matches_counter_most_common():
    rng = random.Random(3)
    for _ in range(200):
        labels = [rng.choice([None, 0, 1, 2, 3]) for _ in range(rng.randint(1, 12))]
        correct = [rng.random() < 0.5 for _ in range(4)]
        got = maj_first_curve(labels, correct)
        for k in range(1, len(labels) + 1):
            votes = Counter(lab for lab in labels[:k] if lab is not None)
            want = float(bool(votes) and correct[votes.most_common(1)[0][0]])
            assert got[k - 1] == want, (labels, k)


def test_maj_first_tie_goes_to_first_seen():
    # A B B A: after 4 samples A and B tie at 2; A was seen first
    assert maj_first_curve([0, 1, 1, 0], [True, False]) == [1.0, 1.0, 0.0, 1.0]


def test_bootstrap_ci():
    rng = np.random.default_rng(0)
    per_problem = (rng.random((200, 5)) < np.linspace(0.1, 0.9, 5)).astype(float)
    mean, lo, hi = bootstrap_ci(per_problem, 500, seed=1)
    assert np.allclose(mean, per_problem.mean(axis=0))
    assert np.all(lo <= mean) and np.all(mean <= hi) and np.all(hi - lo > 0.02)
    # roughly +-1.96 standard errors of a binomial mean with 200 problems
    se = np.sqrt(mean * (1 - mean) / 200)
    assert np.allclose(hi - lo, 2 * 1.96 * se, rtol=0.3)
    again = bootstrap_ci(per_problem, 500, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((mean, lo, hi), again))
    m0, lo0, hi0 = bootstrap_ci(per_problem, 0, seed=1)
    assert np.array_equal(lo0, m0) and np.array_equal(hi0, m0)
