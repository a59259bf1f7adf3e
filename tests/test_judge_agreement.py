"""Agreement arithmetic on cases computed by hand."""

import pytest

from recall2reason.judge.agreement import cohen_kappa, confusion, fleiss_kappa, per_label, repeat_agreement

TRUTH = ["A", "A", "A", "B", "B", "C"]
PRED = ["A", "A", "B", "B", "C", "C"]


def test_cohen_kappa_by_hand():
    # p_o = 4/6; p_e = (3*2 + 2*2 + 1*2) / 36 = 1/3; kappa = (2/3 - 1/3) / (2/3) = 0.5
    assert cohen_kappa(TRUTH, PRED) == pytest.approx(0.5)
    assert cohen_kappa(TRUTH, TRUTH) == 1.0
    # always the majority label: p_o = 1/2 = p_e -> 0
    assert cohen_kappa(TRUTH, ["A"] * 6) == pytest.approx(0.0)
    # swapped: p_o = 0, p_e = (1*1 + 1*1) / 4 -> -1
    assert cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cohen_kappa(["x"], [])


def test_confusion_and_per_label_by_hand():
    table = confusion(TRUTH, PRED + [], ["A", "B", "C"])
    assert table == {"A": {"A": 2, "B": 1, "C": 0}, "B": {"A": 0, "B": 1, "C": 1}, "C": {"A": 0, "B": 0, "C": 1}}
    # a prediction outside the labels (a judge failure) gets its own column
    assert confusion(["A", "B"], ["A", "Error"], ["A", "B"])["B"] == {"A": 0, "B": 0, "Error": 1}
    m = per_label(TRUTH, PRED, ["A", "B", "C", "D"])
    assert m["A"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": pytest.approx(0.8), "support": 3, "predicted": 2}
    assert m["B"]["precision"] == 0.5 and m["B"]["recall"] == 0.5 and m["B"]["f1"] == pytest.approx(0.5)
    assert m["C"]["precision"] == 0.5 and m["C"]["recall"] == 1.0
    assert m["D"] == {"precision": None, "recall": None, "f1": None, "support": 0, "predicted": 0}


def test_fleiss_kappa_by_hand():
    # P_i = 1, 1/3, 1 -> P = 7/9; p_a = 5/9, p_b = 4/9 -> P_e = 41/81; kappa = (7/9 - 41/81) / (40/81) = 0.55
    ratings = [["a", "a", "a"], ["a", "a", "b"], ["b", "b", "b"]]
    assert fleiss_kappa(ratings) == pytest.approx(0.55)
    r = repeat_agreement(ratings)
    assert r["mean_modal_share"] == pytest.approx((1 + 2 / 3 + 1) / 3) and r["unanimous_share"] == pytest.approx(2 / 3)
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) == 1.0
    with pytest.raises(ValueError):
        fleiss_kappa([["a", "b"], ["a"]])
