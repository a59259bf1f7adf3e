"""Answer extraction with math-verify 0.9: cut completions, read their final answers (the last
ending, :mod:`recall2reason.vote.endings`), parse gold and model answers, compare them.

math-verify implements its timeouts with ``signal.alarm``, which only works in a process's
main thread; the stage therefore runs these functions in a process pool (one main thread
per worker), never in threads. ``math_verify`` is imported lazily so that
:func:`cut_completion` (reused by the judge stage) stays a cheap, dependency-free import.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from recall2reason.data.template import NEW_PROBLEM_MARKER
from recall2reason.vote.endings import final_answer_span, has_ending, strip_closing

# Literal end-of-sequence markers a decoder may leave in the text (SentencePiece / GPT-2 style).
EOS_MARKERS: tuple[str, ...] = ("</s>", "<|endoftext|>")
# The training template is "Question: {problem}\nAnswer: {solution}"; a model that does not
# stop after its answer starts a new problem with "Question:".
NEW_PROBLEM_MARKERS: tuple[str, ...] = (NEW_PROBLEM_MARKER,)


def cut_completion(text: str, eos_markers: tuple[str, ...] = EOS_MARKERS) -> str:
    """The completion up to the first EOS marker or new-problem boundary ("Question:").

    The last ending wins, so anything the model generates after its own answer
    (``#### 18\\n\\nQuestion: Tom has 5 apples ... #### 12``) must go before parsing.
    """
    cut = len(text)
    for marker in (*eos_markers, *NEW_PROBLEM_MARKERS):
        i = text.find(marker)
        if i != -1:
            cut = min(cut, i)
    return text[:cut].rstrip()


@dataclass
class Stats:
    """Per-worker counters of what went wrong inside math-verify (logged by the stage)."""

    parse_timeouts: int = 0
    parse_errors: int = 0
    no_ending: int = 0  # completions without any final-answer ending (no \\boxed{}, "The answer is", ####)
    unreadable: int = 0  # completions whose last ending states no answer we can read

    def add(self, other: "Stats") -> None:
        for f in self.__dataclass_fields__:
            setattr(self, f, getattr(self, f) + getattr(other, f))


_UNSET = object()


@dataclass
class Parsed:
    """One parsed answer: math-verify's list (sympy expression and/or string) + its key."""

    value: list[Any] = field(repr=False)
    key: str  # canonical form: str() of the sympy expression, or "text:<string>"
    _fingerprint: Any = field(default=_UNSET, repr=False, compare=False)

    def fingerprint(self, timeout_s: float) -> complex | None:
        if self._fingerprint is _UNSET:
            self._fingerprint = numeric_fingerprint(self.value[0], timeout_s)
        return self._fingerprint


def _alarm_seconds(timeout_s: float) -> int:
    # signal.alarm takes whole seconds; a float would raise inside math-verify, where the
    # TypeError is swallowed and every answer silently becomes "no answer".
    return max(1, math.ceil(timeout_s))


def parse_text(text: str, timeout_s: float, stats: Stats | None = None, boxed_only: bool = False) -> Parsed | None:
    """Parse a text with math-verify's defaults (LaTeX + plain expressions), or with
    ``boxed_only`` its LaTeX extraction of ``\\boxed{}`` alone.

    Returns None when nothing parses (no answer), on timeout, or on a parser error.
    """
    from math_verify import LatexExtractionConfig, parse
    from math_verify.errors import TimeoutException

    stats = stats if stats is not None else Stats()
    boxed = {"extraction_config": [LatexExtractionConfig(boxed_match_priority=0, try_extract_without_anchor=False)]}
    try:
        value = parse(text, parsing_timeout=_alarm_seconds(timeout_s), raise_on_error=True, **(boxed if boxed_only else {}))
    except TimeoutException:
        stats.parse_timeouts += 1
        return None
    except Exception:  # noqa: BLE001 - any parser failure means "no answer"
        stats.parse_errors += 1
        return None
    if not value:
        return None
    return Parsed(value=value, key=answer_key(value))


def answer_key(value: list[Any]) -> str:
    """Canonical string of a math-verify parse result: answers with equal keys are one group."""
    head = value[0]
    if isinstance(head, str):
        return "text:" + head.strip()
    return str(head)


def extract_answer(completion: str, timeout_s: float = 5, stats: Stats | None = None) -> Parsed | None:
    """The final answer of a raw model completion, or None when it states none.

    Cut at its end (:func:`cut_completion`), the answer of its last ending (``\\boxed{}``,
    ``The answer is``, ``####``: :func:`recall2reason.vote.endings.final_answer_span`), parsed
    by math-verify as the content of a ``\\boxed{}``: only LaTeX extraction, so an answer
    math-verify cannot read is kept as its string, never replaced by a number inside it.
    """
    stats = stats if stats is not None else Stats()
    text = cut_completion(completion)
    span = final_answer_span(text)
    if span is None:
        if has_ending(text):
            stats.unreadable += 1
        else:
            stats.no_ending += 1
        return None
    parsed = parse_text("\\boxed{" + span.text + "}", timeout_s, stats, boxed_only=True)
    stats.unreadable += parsed is None
    return parsed


def gold_text(gold: str, answer_style: str) -> str:
    """The text math-verify parses for a gold answer of the given style.

    GSM8K golds are the number after ``####`` (may carry thousands commas); MATH golds are bare
    LaTeX (``\\sqrt{3}``) that only parses inside ``\\boxed{}``.
    """
    if answer_style == "gsm8k":
        return gold.strip()
    if answer_style == "math":
        return "\\boxed{" + strip_closing(gold) + "}"  # a few MATH golds end in a full stop
    raise ValueError(f"answer_style must be 'gsm8k' or 'math', got {answer_style!r}")


def parse_gold(gold: str, answer_style: str, timeout_s: float, stats: Stats | None = None) -> Parsed | None:
    return parse_text(gold_text(gold, answer_style), timeout_s, stats)


_INT_RE = re.compile(r"-?\d+")


def _symbol_value(name: str) -> float:
    # a fixed, irrational-looking positive point per symbol name (same for both answers)
    return 0.5 + (sum(map(ord, name)) % 89) / 97 + 0.0137


def numeric_fingerprint(head: Any, timeout_s: float) -> complex | None:
    """Value of a scalar sympy expression (free symbols at fixed points), or None if unsure.

    Only for plain scalar expressions, where math-verify's equality (structural, rounding to 6
    decimals, ``(a - b).evalf() == 0`` or ``simplify(a - b) == 0``) implies equal values; not
    for relations, sets, tuples, matrices, lone symbols (``\\text{}`` answers) or percentages
    (``9\\% == 9`` holds in math-verify), which are always left to math-verify itself.
    """
    import sympy
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout

    if not isinstance(head, sympy.Expr) or isinstance(head, (sympy.Symbol, sympy.MatrixExpr)):
        return None
    if head.has(sympy.UnevaluatedExpr):
        return None

    @timeout(timeout_seconds=_alarm_seconds(timeout_s))
    def evaluate() -> complex | None:
        subs = {s: _symbol_value(s.name) for s in head.free_symbols if isinstance(s, sympy.Symbol)}
        v = head.evalf(15, subs=subs) if subs else head.evalf(15)
        if v.free_symbols or not v.is_number:
            return None
        c = complex(v)
        return c if all(map(math.isfinite, (c.real, c.imag))) else None

    try:
        return evaluate()
    except (Exception, TimeoutException):  # noqa: BLE001 - unsure: let math-verify decide
        return None


def surely_different(a: Parsed, b: Parsed, timeout_s: float) -> bool:
    """True only where math-verify would certainly reject the pair: skips its slow simplify().

    Two distinct integers, or two plain scalar expressions whose values (see
    :func:`numeric_fingerprint`) differ by more than 1e-5 relative, far outside math-verify's
    6-decimal rounding. Raw strings that coincide are left to math-verify.
    """
    if _INT_RE.fullmatch(a.key) and _INT_RE.fullmatch(b.key):
        return a.key != b.key
    fa, fb = a.fingerprint(timeout_s), b.fingerprint(timeout_s)
    if fa is None or fb is None:
        return False
    if {x.strip() for x in a.value if isinstance(x, str)} & {x.strip() for x in b.value if isinstance(x, str)}:
        return False
    return abs(fa - fb) > 1e-5 * max(1.0, abs(fa), abs(fb))


def verify_pair(gold: Parsed, pred: Parsed, timeout_s: float) -> bool:
    """math-verify's verdict that ``pred`` answers ``gold`` (asymmetric, gold first).

    Errors and timeouts of one comparison count as "not equal" inside math-verify, which then
    tries the remaining (expression, string) pairs; raise_on_error would stop at the first.
    """
    from math_verify import verify

    if surely_different(gold, pred, timeout_s):
        return False
    return bool(verify(gold.value, pred.value, timeout_seconds=_alarm_seconds(timeout_s)))


def same_answer(a: Parsed, b: Parsed, timeout_s: float) -> bool:
    """Two model answers are one vote when math-verify accepts each as the other."""
    if a.key == b.key:
        return True
    return verify_pair(a, b, timeout_s) and verify_pair(b, a, timeout_s)
