"""Offline, deterministic judge: math-verify for correctness, documented heuristics for the category.

No model is asked anything, so this is a rough stand-in for the paper's LLM judge, good for
the offline demo and for smoke tests of the pipeline, not for the paper's conclusions.

``is_correct`` is the vote stage's math-verify result for the sample (so it never disagrees
with math-verify). A correct sample is ``No Error``. For a wrong one, the first rule that
fires wins, in this order (a "step" is an ``a op b ... = c`` equation found in the text,
with ``+ - * / x × ÷ \\times \\cdot \\div``, ``$``, thousands commas and ``%`` understood;
"constants" are 0 1 2 7 10 12 24 52 60 100 365 1000 and number words of the question):

1. Key-Value Binding Error: the first line of the completion that contains a number states
   a number that is neither in the question nor a constant (not counting results of its own
   equations): the model read or hallucinated a wrong value before reasoning began.
2. For each step in order:
   a. State Tracking Error: an operand is a question number that an earlier additive step
      (``+``/``-``) already updated, and that earlier step's result is never used again
      (a restatement of the same computation does not count): the model reverted to the
      stale value.
   b. Context Synthesis Error: an operand is a question number that the reference solution
      never uses (a distractor) and that is not a constant.
   c. Calculation Error: the stated result differs from the evaluated left side (beyond the
      rounding of the stated decimals).
3. Goal Interpretation Error: the final answer (vote stage extraction) equals a number of
   the reference solution other than the gold answer, i.e. an intermediate value.
4. Otherwise Flawed Logical Synthesis (also for empty text or no extractable answer).

The rules never emit group B (Procedural Retrieval Error, Conceptual Knowledge Gap): telling
a wrong formula from a misunderstood concept needs understanding the rules do not have.
Tables built from this backend say so through the ``backend`` field of every row.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from fractions import Fraction
from typing import Optional

from recall2reason.judge.backends.base import Backend, Item, Reply
from recall2reason.judge.categories import NO_ERROR, group_of

CONSTANTS = {Fraction(v) for v in (0, 1, 2, 7, 10, 12, 24, 52, 60, 100, 365, 1000)}
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "thousand": 1000, "twice": 2, "double": 2, "half": 2, "triple": 3, "thrice": 3,
    "dozen": 12, "quarter": 4, "third": 3, "fourth": 4, "fifth": 5, "tenth": 10,
}  # fmt: skip

_NUM = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])")
_LATEX_OPS = ((r"\times", "*"), (r"\cdot", "*"), (r"\div", "/"), ("×", "*"), ("·", "*"), ("÷", "/"), (r"\$", "$"))
_LHS_CHARS = set("0123456789.,$()+-*/% ")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def numbers(text: str) -> list[Fraction]:
    out = []
    for m in _NUM.finditer(text or ""):
        try:
            out.append(Fraction(m.group(0).replace(",", "")))
        except (ValueError, ZeroDivisionError):
            pass
    return out


def _normalise(text: str) -> str:
    for a, b in _LATEX_OPS:
        text = text.replace(a, b)
    return re.sub(r"(?<=[\d)])\s*x\s*(?=[\d$(])", " * ", text)


def _eval(expr: str) -> Optional[Fraction]:
    """Evaluate + - * / and parentheses over exact fractions; None if it is anything else."""

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError("unsupported")

    try:
        return ev(ast.parse(expr, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, TypeError, RecursionError, MemoryError):
        return None


class Step:
    """One ``lhs = result`` equation of the completion."""

    def __init__(self, quote: str, lhs: str, result: Fraction, result_text: str):
        self.quote = quote
        self.operands = numbers(lhs)
        self.result = result
        self.additive = bool(re.search(r"\d\s*[+-]\s*\$?\d", lhs))
        clean = re.sub(r"(?<=\d),(?=\d{3})", "", lhs.replace("$", ""))
        values = {_eval(clean.replace("%", "")), _eval(clean.replace("%", "/100"))} - {None}
        decimals = len(result_text.split(".")[1]) if "." in result_text else 0
        tol = max(Fraction(1, 2 * 10**decimals), abs(result) / 1000) if decimals else Fraction(0)
        # an lhs we cannot evaluate is given the benefit of the doubt
        self.wrong = bool(values) and all(abs(v - result) > tol for v in values)


def steps(text: str) -> list[Step]:
    out = []
    for line in _normalise(text).splitlines():
        for m in re.finditer(r"=\s*\$?\s*(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)", line):
            i = m.start()
            while i > 0 and line[i - 1] in _LHS_CHARS:
                i -= 1
            lhs = line[i : m.start()].strip().lstrip("+*/,.) ")
            if lhs.count("(") != lhs.count(")"):
                lhs = lhs.lstrip("(")
            if len(numbers(lhs)) < 2 or not re.search(r"\d%?\s*\)?\s*[-+*/]\s*\(?\s*\$?\d", lhs):
                continue  # "x = 5" or a restatement, not a computation
            result_text = m.group(1).replace(",", "")
            out.append(Step(line.strip(), lhs, Fraction(result_text), result_text))
    return out


def classify(item: Item) -> dict:
    """The verdict fields for one completion (see the module docstring for the rules)."""
    if item.verify_correct:
        return _verdict(NO_ERROR, "math-verify accepts the final answer.", None)
    text = item.completion or ""
    if not re.search(r"\w", text):
        return _verdict("Flawed Logical Synthesis", "The completion contains no solution.", None)

    question_nums = set(numbers(item.question))
    question_nums |= {Fraction(v) for w, v in NUMBER_WORDS.items() if re.search(rf"\b{w}\b", item.question, re.I)}
    allowed = question_nums | CONSTANTS
    reference_nums = set(numbers(item.reference_solution))
    all_steps = steps(text)

    # 1. the first line with a number states a value absent from the question
    first = next((ln for ln in text.splitlines() if numbers(ln)), "")
    first_results = {s.result for s in steps(first)}
    for n in numbers(_normalise(first)):
        if n not in allowed and n not in first_results:
            return _verdict(
                "Key-Value Binding Error", f"The first step uses {_fmt(n)}, which is not in the problem.", first.strip()
            )

    # 2. step by step: stale value, distractor, arithmetic
    for i, step in enumerate(all_steps):
        for j, earlier in enumerate(all_steps[:i]):
            if sorted(earlier.operands) == sorted(step.operands):
                continue  # the same computation restated, not a stale value
            later_operands = {x for s in all_steps[j + 1 : i + 1] for x in s.operands}
            stale = [x for x in step.operands if x in question_nums and x in earlier.operands and x not in CONSTANTS]
            if earlier.additive and stale and earlier.result not in later_operands:
                return _verdict(
                    "State Tracking Error",
                    f"It reuses the old value {_fmt(stale[0])} after updating it to {_fmt(earlier.result)}.",
                    step.quote,
                )
        if reference_nums:
            distractors = [x for x in step.operands if x in question_nums and x not in reference_nums and x not in CONSTANTS]
            if distractors:
                return _verdict(
                    "Context Synthesis Error",
                    f"It uses {_fmt(distractors[0])} from the problem, which the solution never needs.",
                    step.quote,
                )
        if step.wrong:
            return _verdict("Calculation Error", "An arithmetic step has a wrong result.", step.quote)

    # 3. the final answer is an intermediate value of the reference solution
    final = numbers(_normalise(item.extracted_answer or ""))
    gold = set(numbers(item.gold))
    if len(final) == 1 and final[0] in reference_nums and final[0] not in gold:
        return _verdict(
            "Goal Interpretation Error",
            f"The final answer {_fmt(final[0])} is an intermediate value of the reference solution.",
            None,
        )

    why = "No final answer could be extracted." if item.extracted_answer is None else "No specific error pattern found."
    return _verdict("Flawed Logical Synthesis", why, None)


def _verdict(category: str, explanation: str, quote: Optional[str]) -> dict:
    return {
        "is_correct": category == NO_ERROR,
        "error_category": category,
        "error_group": group_of(category),
        "explanation": explanation,
        "erroneous_step_quote": quote[:500] if quote else None,
    }


def _fmt(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{float(x):g}"


class RulesBackend(Backend):
    name = "rules"
    paid = False

    def __init__(self, cfg=None):
        self.cfg = cfg

    async def judge(self, item: Item) -> Reply:
        return Reply(text=json.dumps(classify(item)))
