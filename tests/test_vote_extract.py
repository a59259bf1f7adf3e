"""Cutting completions, parsing answers, clustering equal answers, scoring one problem.

The extractor's tricky cases and its measurement on every real gold are in test_vote_endings.py."""

import pytest

from recall2reason.vote import cut_completion, last_boxed
from recall2reason.vote.cluster import cluster_answers, score_problem
from recall2reason.vote.extract import extract_answer, gold_text, parse_gold, same_answer

T = 5


def test_cut_at_new_question():
    text = "Tom pays 3 * 6 = 18.\n#### 18\n\nQuestion: Tom has 5 apples and 7 pears. How many?\nAnswer: 12"
    assert cut_completion(text) == "Tom pays 3 * 6 = 18.\n#### 18"
    # uncut, math-verify takes the rightmost number of the next problem
    assert extract_answer(text, T).key == "18"
    from recall2reason.vote.extract import parse_text

    assert parse_text(text, T).key == "12"


def test_cut_at_eos_and_inline_question():
    assert cut_completion("so \\boxed{4}</s>junk 99") == "so \\boxed{4}"
    assert cut_completion("answer 7 Question: what is 8") == "answer 7"
    assert cut_completion("The answer is 3<|endoftext|>Question: 5") == "The answer is 3"
    assert cut_completion("no boundary 42") == "no boundary 42"
    assert cut_completion("Question: right away") == ""


def test_no_answer():
    assert extract_answer("I do not know.", T) is None
    assert extract_answer("", T) is None


def test_last_boxed_matches_braces():
    assert last_boxed("a \\boxed{1} then \\boxed{\\frac{1}{2}} end") == "\\frac{1}{2}"
    assert last_boxed("\\fbox{x^{2}}") == "x^{2}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{unclosed") is None


def test_gold_styles():
    assert gold_text("1,000", "gsm8k") == "1,000"
    assert parse_gold("1,000", "gsm8k", T).key == "1000"
    # bare LaTeX does not parse; wrapped in \boxed{} it does
    from recall2reason.vote.extract import parse_text

    assert parse_text("\\sqrt{3}", T) is None
    assert parse_gold("\\sqrt{3}", "math", T).key == "sqrt(3)"
    with pytest.raises(ValueError, match="answer_style"):
        gold_text("1", "aime")


def answers(*texts):
    return [extract_answer(t, T) for t in texts]


def test_cluster_merges_equal_forms():
    a = answers(
        "so The answer is: $x = 0.5$", "The answer is $\\boxed{\\frac{1}{2}}$", "hence #### 1/2", "\\boxed{\\frac12}",
        "$\\boxed{2\\sqrt{2}}$", "$\\boxed{\\sqrt{8}}$", "#### 3", "nothing here",
    )
    assert a[-1] is None
    groups = cluster_answers(a, T)
    assert [sorted(g.samples) for g in groups] == [[0, 1, 2, 3], [4, 5], [6]]
    assert groups[1].forms == ["2*sqrt(2)", "sqrt(8)"] or groups[1].forms == ["sqrt(8)", "2*sqrt(2)"]


def test_cluster_keeps_distinct_answers_apart():
    a = answers("\\boxed{2}", "\\boxed{3}", "\\boxed{-2}", "\\boxed{2.5}", "\\boxed{\\frac{5}{2}}", "\\boxed{x+1}")
    groups = cluster_answers(a, T)
    assert sorted(sorted(g.samples) for g in groups) == [[0], [1], [2], [3, 4], [5]]
    assert not same_answer(a[0], a[1], T)
    assert same_answer(a[3], a[4], T)


def test_score_problem_row_and_curves():
    texts = [
        "6 * 3 = 18. #### 18\n\nQuestion: Tom has 5 apples",  # correct once cut
        "The answer is $\\boxed{18}$.",
        "so the answer is 18.0 dollars",
        "#### 17",
        "#### 17",
        "#### 17",
        "I give up",
        "#### 5",
    ]
    res = score_problem({"id": "p1", "gold": "18", "answer_style": "gsm8k", "texts": texts, "timeout_s": T,
                         "subject": None, "level": None})
    row = res["row"]
    assert row["answers"][:4] == ["18", "18", "18.0000000000000", "17"] and row["answers"][6] is None
    assert row["correct"] == [True, True, True, False, False, False, False, False]
    assert row["no_answer"] == 1 and row["n"] == 8 and row["gold_parsed"] == "18"
    assert [(g["answer"], g["size"], g["correct"], g["samples"]) for g in row["groups"]] == [
        ("18", 3, True, [0, 1, 2]), ("17", 3, False, [3, 4, 5]), ("5", 1, False, [7]),
    ]
    assert res["pass_k"][0] == pytest.approx(3 / 8) and res["pass_k"][-1] == 1.0
    assert res["maj_exact"][0] == pytest.approx(3 / 8)
    assert res["maj_exact"][-1] == pytest.approx(0.5)  # 3 vs 3 at k = n: a fair coin
    assert res["maj_first"][-1] == 1.0  # first-seen "18" wins the tie
    assert res["maj_first"][:3] == [1.0, 1.0, 1.0]


def test_score_problem_math_style():
    texts = ["Thus $\\boxed{\\frac{\\sqrt{3}}{2}}$.", "We get \\boxed{\\frac{\\sqrt3}{2}}", "\\boxed{\\sqrt{3}}"]
    res = score_problem({"id": 7, "gold": "\\frac{\\sqrt{3}}{2}", "answer_style": "math", "texts": texts,
                         "timeout_s": T})
    assert res["row"]["correct"] == [True, True, False]
    assert [g["size"] for g in res["row"]["groups"]] == [2, 1]


def test_prefilter_never_rejects_what_math_verify_accepts():
    """surely_different() skips math-verify's slow simplify(); it may only skip pairs math-verify
    rejects (percentages, \\text{} symbols, sets, equations are never pre-judged)."""
    import itertools

    from math_verify import verify

    from recall2reason.vote.extract import parse_text, surely_different

    texts = ["\\frac{1}{2}", "0.5", "0.5000001", "0.333333", "\\frac13", "50\\%", "50", "2\\sqrt{2}", "\\sqrt{8}",
             "2.828427", "x^2+2x+1", "(x+1)^2", "x=5", "5", "\\text{abc}", "abc", "(1,2)", "\\pi", "3.141593",
             "90^\\circ", "90", "10^6", "1,000,000", "\\frac{1}{x}", "x^{-1}"]
    parsed = {t: parse_text("\\boxed{" + t + "}", T) for t in texts}
    assert all(parsed.values())
    skipped = 0
    for (ta, a), (tb, b) in itertools.permutations(parsed.items(), 2):
        if surely_different(a, b, T):
            skipped += 1
            assert not verify(a.value, b.value), (ta, tb)
    assert skipped > 300  # the filter does skip most pairs
    for ta, tb in [("50\\%", "50"), ("\\text{abc}", "abc"), ("x=5", "5"), ("0.333333", "\\frac13"),
                   ("2.828427", "2\\sqrt{2}"), ("(x+1)^2", "x^2+2x+1"), ("x^{-1}", "\\frac{1}{x}")]:
        assert not surely_different(parsed[ta], parsed[tb], T), (ta, tb)
