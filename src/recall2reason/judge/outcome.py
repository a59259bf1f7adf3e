"""What the online judge (:mod:`recall2reason.judge.run`) and the Batch API mode
(:mod:`recall2reason.judge.batch`) share: an item's cache key, the validation of one reply, the
outcome of one item and the run's tally. Both import it; neither imports the other back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from recall2reason.judge.backends import Item, Reply
from recall2reason.judge.cache import CachedAnswer, cache_key
from recall2reason.judge.config import JudgeConfig
from recall2reason.judge.prompt import PROMPT_VERSION, InvalidVerdict, parse_verdict


@dataclass
class Outcome:
    item: Item
    answer: Optional[CachedAnswer]  # None: the API failed for good
    cached: bool = False
    failure: Optional[str] = None


@dataclass
class Tally:
    calls: int = 0  # requests answered this run (paid)
    tokens_in: int = 0
    tokens_out: int = 0
    batch_tokens_in: int = 0  # the part of tokens_in / tokens_out billed at the Batch API price
    batch_tokens_out: int = 0
    batch_jobs: list = field(default_factory=list)  # names of the Batch API jobs read this run
    invalid_retries: int = 0
    api_failures: list = field(default_factory=list)


def check_reply(reply: Reply) -> tuple[Optional[dict], Optional[str]]:
    """(validated verdict fields, None) or (None, why the answer is unusable); online and batch alike."""
    try:
        if reply.truncated:
            raise InvalidVerdict("truncated answer (hit max_output_tokens)")
        v = parse_verdict(reply.text)
    except InvalidVerdict as e:
        return None, str(e)
    return {**v.fields(), "group_mismatch": v.group_mismatch}, None


def item_key(cfg: JudgeConfig, item: Item) -> str:
    """The cache key of one judgement; a sampled judge (temperature > 0) and each repeat get their own."""
    model = cfg.model
    if cfg.temperature or item.repeat:
        model += f"|temperature={cfg.temperature}|repeat={item.repeat}"
    return cache_key(cfg.backend, model, PROMPT_VERSION, item.question, item.reference_solution, item.completion)
