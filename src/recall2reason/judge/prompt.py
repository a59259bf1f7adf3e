"""The judge prompt (paper Appendix C.1) and the validation of the judge's JSON answer.

The template in ``prompts/paper_c1_v1.txt`` is the paper's prompt verbatim except for what
PDF extraction broke: the stray line numbers are removed, "Al" is read as "AI", the word
"percentage." dropped at a page-line break is restored (Section 4.1 has the full sentence),
and the JSON structure is wrapped in the braces the extraction lost. Any change to the
template must bump ``PROMPT_VERSION``: the version is part of every cache key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Optional

from recall2reason.judge.categories import ALL_GROUPS, ALL_LABELS, NO_ERROR, group_of

PROMPT_VERSION = "paper-c1-v1"
_TEMPLATE_FILE = "paper_c1_v1.txt"
_FIELDS = re.compile(r"\{(question|correct_answer|generated_answer)\}")


def template() -> str:
    return resources.files("recall2reason.judge").joinpath("prompts", _TEMPLATE_FILE).read_text("utf-8")


def render(question: str, reference_solution: str, completion: str) -> str:
    """Fill the template in one pass, so braces inside a completion are never re-substituted."""
    values = {"question": question, "correct_answer": reference_solution, "generated_answer": completion}
    return _FIELDS.sub(lambda m: values[m.group(1)], template())


# The answer's shape, as a JSON schema (OpenAI-compatible servers; strict mode needs every key
# required) and as a Gemini response schema. The category is an enum, so constrained decoding
# cannot invent a category; validation below still checks, since not every server enforces it.
RESPONSE_JSON_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "is_correct": {"type": "boolean"},
        "error_category": {"type": "string", "enum": list(ALL_LABELS)},
        "error_group": {"type": "string", "enum": list(ALL_GROUPS)},
        "explanation": {"type": "string"},
        "erroneous_step_quote": {"type": ["string", "null"]},
    },
    "required": ["is_correct", "error_category", "error_group", "explanation", "erroneous_step_quote"],
    "additionalProperties": False,
}


def gemini_response_schema() -> dict:
    """The same shape in the Gemini API's OpenAPI-subset schema (google-genai ``types.Schema``)."""
    return {
        "type": "OBJECT",
        "properties": {
            "is_correct": {"type": "BOOLEAN"},
            "error_category": {"type": "STRING", "enum": list(ALL_LABELS)},
            "error_group": {"type": "STRING", "enum": list(ALL_GROUPS)},
            "explanation": {"type": "STRING"},
            "erroneous_step_quote": {"type": "STRING", "nullable": True},
        },
        "required": ["is_correct", "error_category", "error_group", "explanation", "erroneous_step_quote"],
        "property_ordering": ["is_correct", "error_category", "error_group", "explanation", "erroneous_step_quote"],
    }


@dataclass
class Verdict:
    is_correct: Optional[bool]
    error_category: Optional[str]  # None only for judge failures (group 'Error')
    error_group: str
    explanation: str
    erroneous_step_quote: Optional[str]
    group_mismatch: bool = False  # the judge's error_group disagreed with its category's group

    def fields(self) -> dict:
        return {
            "is_correct": self.is_correct,
            "error_category": self.error_category,
            "error_group": self.error_group,
            "explanation": self.explanation,
            "erroneous_step_quote": self.erroneous_step_quote,
        }


class InvalidVerdict(ValueError):
    """The judge's answer is not the JSON object the prompt asks for."""


def parse_verdict(text: str | None) -> Verdict:
    """Validate a judge answer. The group is derived from the category (the taxonomy is fixed)."""
    if text is None or not text.strip():
        raise InvalidVerdict("empty answer")
    body = text.strip()
    # Models without constrained decoding like to wrap JSON in a ```json fence.
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, re.S)
    if fence:
        body = fence.group(1)
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as e:
        raise InvalidVerdict(f"not valid JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(obj, dict):
        raise InvalidVerdict(f"expected a JSON object, got {type(obj).__name__}")
    category = obj.get("error_category")
    if category not in ALL_LABELS:
        raise InvalidVerdict(f"unknown error_category {category!r}")
    is_correct = obj.get("is_correct")
    if not isinstance(is_correct, bool):
        raise InvalidVerdict(f"is_correct must be true/false, got {is_correct!r}")
    explanation = obj.get("explanation")
    quote = obj.get("erroneous_step_quote")
    group = group_of(category)
    return Verdict(
        is_correct=is_correct,
        error_category=category,
        error_group=group,
        explanation=explanation if isinstance(explanation, str) else "",
        erroneous_step_quote=quote if isinstance(quote, str) else None,
        group_mismatch=obj.get("error_group") != group,
    )


def error_verdict(reason: str) -> Verdict:
    """No usable answer was obtained: category null, group 'Error' (the raw text is kept in the row)."""
    from recall2reason.judge.categories import JUDGE_ERROR_GROUP

    return Verdict(None, None, JUDGE_ERROR_GROUP, reason, None)


__all__ = ["NO_ERROR", "PROMPT_VERSION", "InvalidVerdict", "Verdict", "parse_verdict", "render"]
