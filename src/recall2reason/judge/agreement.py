"""How well a judge's labels agree with known labels, and with themselves when asked again.

Pure arithmetic on label lists: confusion matrix, per-category precision / recall / F1, Cohen's
kappa (judge vs truth: agreement beyond what the two label frequencies give by chance) and
Fleiss' kappa (several repeats of one judge on the same items).
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence


def confusion(truth: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable]) -> dict:
    """``{true label: {predicted label: count}}`` over ``labels`` (predictions outside them, such
    as judge failures, are columns of their own)."""
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} true labels but {len(pred)} predictions")
    columns = list(labels) + sorted({p for p in pred if p not in labels}, key=str)
    table = {t: {p: 0 for p in columns} for t in labels}
    for t, p in zip(truth, pred):
        if t not in table:
            raise ValueError(f"true label {t!r} is not one of {list(labels)}")
        table[t][p] += 1
    return table


def per_label(truth: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable]) -> dict:
    """``{label: {"precision", "recall", "f1", "support", "predicted"}}``; a ratio with nothing to
    divide by (a label never predicted, or never true) is None, not 0."""
    out = {}
    for lab in labels:
        tp = sum(t == lab and p == lab for t, p in zip(truth, pred))
        support = sum(t == lab for t in truth)
        predicted = sum(p == lab for p in pred)
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if predicted and support else None)
        out[lab] = {"precision": precision, "recall": recall, "f1": f1, "support": support, "predicted": predicted}
    return out


def cohen_kappa(truth: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """(p_o - p_e) / (1 - p_e): p_o the share of items labelled alike, p_e the share expected by
    chance from each side's label frequencies. 1: perfect; 0: chance; negative: worse."""
    n = len(truth)
    if n == 0 or n != len(pred):
        raise ValueError("cohen_kappa needs two label lists of the same, non-zero length")
    p_o = sum(t == p for t, p in zip(truth, pred)) / n
    ct, cp = Counter(truth), Counter(pred)
    p_e = sum(ct[lab] * cp[lab] for lab in ct) / n**2
    return 1.0 if p_e == 1 else (p_o - p_e) / (1 - p_e)


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float:
    """Agreement of the same number of ratings per item (rows: items, e.g. one judge's repeats)."""
    if not ratings:
        raise ValueError("fleiss_kappa needs at least one item")
    k = len(ratings[0])
    if k < 2 or any(len(r) != k for r in ratings):
        raise ValueError("fleiss_kappa needs the same number (>= 2) of ratings for every item")
    n = len(ratings)
    totals: Counter = Counter()
    p_items = 0.0
    for row in ratings:
        counts = Counter(row)
        totals.update(counts)
        p_items += (sum(c * c for c in counts.values()) - k) / (k * (k - 1))
    p_bar = p_items / n
    p_e = sum((c / (n * k)) ** 2 for c in totals.values())
    return 1.0 if p_e == 1 else (p_bar - p_e) / (1 - p_e)


def repeat_agreement(ratings: Sequence[Sequence[Hashable]]) -> dict:
    """Stability of repeated judgements: the mean share of an item's repeats that give its most
    common label, the share of items with one label throughout, and Fleiss' kappa."""
    modal = [Counter(r).most_common(1)[0][1] / len(r) for r in ratings]
    return {
        "repeats": len(ratings[0]),
        "items": len(ratings),
        "mean_modal_share": sum(modal) / len(modal),
        "unanimous_share": sum(m == 1 for m in modal) / len(modal),
        "fleiss_kappa": fleiss_kappa(ratings),
    }
