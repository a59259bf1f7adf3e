"""The paper's error taxonomy (Section 4.1, Appendix C.1): 8 categories in 3 groups.

Defined once here; the judge validates against it and the report orders its tables by it.
"""

from __future__ import annotations

GROUPS: dict[str, str] = {
    "A": "In-Context Associative Memory Failures",
    "B": "Parametric Memory & Procedural Failures",
    "C": "Logical & Execution Failures",
}

# category -> group, in the paper's order (Table 1 rows)
CATEGORIES: dict[str, str] = {
    "Key-Value Binding Error": "A",
    "State Tracking Error": "A",
    "Context Synthesis Error": "A",
    "Procedural Retrieval Error": "B",
    "Conceptual Knowledge Gap": "B",
    "Flawed Logical Synthesis": "C",
    "Calculation Error": "C",
    "Goal Interpretation Error": "C",
}

NO_ERROR = "No Error"
NO_ERROR_GROUP = "None"
JUDGE_ERROR_GROUP = "Error"  # the judge's answer could not be used (invalid JSON, unknown category)

ALL_LABELS: tuple[str, ...] = (*CATEGORIES, NO_ERROR)
ALL_GROUPS: tuple[str, ...] = (*GROUPS, NO_ERROR_GROUP, JUDGE_ERROR_GROUP)


def group_of(category: str) -> str:
    """Group letter of a category name ('None' for No Error); KeyError for unknown names."""
    if category == NO_ERROR:
        return NO_ERROR_GROUP
    return CATEGORIES[category]
