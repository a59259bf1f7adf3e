"""The one interface every judge backend implements: judge one completion, return the raw answer."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class Item:
    """One completion to judge, with what any backend may need."""

    problem_id: str
    sample_idx: int
    question: str
    reference_solution: str
    gold: str
    completion: str  # cut at a following "\nQuestion:"
    prompt: str  # the rendered judge prompt (LLM backends)
    verify_correct: bool  # the vote stage's math-verify result for this sample
    extracted_answer: Optional[str]  # the vote stage's parsed final answer (None: none found)
    answer_style: str = "gsm8k"
    repeat: int = 0  # > 0: the same completion judged again (its own cache entry)


@dataclass
class Reply:
    text: Optional[str]
    tokens_in: int = 0
    tokens_out: int = 0
    truncated: bool = False  # the answer hit max_output_tokens (finishReason MAX_TOKENS / "length")


class ApiFailure(RuntimeError):
    """The request failed for good (retries exhausted, 4xx, timeout). Never contains an API key."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status  # HTTP status when there was one


@dataclass
class BatchStatus:
    """One look at a submitted Batch API job."""

    state: str  # e.g. JOB_STATE_RUNNING
    done: bool  # a terminal state
    succeeded: bool
    results: dict = field(default_factory=dict)  # cache key -> Reply, or the request's error message (str)
    error: Optional[str] = None  # why the job failed, when the API says


class Backend(abc.ABC):
    name: str
    paid: bool = True  # paid backends go through the cache and the ledger's dollars
    coverage: tuple[str, ...] = ()  # categories the backend detects only in part, said in every report

    @abc.abstractmethod
    async def judge(self, item: Item) -> Reply: ...

    async def aclose(self) -> None:
        return None

    # Batch API mode (judge.batch): only backends with supports_batch implement these.
    supports_batch: bool = False

    async def batch_submit(self, requests: list[tuple[str, str]], display_name: str) -> str:
        """Submit (cache key, prompt) pairs as one job; return the job's name."""
        raise RuntimeError(f"the {self.name} backend has no Batch API mode (judge.batch needs backend gemini)")

    async def batch_status(self, name: str, keys: list[str]) -> BatchStatus:
        """The job's state, and when it succeeded every answer by cache key (``keys``: submit order)."""
        raise RuntimeError(f"the {self.name} backend has no Batch API mode (judge.batch needs backend gemini)")


RETRY_STATUS = (408, 429, 500, 502, 503, 504)
