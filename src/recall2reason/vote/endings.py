"""Where a completion states its final answer: the endings the models learn from the training mix.

OpenMathInstruct-2 solutions end with ``\\boxed{X}``, MetaMathQA ones with ``The answer is: X``,
GSM8K ones with ``#### X``. :func:`final_answer_span` finds the last of these endings in a (cut)
completion and returns the answer's text, without what is not part of the answer: math
delimiters, markdown bold, a closing full stop, unit words after a number. Pure regex and
dependency-free; math-verify parses what it returns (:func:`recall2reason.vote.extract.extract_answer`).

When in doubt, no answer: a misread answer is a vote for a number the model never gave.
- No ending at all: no answer (the last number of an unfinished completion is a guess).
- A ``\\boxed{`` whose braces never close, or an ending with nothing after it: no answer.
- Prose in the answer (a word of three or more letters outside ``\\text{}`` and known math
  words): the one number or the one ``$...$`` formula the sentence states, else (or when the
  sentence says "not") no answer.
- Two bare numbers side by side (``5 6``; LaTeX would read it as one expression): no answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

ENDINGS = ("boxed", "answer_is", "hashes")  # OpenMathInstruct-2, MetaMathQA, GSM8K

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*(\{|\s+\S)")
_ANSWER_IS = re.compile(r"\bthe\s+(?:final\s+)?answer\s+is\b\s*:?", re.I)  # not "our answer is correct"
_HASHES = re.compile(r"####")
_TRAILING = re.compile(r"(?:\\[,;:!]|\\quad|\\qquad|[.,;:!?]|\s)+$")
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"))

# words of three or more letters that are not prose in an answer
MATH_WORDS = frozenset(
    "and or sin cos tan cot sec csc log exp sqrt inf infinity max min gcd lcm mod det arcsin arccos arctan "
    "sinh cosh tanh percent percentage pct".split()
)
_TEXT_ARG = re.compile(r"\\(?:text\w*|mbox|mathrm|mathbf|operatorname|begin|end)\s*\{[^{}]*\}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"(?<![A-Za-z])(?:[a-z]{3,}|[A-Z][a-z]{2,})(?![A-Za-z])")
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+/\d+|\d+(?:\.\d+)?|\.\d+)(?:\s*\\?%)?(?![\w])")
_NEGATION = re.compile(r"\b(?:not|no|never|cannot|isn't|wasn't)\b", re.I)
_MATH_SEGMENT = re.compile(r"(?<!\\)\$([^$]+)(?<!\\)\$")
_WORDS_ONLY = re.compile(r"[A-Za-z\s,;:.!?'\"()-]*")
_NAME = re.compile(r"[A-Z][a-z]{2,}")
_FRAC_DIGITS = re.compile(r"\\([dtc]?frac)\s*(\d)\s+(\d)")  # "\dfrac 3 8"
_SIDE_BY_SIDE = re.compile(r"(?<![\w.,])\d+(?:\.\d+)?\s+\d")


@dataclass(frozen=True)
class AnswerSpan:
    """The final answer as written: which ending stated it, and its cleaned text."""

    ending: str  # one of ENDINGS
    text: str  # the answer alone, ready for math-verify (inside \\boxed{})
    start: int  # where the ending begins in the completion


def final_answer_span(text: str) -> Optional[AnswerSpan]:
    """The answer stated by the last ending of ``text`` (already cut), or None (see module doc)."""
    found = [f for f in (_last_boxed(text), _last_line_ending(text, _ANSWER_IS, "answer_is"),
                         _last_line_ending(text, _HASHES, "hashes")) if f is not None]  # fmt: skip
    if not found:
        return None
    ending, start, raw = max(found, key=lambda f: f[1])
    if raw is None:  # the last ending is broken: do not fall back to an earlier one
        return None
    answer = clean_answer(raw)
    return AnswerSpan(ending, answer, start) if answer else None


def has_ending(text: str) -> bool:
    """Whether ``text`` has any final-answer ending, readable or not."""
    return any(p.search(text) for p in (_BOXED, _ANSWER_IS, _HASHES))


def last_boxed(text: str) -> Optional[str]:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` (braces matched; ``\\boxed 9``: ``9``), or None."""
    found = _last_boxed(text)
    return found[2] if found else None


def _last_boxed(text: str) -> Optional[tuple[str, int, Optional[str]]]:
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    m = matches[-1]
    if m.group(1) != "{":  # "\boxed 9": one token (two MATH solutions write it so)
        token = re.match(r"\s*([^\s$.,]+)", text[m.start(1) :])
        return "boxed", m.start(), token.group(1) if token else None
    depth, i = 1, m.end()
    for j in range(i, len(text)):
        if text[j] == "{" and text[j - 1] != "\\":
            depth += 1
        elif text[j] == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return "boxed", m.start(), text[i:j]
    return "boxed", m.start(), None  # unbalanced braces


def _last_line_ending(text: str, pattern: re.Pattern, ending: str) -> Optional[tuple[str, int, Optional[str]]]:
    for m in reversed(list(pattern.finditer(text))):
        sentence = _first_sentence(text[m.end() :].lstrip())
        says_nothing = _WORDS_ONLY.fullmatch(sentence) and _has_prose(sentence)
        if not says_nothing or _NAME.fullmatch(strip_closing(sentence)):
            return ending, m.start(), sentence
    return None  # only phrases like "the answer is in simplest form", which state no value

def _first_sentence(text: str) -> str:
    """Up to the first line break or sentence end (. ! ? before white space) outside braces and $...$."""
    depth, in_math = 0, False
    for i, c in enumerate(text):
        escaped = text[i - 1 : i] == "\\"
        if escaped:
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        elif c == "$":
            in_math = not in_math
        elif depth == 0 and not in_math and (c == "\n" or (c in ".!?" and text[i + 1 : i + 2].isspace())):
            return text[:i]
    return text


def strip_closing(s: str) -> str:
    """Without closing punctuation and LaTeX spacing: ``30^\\circ.`` -> ``30^\\circ``."""
    return _TRAILING.sub("", s).strip()


def clean_answer(raw: str) -> Optional[str]:
    """The answer without delimiters, bold, closing punctuation and prose; None when unsure."""
    s = _FRAC_DIGITS.sub(r"\\\1{\2}{\3}", raw.strip())
    while True:
        before = s
        s = strip_closing(s)
        for open_, close in _DELIMITERS:
            inner = s[len(open_) : -len(close)]
            if len(s) > len(open_) + len(close) and s.startswith(open_) and s.endswith(close) and open_ not in inner:
                s = inner.strip()
        if s == before:
            break
    if not s:
        return None
    if _NAME.fullmatch(s):
        return f"\\text{{{s}}}"  # one name ("Sunday"): MATH writes such answers as \text{Sunday}
    if _has_prose(s):
        s = _stated_value(s)
        if s is None:
            return None
    if _SIDE_BY_SIDE.search(_TEXT_ARG.sub(" T ", s)):
        return None
    return re.sub(r"(?<!\\)%", r"\\%", s)  # a bare % starts a LaTeX comment


def _has_prose(s: str) -> bool:
    bare = _COMMAND.sub(" ", _TEXT_ARG.sub(" ", s))
    return any(w.lower() not in MATH_WORDS for w in _WORD.findall(bare))


def _stated_value(s: str) -> Optional[str]:
    """The one formula or number a sentence states ("she makes $18 a day"), else None."""
    segments = _MATH_SEGMENT.findall(s)
    if len(segments) == 1 and not _has_prose(segments[0]):
        rest = _MATH_SEGMENT.sub(" ", s)
        if not _NUMBER.search(_words_removed(rest)):
            return clean_answer(segments[0])
    plain = _words_removed(s.replace("\\$", " ").replace("$", " "))
    numbers = list(_NUMBER.finditer(plain))
    if len(numbers) != 1 or _NEGATION.search(s):  # "the answer is not 5"
        return None
    leftover = plain[: numbers[0].start()] + plain[numbers[0].end() :]
    if re.sub(r"[A-Za-z\s.,;:!?()'\"-]", "", leftover):
        return None  # something else besides the number and words: an expression, not a value
    return numbers[0].group(0).strip()


def _words_removed(s: str) -> str:
    return _WORD.sub(" ", _TEXT_ARG.sub(" ", s))
