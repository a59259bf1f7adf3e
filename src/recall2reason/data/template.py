"""The one text format shared by training documents and eval prompts (no chat template).

A training document is ``"Question: {problem}\\nAnswer: {solution}"`` followed by the EOS
*token id* (appended by the packer, never as text). An eval prompt is the same text cut
after ``"Answer:"`` so the model continues with a solution exactly as it saw in training.
"""

from __future__ import annotations

QUESTION_PREFIX = "Question: "
ANSWER_PREFIX = "Answer:"
# A model that runs past its own solution starts a new document with this text; the vote stage
# cuts completions there (recall2reason.vote.cut_completion; EOS is the normal stop).
NEW_PROBLEM_MARKER = QUESTION_PREFIX.strip()


def format_document(problem: str, solution: str) -> str:
    return f"{QUESTION_PREFIX}{problem.strip()}\n{ANSWER_PREFIX} {solution.strip()}"


def format_prompt(problem: str) -> str:
    return f"{QUESTION_PREFIX}{problem.strip()}\n{ANSWER_PREFIX}"

