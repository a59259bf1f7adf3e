"""Offline, deterministic judge: math-verify for correctness, the reference solution for the category.

No model is asked anything: good for the offline demo, CI and smoke tests, not for the paper's
conclusions. Measured on the validation set (``python -m recall2reason.judge validate --cfg
'{"backend": "rules"}'``; benchmarks/reports/2026-12-06-judge-validation.md), an optimistic
figure: its completions are reference solutions with one change, which is what these rules compare against.

``is_correct`` is the vote stage's math-verify result for the sample (so it never disagrees with
math-verify); a correct sample is ``No Error``. A wrong one is compared with the problem and the
reference solution. A "step" is an ``a op b ... = c`` equation of the text (``+ - * / x × ÷
\\times \\cdot \\div``, ``$``, thousands commas and ``%`` understood, a result in ``\\boxed{}``
too); a number is *known* if the question states it (digits or number words), it is a constant
(0 1 2 3 4 7 10 12 24 52 60 100 365 1000), the reference solution has it, or an earlier step
computed it. Rules, the first that fires wins:

1. Key-Value Binding Error: one of its first sentences restates a sentence of the question with
   other numbers, or (in a text without a single step) its first line with a number states one
   that is not known and not one operation away from the question's numbers.
2. The culprit step is the first one that has wrong arithmetic, uses a number that is not known,
   uses a value whose ``+`` / ``-`` update it has not used since (a forgotten update), or leaves
   the reference's values for good (its result is not a value of the reference and no step that
   is feeds on it: "3 + 4 = 7" before "16 - 7 = 9" is another route, not an error). Compared with
   the reference step it resembles most (the same numbers but at most one, the same operations
   first, then the nearest):
   a. Calculation Error: its stated result is not what its left side evaluates to.
   b. Procedural Retrieval Error: the numbers of a reference step with another operation, one of
      them a unit / percent constant (multiplies by 60 where the reference divides).
   c. Conceptual Knowledge Gap: a unit / percent constant of the reference that the question does
      not state replaced by another number (a dozen taken as 10).
   d. Flawed Logical Synthesis: fewer steps than the reference and none reaches a value of it: a
      plan of its own.
   e. State Tracking Error: the forgotten update, or a value used where the reference uses that
      value updated by a ``+`` / ``-`` step.
   f. Context Synthesis Error: a number of the question the reference never needs (a
      distractor), or another number of the question or the reference where the reference uses
      a different one.
   g. Key-Value Binding Error: another number where the reference uses one the question states,
      or a number that is not known.
   h. Flawed Logical Synthesis: no reference step resembles it.
3. Goal Interpretation Error: every step is sound and the final answer is a value of the
   reference other than the gold (an intermediate result).
4. Otherwise Flawed Logical Synthesis (also for empty text or no extractable answer).

What these rules cannot see: a Procedural Retrieval Error other than a unit / percent conversion
(a wrong formula, such as area for perimeter), a Conceptual Knowledge Gap other than a unit's
definition (what a remainder implies), and any error in a solution without steps the reference
shares (most MATH solutions): those end as Flawed Logical Synthesis or Goal Interpretation Error.
The judge's ``COVERAGE`` says so in every validation report and ledger.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from fractions import Fraction
from typing import Optional

from recall2reason.judge.arith import evaluate, numbers, stated_numbers
from recall2reason.judge.backends.base import Backend, Item, Reply
from recall2reason.judge.categories import NO_ERROR, group_of

KV, ST, CS = "Key-Value Binding Error", "State Tracking Error", "Context Synthesis Error"
PR, CK = "Procedural Retrieval Error", "Conceptual Knowledge Gap"
FLS, CALC, GI = "Flawed Logical Synthesis", "Calculation Error", "Goal Interpretation Error"

COVERAGE = (
    "Procedural Retrieval Error: only a unit / percent conversion done the wrong way round",
    "Conceptual Knowledge Gap: only a unit / percent constant misremembered",
    "Flawed Logical Synthesis: also every error no other rule explains",
)
UNIT_CONSTANTS = {Fraction(v) for v in (7, 12, 24, 52, 60, 100, 365, 1000)}
CONSTANTS = UNIT_CONSTANTS | {Fraction(v) for v in (0, 1, 2, 3, 4, 10)}
_LATEX_OPS = ((r"\times", "*"), (r"\cdot", "*"), (r"\div", "/"), ("×", "*"), ("·", "*"), ("÷", "/"), (r"\$", "$"))
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
# one term of a step: a number with up to three unit words ("35 miles/gallon", "2 cups per bag")
# (a letter right after a digit is a variable, "42a"; two or more are a unit, "110km"). Each run of
# spaces has one place to go (a term takes spaces only after "(" / "$" or before "%" / ")", the
# operator takes the rest) and a unit word runs to its last letter: with two places the regex
# backtracks through every split, 3^n on a line of n failed "+ 1" terms (a minute at n = 8)
_TERM = rf"(?:\(\s*)?(?:\$\s*)?(?:{_NUM})(?:\s*%)?(?:(?:\s+|/|(?=[A-Za-z]{{2}}))(?!x\b)[A-Za-z][A-Za-z/.'’-]*(?![A-Za-z])){{0,3}}(?:\s*\))?"
_STEP = re.compile(
    rf"(?<![\w.^_{{])(?P<lhs>{_TERM}(?:\s*[-+*/]\s*{_TERM})+)\s*=\s*(?:\$\s*)?(?:\\boxed\{{\s*)?(?P<result>-?(?:{_NUM}))"
)
_UNIT_WORDS = re.compile(r"(?<=[\d%\s])/?[A-Za-z][A-Za-z/.'’-]*")
_WORDS = re.compile(r"[a-z]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n")


def _normalise(text: str) -> str:
    for a, b in _LATEX_OPS:
        text = text.replace(a, b)
    text = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d$(])", " * ", text)
    return re.sub(r"(?<=[A-Za-z])\s+x\s+(?=\$?\d)", " * ", text)  # "2 cups x 3"


class Step:
    """One ``lhs = result`` equation of a text."""

    def __init__(self, quote: str, lhs: str, result: Fraction, result_text: str):
        self.quote = quote
        self.lhs = lhs
        self.operands = numbers(lhs)
        self.ops = frozenset(re.findall(r"(?<=[\d)%\s])[-+*/](?=[\s\d($.])", lhs))
        self.result = result
        clean = re.sub(r"(?<=\d),(?=\d{3})", "", lhs.replace("$", ""))
        values = {evaluate(clean.replace("%", "")), evaluate(clean.replace("%", "/100"))} - {None}
        decimals = len(result_text.split(".")[1]) if "." in result_text else 0
        tol = max(Fraction(1, 2 * 10**decimals), abs(result) / 1000) if decimals else Fraction(0)
        # an lhs we cannot evaluate is given the benefit of the doubt
        self.wrong = bool(values) and all(abs(v - result) > tol for v in values)

    @property
    def additive(self) -> bool:
        return bool(self.ops) and self.ops <= {"+", "-"}

    def partials(self) -> list[Fraction]:
        """The running values of an additive step read left to right (16 - 3 - 4: 16, 13)."""
        if not self.additive:
            return []
        signs = re.findall(r"(?<=[\d)%\s])[-+](?=[\s\d($.])", self.lhs)
        if len(signs) != len(self.operands) - 1:
            return []
        running, out = self.operands[0], [self.operands[0]]
        for sign, x in zip(signs[:-1], self.operands[1:-1]):
            running = running + x if sign == "+" else running - x
            out.append(running)
        return out


def steps(text: str) -> list[Step]:
    out = []
    for line in _normalise(text).splitlines():
        for m in _STEP.finditer(line):
            lhs = _UNIT_WORDS.sub(" ", m.group("lhs")).strip()
            if lhs.count("(") != lhs.count(")"):
                lhs = lhs.replace("(", " ").replace(")", " ")
            result_text = m.group("result").replace(",", "")
            out.append(Step(line.strip(), lhs, Fraction(result_text), result_text))
    return out


def reference_steps(reference: str) -> list[Step]:
    """The reference's steps; a GSM8K solution's ``<<16-3-4=9>>`` annotations are its steps."""
    annotated = re.findall(r"<<([^<>=]+)=([^<>]+)>>", reference)
    if annotated:
        return [s for expr, res in annotated for s in steps(f"{expr} = {res}")]
    return steps(reference)


class Facts:
    """What a completion is compared with: the question's numbers and the reference's steps."""

    def __init__(self, item: Item):
        self.question = stated_numbers(item.question)
        self.ref_steps = reference_steps(item.reference_solution)
        self.reference = set(numbers(_normalise(item.reference_solution))) | {s.result for s in self.ref_steps}
        self.ref_operands = {x for s in self.ref_steps for x in s.operands}
        # a reference step's running values: "16 - 3 - 4 = 9" passes 13, a text may say "leaving 13"
        self.partials = {x: r.result for r in self.ref_steps for x in r.partials()}
        self.known = self.question | CONSTANTS | self.reference | set(self.partials)
        self.gold = set(numbers(item.gold))

    def resembling(self, step: Step, position: int) -> Optional[tuple[Step, Counter, Counter]]:
        """The reference step with the same numbers but one (or all), and the numbers that differ;
        of several, the one with the same operations, then fewer differences, then the nearest to
        ``position`` (the step's index in the completion)."""
        best, best_score = None, None
        for j, r in enumerate(self.ref_steps):
            extra, missing = Counter(step.operands) - Counter(r.operands), Counter(r.operands) - Counter(step.operands)
            if len(step.operands) != len(r.operands) or sum(extra.values()) > 1:
                continue
            score = (step.ops != r.ops, sum(extra.values()), abs(j - position))
            if best_score is None or score < best_score:
                best, best_score = (r, extra, missing), score
        return best


def classify(item: Item) -> dict:
    """The verdict fields for one completion (see the module docstring for the rules)."""
    if item.verify_correct:
        return _verdict(NO_ERROR, "math-verify accepts the final answer.", None)
    text = item.completion or ""
    if not re.search(r"\w", text):
        return _verdict(FLS, "The completion contains no solution.", None)
    facts = Facts(item)

    # 1. a fact of the question restated with other numbers (in its first three lines)
    for said in _SENTENCE.split("\n".join(text.splitlines()[:3])):
        sentence = _restated(said, item.question)
        if sentence is not None:
            return _verdict(KV, f"It restates the problem's \"{sentence[:80]}\" with other numbers.", said.strip())

    # ... or, without a single step, it states a number that is not known, nor one silent step away
    # from the question's numbers ("sold for $2 each, she would make 8" computes 4 * 2)
    all_steps = steps(text)
    first = next((ln for ln in text.splitlines() if numbers(ln)), "")
    unknown = sorted(n for n in set(numbers(_normalise(first))) - facts.known if not _one_step_away(n, facts.question))
    if not all_steps and unknown:
        return _verdict(KV, f"It states {_fmt(unknown[0])}, which is not in the problem.", first.strip())

    # 2. the culprit step
    culprit = _culprit(all_steps, facts)
    if culprit is not None:
        return _classify_step(all_steps, culprit, facts)

    # 3. every step sound: the final answer is an intermediate value of the reference
    final = numbers(_normalise(item.extracted_answer or ""))
    if len(final) == 1 and final[0] in facts.reference and final[0] not in facts.gold:
        return _verdict(GI, f"The final answer {_fmt(final[0])} is an intermediate value of the reference solution.", None)
    why = "No final answer could be extracted." if item.extracted_answer is None else "No specific error pattern found."
    return _verdict(FLS, why, None)


def _one_step_away(n: Fraction, given: set[Fraction]) -> bool:
    return any(n in (a + b, a - b, a * b) or (b and n == a / b) for a in given for b in given)


def _restated(line: str, question: str) -> Optional[str]:
    """The question sentence ``line`` repeats word for word but with other numbers, if any."""
    words = set(_WORDS.findall(line.lower()))
    if not numbers(line) or len(words) < 4:
        return None
    for sentence in _SENTENCE.split(question):
        theirs = set(_WORDS.findall(sentence.lower()))
        if theirs and len(words & theirs) / len(words | theirs) >= 0.8 and Counter(numbers(line)) != Counter(numbers(sentence)):
            return sentence.strip()
    return None


def _culprit(all_steps: list[Step], facts: Facts) -> Optional[int]:
    """Index of the first step that has wrong arithmetic, uses a number that is not known, uses
    a value whose update it forgot (:func:`_stale`), or leaves the reference's values for good
    (its result is not a value of the reference and no step that is feeds on it: "3 + 4 = 7"
    before "16 - 7 = 9" is another route, not an error); None if every step is sound."""
    on_path = [s.result in facts.reference or s.result in facts.gold for s in all_steps]
    stale = next((i for i in range(len(all_steps)) if _stale(all_steps, i) is not None), len(all_steps))
    known = set(facts.known)
    for i, s in enumerate(all_steps):
        if s.wrong or any(x not in known for x in s.operands) or i == stale:
            return i
        rescued = any(on_path[j] and s.result in all_steps[j].operands for j in range(i + 1, len(all_steps)))
        if not on_path[i] and not rescued and stale == len(all_steps):  # a forgotten update comes first
            return i
        known.add(s.result)
    return None


def _stale(all_steps: list[Step], i: int) -> Optional[tuple[Fraction, Fraction]]:
    """(old value, its update) when step ``i`` uses a value that an earlier ``+`` / ``-`` step
    updated and whose update no step has used since (a restatement of that step does not count)."""
    s = all_steps[i]
    for j, earlier in enumerate(all_steps[:i]):
        if not earlier.additive or Counter(earlier.operands) == Counter(s.operands):
            continue
        old = earlier.operands[0]
        used_since = any(earlier.result in t.operands for t in all_steps[j + 1 : i + 1])
        if old in s.operands and old not in CONSTANTS and not used_since:
            return old, earlier.result
    return None


def _classify_step(all_steps: list[Step], culprit: int, facts: Facts) -> dict:
    step, before = all_steps[culprit], all_steps[:culprit]
    quote = step.quote
    if step.wrong:
        return _verdict(CALC, "An arithmetic step has a wrong result.", quote)
    earlier = {s.result for s in before}
    unknown = [x for x in step.operands if x not in facts.known and x not in earlier]
    match = facts.resembling(step, culprit)
    _, extra, missing = match if match else (None, Counter(), Counter())
    x, y = (next(iter(extra)), next(iter(missing))) if extra else (None, None)
    # a unit / percent constant handled wrongly: a parametric-memory error, whatever came before
    flipped = [r for r in facts.ref_steps if Counter(r.operands) == Counter(step.operands) and r.ops != step.ops]
    if flipped and set(step.operands) & UNIT_CONSTANTS:
        used, needed = "/".join(sorted(step.ops)), "/".join(sorted(flipped[0].ops))
        return _verdict(PR, f"It uses {used} where the conversion needs {needed}.", quote)
    if extra and y in UNIT_CONSTANTS and y not in facts.question and x not in facts.question:
        return _verdict(CK, f"It takes {_fmt(y)} as {_fmt(x)}: a unit's definition misremembered.", quote)
    # a plan of its own: shorter than the reference's, and none of its steps uses or reaches one of
    # the reference's intermediate values
    intermediate = (facts.reference | set(facts.partials)) - facts.question
    if not unknown and len(all_steps) < len(facts.ref_steps) and not any(
        s.result in facts.reference or set(s.operands) & intermediate for s in all_steps
    ):
        return _verdict(FLS, "Its plan shares no step with the solution's.", quote)
    if (stale := _stale(all_steps, culprit)) is not None:
        return _verdict(ST, f"It uses {_fmt(stale[0])} after updating it to {_fmt(stale[1])}.", quote)
    if extra and (facts.partials.get(x) == y or x in facts.reference and any(
            r.additive and x in r.operands and r.result == y for r in facts.ref_steps)):  # fmt: skip
        return _verdict(ST, f"It uses {_fmt(x)} where the solution has updated it to {_fmt(y)}.", quote)
    distractors = [x for x in step.operands if x in facts.question - facts.ref_operands - facts.reference - CONSTANTS]
    if distractors:
        return _verdict(CS, f"It uses {_fmt(distractors[0])} from the problem, which the solution never needs.", quote)
    if extra and (x in facts.question or x in facts.reference):
        return _verdict(CS, f"It uses {_fmt(x)} where the solution uses {_fmt(y)}.", quote)
    if extra and y in facts.question:
        return _verdict(KV, f"It uses {_fmt(x)} where the problem says {_fmt(y)}.", quote)
    if unknown:
        return _verdict(KV, f"It uses {_fmt(unknown[0])}, which is not in the problem.", quote)
    return _verdict(FLS, "A step combines the problem's numbers in a way the solution does not.", quote)


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
    coverage = COVERAGE  # what the rules detect only in part (validate prints it)

    def __init__(self, cfg=None):
        self.cfg = cfg

    async def judge(self, item: Item) -> Reply:
        return Reply(text=json.dumps(classify(item)))
