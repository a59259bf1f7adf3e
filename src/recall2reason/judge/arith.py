"""Exact arithmetic on the numbers of word-problem text: used by the ``rules`` backend and the
validation-set generator (GSM8K's ``<<16-3-4=9>>`` calculator annotations)."""

from __future__ import annotations

import ast
import operator
import re
from fractions import Fraction
from typing import Optional

# a number as word problems write it: 16, 1,200, 3.5, -2 (not the 3 of "16-3")
NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\d])|(?<![\w.])\.\d+")
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def to_fraction(token: str) -> Fraction:
    return Fraction(token.replace(",", ""))


def numbers(text: str) -> list[Fraction]:
    out = []
    for m in NUMBER.finditer(text or ""):
        try:
            out.append(to_fraction(m.group(0)))
        except (ValueError, ZeroDivisionError):
            pass
    return out


NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "hundred": 100, "thousand": 1000, "twice": 2, "double": 2, "half": 2, "triple": 3, "thrice": 3,
    "dozen": 12, "quarter": 4, "third": 3, "fourth": 4, "fifth": 5, "tenth": 10,
}  # fmt: skip


def stated_numbers(text: str) -> set[Fraction]:
    """The numbers a question states, in digits or in words ("seven times", "a dozen")."""
    return set(numbers(text)) | {Fraction(v) for w, v in NUMBER_WORDS.items() if re.search(rf"\b{w}\b", text, re.I)}


def evaluate(expr: str) -> Optional[Fraction]:
    """Evaluate + - * / and parentheses over exact fractions; None if it is anything else."""

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return ev(node.operand) if isinstance(node.op, ast.UAdd) else -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError("unsupported")

    try:
        return ev(ast.parse(expr, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, TypeError, RecursionError, MemoryError):
        return None


def format_number(x: Fraction, commas: bool = False) -> Optional[str]:
    """``x`` as a word problem writes it (at most 2 decimals), or None if it needs more."""
    for decimals in range(3):
        scaled = x * 10**decimals
        if scaled.denominator == 1:
            if decimals == 0:
                return f"{int(x):,}" if commas else str(int(x))
            return f"{float(x):.{decimals}f}"
    return None
