"""The one text format shared by training documents and eval prompts (no chat template).

A training document is ``"Question: {problem}\\nAnswer: {solution}"`` followed by the EOS
*token id* (appended by the packer, never as text). An eval prompt is the same text cut
after ``"Answer:"`` so the model continues with a solution exactly as it saw in training.
"""

from __future__ import annotations

QUESTION_PREFIX = "Question: "
ANSWER_PREFIX = "Answer:"
# A model that runs past its own solution starts a new document; the vote stage cuts
# completions at this marker (EOS is the normal stop).
NEW_PROBLEM_MARKER = "\nQuestion:"


def format_document(problem: str, solution: str) -> str:
    return f"{QUESTION_PREFIX}{problem.strip()}\n{ANSWER_PREFIX} {solution.strip()}"


def format_prompt(problem: str) -> str:
    return f"{QUESTION_PREFIX}{problem.strip()}\n{ANSWER_PREFIX}"


def cut_at_new_problem(completion: str) -> str:
    """The part of a completion before the model starts inventing the next problem."""
    i = completion.find(NEW_PROBLEM_MARKER)
    return completion if i < 0 else completion[:i]
