"""The judge validation set: real reference solutions, each with exactly one injected error of a known category.

GSM8K items come from GSM8K test solutions. Their ``<<16-3-4=9>>`` calculator annotations give
every step's arithmetic, so an injected error is carried through the later steps that use the
changed value (as a model would carry it), and the completion ends MetaMathQA-style with
``The answer is: N``. One item per (problem, category); per category:

- Key-Value Binding Error: a quantity of the question misread (digits reversed, or two
  quantities swapped between their entities); the completion restates the wrong fact first and
  uses it throughout.
- State Tracking Error: a step that should use a just-updated value (the result of a ``+``/``-``
  step) uses the value from before the update.
- Context Synthesis Error: one step pulls in a number of the question that the reference never
  uses (a distractor), or where there is none, another quantity of the question.
- Procedural Retrieval Error: a unit conversion or percentage done the wrong way round: a step
  that divides by 60 / 12 / 7 / 24 / 52 / 365 / 100 / 1000 (a constant the question does not
  state) multiplies instead, or the reverse.
- Conceptual Knowledge Gap: the definition behind such a constant misremembered: an hour of 100
  minutes, a dozen of 10, a week of 5 days, a percent as a tenth. (The paper's own example, what
  a remainder implies, occurs in 9 GSM8K solutions only, too few to build on.)
- Flawed Logical Synthesis: an invented goal: the completion combines the question's numbers in
  a plan unrelated to the question (their sum, or the product of the first two).
- Calculation Error: one step's result off by a slip (+-1, +-2, +-10, two digits swapped).
- Goal Interpretation Error: the reference's steps, stopped at an intermediate result.
- No Error: the reference's steps as they are.

MATH items (smaller: No Error, Calculation Error, Goal Interpretation Error, the categories a
LaTeX solution allows to inject without re-deriving it) come from MATH500 solutions: the last
equation ``a op b = gold`` with its result changed (and the box after it), or the solution cut at
an earlier ``= N`` that is not the answer and that N boxed.

Seeded: the same data, seed and sizes give the same file. Written to
``src/recall2reason/judge/data/validation_v1.jsonl`` by

    python -m recall2reason.judge.validation_set --data ../shared/data --out src/recall2reason/judge/data/validation_v1.jsonl

Hand-checked (2026-12-06): 2 items of every category drawn at random (seed 11) from the file as
committed but for the last fix below, 3 of its Conceptual Knowledge Gap items after it, and 3 per
category (seed 7) of the draft before, about 65 in all, read against their question and
reference: each has the intended single error, carried through the later steps, and a final
answer that differs from the gold (except No Error). About 70 items of earlier drafts were read
too; their faults were fixed here, not in the file: numbers of fractions (the 4 of 1/4) misread,
a pulled-in number already in the same step, a "unit constant" that was a step's result or a
number word of the question ("seven times"), an intermediate value equal to a given number,
arithmetic the reference does without an annotation, MATH cuts inside ``[asy]`` or ``align``,
and (the last fix) a misremembered unit constant that the line does not show ("900 minutes =
9 hours").
Known limits: a line may still mention a number the error changed elsewhere ("needs 7 boxes ...
2*0.25"); some labels are debatable by the taxonomy's own definitions: a Context Synthesis item
whose pulled-in number is another quantity of the question reads like a Key-Value Binding
error, a unit error like the other group B category, and the Flawed Logical Synthesis items
follow two fixed plans, easier to spot than a model's invented goals.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Optional

from recall2reason.common.io import atomic_write
from recall2reason.judge.arith import NUMBER, evaluate, format_number, numbers, stated_numbers, to_fraction
from recall2reason.judge.categories import NO_ERROR
from recall2reason.vote.endings import last_boxed

VERSION = "validation-v1"
DEFAULT_PATH = Path(__file__).parent / "data" / "validation_v1.jsonl"

KV, ST, CS = "Key-Value Binding Error", "State Tracking Error", "Context Synthesis Error"
PR, CK = "Procedural Retrieval Error", "Conceptual Knowledge Gap"
FLS, CALC, GI = "Flawed Logical Synthesis", "Calculation Error", "Goal Interpretation Error"
GSM8K_LABELS = (KV, ST, CS, PR, CK, FLS, CALC, GI, NO_ERROR)
MATH_LABELS = (CALC, GI, NO_ERROR)

# unit and percent constants a question need not state, and a misremembered definition of each
WRONG_DEFINITION = {60: 100, 12: 10, 7: 5, 24: 12, 52: 48, 365: 360, 100: 10, 1000: 100}

_ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>\s*(\$?)(\d[\d,]*(?:\.\d+)?|\.\d+)")
_EXPR_NUMBER = re.compile(r"\d*\.?\d+")


# ---------------------------------------------------------------------------- GSM8K solutions


@dataclass
class Calc:
    """One calculator step: ``expr`` and its value as the annotation states them."""

    expr: str
    value: Fraction
    commas: bool  # the shown result had thousands separators


@dataclass
class Solution:
    """A GSM8K solution as lines of text pieces and steps: ``[[text, Calc, text, ...], ...]``.

    A text piece before a step holds the step's visible left side (``16 - 3 - 4 = ``); the
    annotation itself is dropped, so the text reads like a MetaMathQA solution."""

    question: str
    lines: list[list] = field(default_factory=list)

    @property
    def calcs(self) -> list[Calc]:
        return [p for line in self.lines for p in line if isinstance(p, Calc)]

    def copy(self) -> "Solution":
        return Solution(self.question, [[Calc(p.expr, p.value, p.commas) if isinstance(p, Calc) else p for p in line]
                                        for line in self.lines])  # fmt: skip

    def render(self, upto_calc: Optional[int] = None) -> Optional[str]:
        """The text; with ``upto_calc`` only the lines up to the one holding that step."""
        out, k = [], 0
        for line in self.lines:
            text = ""
            for p in line:
                if isinstance(p, Calc):
                    shown = format_number(p.value, p.commas)
                    if shown is None:
                        return None
                    text += shown
                    k += 1
                else:
                    text += p
            out.append(text.rstrip())
            if upto_calc is not None and k > upto_calc:
                break
        return "\n".join(out)


def parse_gsm8k(question: str, answer: str) -> Optional[Solution]:
    """The solution's steps, or None when an annotation does not check out (or the last step is not the gold)."""
    body, gold = answer.rsplit("####", 1)
    sol = Solution(question)
    for raw in body.strip().splitlines():
        line, pos = [], 0
        for m in _ANNOTATION.finditer(raw):
            value = evaluate(m.group(1))
            try:
                stated = to_fraction(m.group(2))
                shown = to_fraction(m.group(4))
            except (ValueError, ZeroDivisionError):
                return None
            if value is None or value != stated or value != shown or format_number(value) is None:
                return None
            line += [raw[pos : m.start()] + m.group(3), Calc(m.group(1).strip(), value, "," in m.group(4))]
            pos = m.end()
        if "<<" in raw[pos:] or re.search(r"=\s*\$?\d", _ANNOTATION.sub(" ", raw)):
            return None  # arithmetic without an annotation: its numbers could not be carried
        line.append(raw[pos:])
        sol.lines.append(line)
    calcs = sol.calcs
    if len(calcs) < 2 or calcs[-1].value != to_fraction(gold.strip()):
        return None
    return sol


def question_numbers(question: str) -> set[Fraction]:
    return stated_numbers(question)


def expr_numbers(expr: str) -> list[Fraction]:
    return [Fraction(t) for t in _EXPR_NUMBER.findall(expr)]


def substitute_expr(expr: str, mapping: dict[Fraction, Fraction]) -> str:
    """Every number of ``expr`` whose value is a key of ``mapping`` replaced, all at once."""

    def sub(m: re.Match) -> str:
        v = Fraction(m.group(0))
        return _plain(mapping[v]) if v in mapping else m.group(0)

    return _EXPR_NUMBER.sub(sub, expr)


def _plain(x: Fraction) -> str:
    """``x`` as a Python expression (exact)."""
    return str(x.numerator) if x.denominator == 1 else f"({x.numerator}/{x.denominator})"


def _show(x: Fraction) -> str:
    return format_number(x) or _plain(x)


def replace_last(text: str, old: Fraction, new: Fraction) -> Optional[str]:
    """``text`` with its last number equal to ``old`` written as ``new``; None if there is none."""
    hits = [m for m in NUMBER.finditer(text) if to_fraction(m.group(0)) == old]
    shown = format_number(new, commas="," in (hits[-1].group(0) if hits else ""))
    if not hits or shown is None:
        return None
    m = hits[-1]
    return text[: m.start()] + shown + text[m.end() :]


def replace_all(text: str, mapping: dict[Fraction, Fraction]) -> Optional[str]:
    out, pos = "", 0
    for m in NUMBER.finditer(text):
        v = to_fraction(m.group(0))
        if v in mapping:
            shown = format_number(mapping[v], commas="," in m.group(0))
            if shown is None:
                return None
            out += text[pos : m.start()] + shown
            pos = m.end()
    return out + text[pos:]


def recompute(sol: Solution, start: int, changed: dict[Fraction, Fraction]) -> Optional[Solution]:
    """Re-evaluate every step from ``start`` on, carrying the ``changed`` values (old -> new) into
    the steps that use them, their shown left sides and later mentions, as a model that believes
    the new values would; None when a changed value is ambiguous (it equals a question number or
    another step's result) or a step stops being a number a solution would write."""
    values = [c.value for c in sol.calcs]
    qn = question_numbers(sol.question)
    if any(o in qn or values.count(o) > 1 for o in changed):
        return None
    k = 0
    for line in sol.lines:
        for i, p in enumerate(line):
            if not isinstance(p, Calc):
                if k >= start and i + 1 == len(line) and changed:  # the text after the line's last step
                    new = replace_all(p, {o: n for o, n in changed.items() if o not in qn})
                    if new is None:
                        return None
                    line[i] = new
                continue
            if k >= start:
                hits = {o: n for o, n in changed.items() if o in expr_numbers(p.expr)}
                if hits:
                    line[i - 1] = replace_all(line[i - 1], hits)
                    if line[i - 1] is None:
                        return None
                p.expr = substitute_expr(p.expr, hits)
                old, p.value = p.value, evaluate(p.expr)
                if p.value is None or format_number(p.value) is None:
                    return None
                if old != p.value:
                    if old in qn or values.count(old) > 1 or not restate_result(line, i, old, p.value):
                        return None
                    changed[old] = p.value
            k += 1
    return sol


def restate_result(line: list, i: int, old: Fraction, new: Fraction) -> bool:
    """A step's result changed: its own line's earlier mentions of it change too ("they spend
    4 hours because 240 / 60 = 4"); False when that cannot be written."""
    if old in expr_numbers(line[i].expr):
        return True
    updated = replace_all(line[i - 1], {old: new})
    if updated is None:
        return False
    line[i - 1] = updated
    return True


def _position(sol: Solution, calc: Calc) -> tuple[list, int]:
    return next((line, i) for line in sol.lines for i, p in enumerate(line) if p is calc)


# ---------------------------------------------------------------------------- GSM8K injections
# Each takes (solution, rng) and returns (completion without its final line, final value, detail) or None.

Injected = Optional[tuple[str, Fraction, str]]


def _finish(sol: Optional[Solution], detail: str, prefix: str = "") -> Injected:
    if sol is None or (text := sol.render()) is None:
        return None
    return prefix + text, sol.calcs[-1].value, detail


def change_step(sol: Solution, k: int, lhs: Callable[[str], Optional[str]], expr: Optional[str] = None,
                value: Optional[Fraction] = None) -> Optional[Solution]:
    """A copy of ``sol`` with step ``k`` rewritten (its shown left side by ``lhs``, its expression,
    or only its value for a slip) and the change carried through the later steps."""
    previous = sol.calcs[k].value
    if previous in question_numbers(sol.question) or [c.value for c in sol.calcs].count(previous) > 1:
        return None  # later uses of the result could not be told from other numbers
    out = sol.copy()
    target = out.calcs[k]
    line, i = _position(out, target)
    line[i - 1] = lhs(line[i - 1])
    if line[i - 1] is None:
        return None
    if expr is not None:
        target.expr = expr
        value = evaluate(expr)
    if value is None or format_number(value) is None or value == previous:
        return None
    target.value = value
    if not restate_result(line, i, previous, value):
        return None
    return recompute(out, k + 1, {previous: value})


def inject_calculation(sol: Solution, rng: random.Random) -> Injected:
    k = rng.randrange(len(sol.calcs))
    old = sol.calcs[k].value
    slips = [old + d for d in (1, -1, 2, -2, 10, -10)]
    digits = str(old.numerator) if old.denominator == 1 else ""
    if len(digits) >= 2 and digits[-1] != digits[-2] and not (len(digits) == 2 and digits[-1] == "0"):
        slips.append(Fraction(int(digits[:-2] + digits[-1] + digits[-2])))  # the last two digits swapped
    new = rng.choice([x for x in slips if x > 0 and x != old])
    out = change_step(sol, k, lambda piece: piece, value=new)
    return _finish(out, f"step {k + 1}: {_show(old)} written as {_show(new)}")


def _operand_uses(sol: Solution, value: Fraction) -> list[int]:
    return [k for k, c in enumerate(sol.calcs) if value in expr_numbers(c.expr)]


def _question_operands(sol: Solution) -> list[Fraction]:
    """Question quantities the steps use that no step computes (so a change to one is
    unambiguous); not the parts of a fraction such as 3/4."""
    results = {c.value for c in sol.calcs}
    used = {x for c in sol.calcs for x in expr_numbers(c.expr)}
    return sorted(x for x in set(quantities(sol.question)) & used if x not in results and x >= 2)


def quantities(question: str) -> list[Fraction]:
    """The question's numbers in order, once each, without the parts of fractions such as 3/4."""
    text = re.sub(r"\d+\s*/\s*\d+", " ", question)
    return list(dict.fromkeys(numbers(text)))


def _restate(question: str, mapping: dict[Fraction, Fraction]) -> Optional[str]:
    """The first sentence of the question with a mapped number, with the mapping applied."""
    for sentence in re.split(r"(?<!Mr\.)(?<!Ms\.)(?<!Mrs\.)(?<!Dr\.)(?<=[.!?])\s+(?=[A-Z])", question):
        if any(to_fraction(m.group(0)) in mapping for m in NUMBER.finditer(sentence)):
            return replace_all(sentence.strip(), mapping)
    return None


def inject_key_value(sol: Solution, rng: random.Random) -> Injected:
    candidates = _question_operands(sol)
    if not candidates:
        return None
    if len(candidates) >= 2 and rng.random() < 0.4:  # two entities' values swapped
        a, b = rng.sample(candidates, 2)
        mapping, detail = {a: b, b: a}, f"swapped {_show(a)} and {_show(b)}"
    else:
        q = rng.choice(candidates)
        digits = str(q.numerator) if q.denominator == 1 else ""
        if len(digits) >= 2 and digits[::-1] != digits and not digits.endswith("0"):
            wrong = Fraction(int(digits[::-1]))
        else:
            wrong = q + rng.choice([1, 2, 3, 5])
        if wrong in question_numbers(sol.question):
            return None
        mapping, detail = {q: wrong}, f"misread {_show(q)} as {_show(wrong)}"
    restated = _restate(sol.question, mapping)
    if restated is None:
        return None
    out = sol.copy()
    for line in out.lines:  # the wrong fact is believed everywhere
        for i, p in enumerate(line):
            if isinstance(p, Calc):
                p.expr = substitute_expr(p.expr, mapping)
                continue
            line[i] = replace_all(p, mapping)
            if line[i] is None:
                return None
    return _finish(recompute(out, 0, {}), detail, prefix=restated + "\n")


def inject_state_tracking(sol: Solution, rng: random.Random) -> Injected:
    calcs = sol.calcs
    options = []
    for i, c in enumerate(calcs):
        if not re.fullmatch(r"\s*\d*\.?\d+\s*[-+]\s*\d*\.?\d+(?:\s*[-+]\s*\d*\.?\d+)*\s*", c.expr):
            continue
        before = expr_numbers(c.expr)[0]  # the quantity the step updates
        options += [(i, j, before) for j in _operand_uses(sol, c.value) if j > i and before not in expr_numbers(calcs[j].expr)]
    if not options:
        return None
    i, j, before = rng.choice(options)
    updated = calcs[i].value
    out = replace_operand(sol, j, updated, before)
    detail = f"step {j + 1} uses {_show(before)}, the value before step {i + 1} updated it to {_show(updated)}"
    return _finish(out, detail)


def replace_operand(sol: Solution, k: int, old: Fraction, new: Fraction) -> Optional[Solution]:
    """Step ``k`` alone uses ``new`` where it used ``old`` (the last such number it shows)."""
    return change_step(sol, k, lambda piece: replace_last(piece, old, new), expr=substitute_expr(sol.calcs[k].expr, {old: new}))


def inject_context_synthesis(sol: Solution, rng: random.Random) -> Injected:
    used = {x for c in sol.calcs for x in expr_numbers(c.expr)} | {c.value for c in sol.calcs}
    distractors = sorted(x for x in question_numbers(sol.question) - used if x >= 2)
    operands = _question_operands(sol)
    if not operands:
        return None
    q = rng.choice(operands)
    k = rng.choice(_operand_uses(sol, q))
    in_step = set(expr_numbers(sol.calcs[k].expr))
    pool, kind = (distractors, "a distractor the reference never uses") if distractors else (
        [x for x in operands if x not in in_step], "another quantity of the question")  # fmt: skip
    if not pool:
        return None
    d = rng.choice(pool)
    return _finish(replace_operand(sol, k, q, d), f"step {k + 1} uses {_show(d)} ({kind}) instead of {_show(q)}")


def _unit_steps(sol: Solution) -> list[tuple[int, Fraction, str]]:
    """Steps ``a / c`` or ``a * c`` with c a unit / percent constant that neither the question
    states nor a step computes."""
    stated = question_numbers(sol.question) | {c.value for c in sol.calcs}
    constants = {Fraction(x) for x in WRONG_DEFINITION}
    out = []
    for k, c in enumerate(sol.calcs):
        m = re.fullmatch(r"\s*(\d*\.?\d+)\s*([*/])\s*(\d*\.?\d+)\s*", c.expr)
        if m and Fraction(m.group(3)) in constants and Fraction(m.group(3)) not in stated:
            out.append((k, Fraction(m.group(3)), m.group(2)))
    return out


def _flip_shown_operator(piece: str, const: Fraction) -> Optional[str]:
    """The shown operator before the constant turned round: "120 / 60" -> "120 * 60"."""
    shown = list(re.finditer(rf"([/*x×÷])(\s*\$?{format_number(const)})(?![\d.])", piece))
    if not shown:
        return None
    m = shown[-1]
    return piece[: m.start()] + ("*" if m.group(1) in "/÷" else "/") + piece[m.start() + 1 :]


def inject_procedural(sol: Solution, rng: random.Random) -> Injected:
    steps = _unit_steps(sol)
    if not steps:
        return None
    k, const, op = rng.choice(steps)
    flipped = "*" if op == "/" else "/"
    first = re.match(r"\s*(\d*\.?\d+)", sol.calcs[k].expr).group(1)
    out = change_step(sol, k, lambda piece: _flip_shown_operator(piece, const), expr=f"{first}{flipped}{format_number(const)}")
    verb = "multiplies by" if flipped == "*" else "divides by"
    return _finish(out, f"step {k + 1} {verb} {format_number(const)} where the conversion needs the opposite")


def inject_conceptual(sol: Solution, rng: random.Random) -> Injected:
    steps = _unit_steps(sol)
    if not steps:
        return None
    k, const, _ = rng.choice(steps)
    wrong = Fraction(WRONG_DEFINITION[int(const)])
    # the wrong definition is believed on the whole line ("over 48 weeks (1 year) ... 48*3"),
    # which must show the constant ("900 minutes = 15 hours" would only show a wrong result)
    def believe(piece: str) -> Optional[str]:
        return replace_all(piece, {const: wrong}) if const in numbers(piece) else None

    out = change_step(sol, k, believe, expr=substitute_expr(sol.calcs[k].expr, {const: wrong}))
    return _finish(out, f"step {k + 1} takes {format_number(const)} as {format_number(wrong)} (a wrong definition)")


def inject_flawed_logic(sol: Solution, rng: random.Random) -> Injected:
    qn = [x for x in quantities(sol.question) if x > 0]
    if len(qn) < 2 or sum(qn) in {c.value for c in sol.calcs} or qn[0] * qn[1] in {c.value for c in sol.calcs}:
        return None  # the invented plan must not land on a step of the real one
    if len(qn) >= 3 and rng.random() < 0.5:
        total = sum(qn)
        shown = " + ".join(format_number(x) or "" for x in qn)
        text = f"First, we add up all the numbers in the problem to get the total: {shown} = {format_number(total)}."
        text += f"\nSo the total is {format_number(total)}."
        return text, total, "adds up every number of the question"
    a, b = qn[0], qn[1]
    product = a * b
    text = (f"We need to combine the first two amounts, so we multiply them: "
            f"{format_number(a)} * {format_number(b)} = {format_number(product)}.")  # fmt: skip
    return text, product, "multiplies the first two numbers of the question"


def inject_goal(sol: Solution, rng: random.Random) -> Injected:
    calcs = sol.calcs
    options = [k for k in range(len(calcs) - 1) if calcs[k].value != calcs[-1].value]
    if not options:
        return None
    k = options[-1] if rng.random() < 0.6 else rng.choice(options)
    text = sol.render(upto_calc=k)
    return (text, calcs[k].value, f"stops after step {k + 1} of {len(calcs)}") if text else None


def no_error(sol: Solution, rng: random.Random) -> Injected:
    return _finish(sol, "the reference's steps")


GSM8K_INJECTIONS: dict[str, Callable[[Solution, random.Random], Injected]] = {
    KV: inject_key_value, ST: inject_state_tracking, CS: inject_context_synthesis, PR: inject_procedural,
    CK: inject_conceptual, FLS: inject_flawed_logic, CALC: inject_calculation, GI: inject_goal, NO_ERROR: no_error,
}  # fmt: skip


# ---------------------------------------------------------------------------- MATH injections

_MATH_RESULT = re.compile(r"(\d+)\s*(\\cdot|\\times|\+|-)\s*(\d+)\s*=\s*(\\boxed\{)?(\d+)(\})?")


def math_item(p: dict, label: str, rng: random.Random) -> Optional[dict]:
    got = MATH_INJECTIONS[label](p["solution"], p["answer"], rng, p["problem"])
    if got is None:
        return None
    completion, final, detail = got
    return item("math", p["unique_id"], p["problem"], p["solution"], p["answer"], completion, final, label, detail)


def _math_calc(solution: str, gold: str, rng: random.Random, question: str = "") -> Optional[tuple[str, str, str]]:
    if not re.fullmatch(r"\d+", gold):
        return None
    hits = [m for m in _MATH_RESULT.finditer(solution) if m.group(5) == gold]
    if not hits:
        return None
    m = hits[-1]
    a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(5))
    if {"\\cdot": a * b, "\\times": a * b, "+": a + b, "-": a - b}[op] != c:
        return None
    wrong = str(c + rng.choice([1, -1, 2, 10, -10]))
    after = solution[m.end(5) :].replace("\\boxed{" + gold + "}", "\\boxed{" + wrong + "}")
    text = solution[: m.start(5)] + wrong + after
    if "\\boxed{" + wrong + "}" not in text:
        return None
    return text, wrong, f"{a} {op} {b} written as {wrong}"


_COMMANDS = re.compile(r"\\\\[A-Za-z]+")
_ENVIRONMENTS = (("\\[", "\\]"), ("\\begin{", "\\end{"), ("[asy]", "[/asy]"))


def _math_goal(solution: str, gold: str, rng: random.Random, question: str = "") -> Optional[tuple[str, str, str]]:
    box = solution.rfind("\\boxed{")
    # "$d = 75$." or "$\binom{4}{2} = 6$.": a value the solution derives at the end of a sentence,
    # late in it, neither the answer nor a number the question gives
    hits = []
    for m in re.finditer(r"(?<!\\)\$([^$]+?)=\s*(-?\d+)\s*\$\.", solution[:box]):
        lhs, value = m.group(1).split("=")[-1].strip(), m.group(2)
        derived = re.fullmatch(r"[A-Za-z]", lhs) or not re.search(r"[A-Za-z]", _COMMANDS.sub("", lhs))
        if derived and value not in (gold, "0") and m.start() > box // 3 and Fraction(value) not in question_numbers(question):
            hits.append(m)
    if box == -1 or not hits:
        return None
    m = rng.choice(hits[-3:])
    cut = solution[: m.end()]
    if "\\boxed" in cut or cut.count("$") % 2 or any(cut.count(a) != cut.count(b) for a, b in _ENVIRONMENTS):
        return None
    return cut + f"\nThe answer is $\\boxed{{{m.group(2)}}}$.", m.group(2), "stops at an intermediate result"


def _math_no_error(solution: str, gold: str, rng: random.Random, question: str = "") -> Optional[tuple[str, str, str]]:
    return solution, gold, "the reference solution"


MATH_INJECTIONS = {CALC: _math_calc, GI: _math_goal, NO_ERROR: _math_no_error}


# ---------------------------------------------------------------------------- the set


def item(style, source, question, reference, gold, completion, final, label, detail) -> dict:
    return {
        "id": "",  # numbered once the set is complete
        "source": source,
        "answer_style": "gsm8k" if style == "gsm8k" else "math",
        "question": question,
        "reference_solution": reference,
        "gold": gold,
        "completion": completion,
        "final_answer": final,
        "label": label,
        "is_correct": label == NO_ERROR,
        "injection": detail,
    }


def gsm8k_item(r: dict, label: str, rng: random.Random) -> Optional[dict]:
    sol = parse_gsm8k(r["question"], r["answer"])
    if sol is None:
        return None
    got = GSM8K_INJECTIONS[label](sol, rng)
    if got is None:
        return None
    text, final, detail = got
    if (final == sol.calcs[-1].value) != (label == NO_ERROR) or final <= 0 or format_number(final) is None:
        return None
    return item("gsm8k", r["source"], r["question"], r["answer"], r["answer"].rsplit("####", 1)[1].strip(),
                f"{text}\nThe answer is: {format_number(final)}", format_number(final), label, detail)  # fmt: skip


def balanced(rng: random.Random, n_rows: int, labels: tuple[str, ...], per_label: int,
             make: Callable[[int, str], Optional[dict]]) -> Iterator[dict]:
    """Up to ``per_label`` items per label, one label per row (rows in a seeded order; the label
    furthest behind is tried first)."""
    order = list(range(n_rows))
    rng.shuffle(order)
    made = {label: 0 for label in labels}
    for i in order:
        if all(n >= per_label for n in made.values()):
            break
        for label in sorted((lab for lab in labels if made[lab] < per_label), key=lambda lab: made[lab]):
            if (it := make(i, label)) is not None:
                made[label] += 1
                yield it
                break


def read_sources(data_dir: str | Path, split: str) -> tuple[list[dict], list[dict]]:
    """GSM8K rows of ``split``, and MATH rows with an ``answer``: MATH500 for test, MATH train for
    train (the train split gives a development set to tune the rules backend on, never the
    committed set)."""
    data = Path(data_dir)
    gsm = [json.loads(line) for line in open(data / "gsm8k" / f"{split}.jsonl", encoding="utf-8")]
    for i, r in enumerate(gsm):
        r["source"] = f"gsm8k/{split}/{i}"
    if split == "test":
        math = [json.loads(line) for line in open(data / "math500" / "test.jsonl", encoding="utf-8")]
    else:
        math = [json.loads(line) for line in open(data / "math" / f"{split}.jsonl", encoding="utf-8")]
        math = [{**r, "answer": a} for r in math if (a := last_boxed(r["solution"])) is not None]
    return gsm, math


def build(data_dir: str | Path, seed: int = 0, gsm8k_per_label: int = 30, math_per_label: int = 20,
          split: str = "test") -> list[dict]:
    gsm, math = read_sources(data_dir, split)
    rng = random.Random(seed)
    items = list(balanced(rng, len(gsm), GSM8K_LABELS, gsm8k_per_label, lambda i, lab: gsm8k_item(gsm[i], lab, rng)))
    items += balanced(rng, len(math), MATH_LABELS, math_per_label, lambda i, lab: math_item(math[i], lab, rng))
    items.sort(key=lambda it: (it["answer_style"] != "gsm8k", GSM8K_LABELS.index(it["label"]), it["source"]))
    for n, it in enumerate(items):
        it["id"] = f"{VERSION}-{n:04d}"
    return items


def load(path: str | Path = DEFAULT_PATH) -> list[dict]:
    """The validation items of a JSONL file; a malformed row is an error naming file and line."""
    keys = ("id", "question", "reference_solution", "gold", "completion", "label", "answer_style")
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            missing = [k for k in keys if k not in row]
            if missing:
                raise ValueError(f"{path}:{lineno}: validation item lacks {missing}")
            if row["label"] not in GSM8K_LABELS:
                raise ValueError(f"{path}:{lineno}: unknown label {row['label']!r}")
            items.append(row)
    if not items:
        raise ValueError(f"{path}: no validation items")
    return items


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recall2reason.judge.validation_set", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder with gsm8k/test.jsonl and math500/test.jsonl (../shared/data)")
    p.add_argument("--out", default=str(DEFAULT_PATH))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", choices=("test", "train"), default="test",
                   help="test: the committed set; train: a development set for tuning the rules backend")
    p.add_argument("--gsm8k-per-label", type=int, default=30)
    p.add_argument("--math-per-label", type=int, default=20)
    args = p.parse_args(argv)
    items = build(args.data, args.seed, args.gsm8k_per_label, args.math_per_label, args.split)
    with atomic_write(args.out) as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    counts: dict[tuple[str, str], int] = {}
    for it in items:
        counts[it["answer_style"], it["label"]] = counts.get((it["answer_style"], it["label"]), 0) + 1
    print(f"{len(items)} items -> {args.out}")
    for (style, label), n in sorted(counts.items()):
        print(f"  {style:6s} {label}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
