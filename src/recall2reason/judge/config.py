"""Typed config of the judge stage (the ``judge:`` section of config.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass
class Prices:
    """Dollars per million tokens; the Batch API (``judge.batch``) bills ``batch_discount`` x these."""

    input_per_m: float = 0.10
    output_per_m: float = 0.40
    batch_discount: float = 0.5


@dataclass
class Retry:
    """HTTP retries of 408 / 429 / 5xx and connection errors (exponential backoff)."""

    attempts: int = 5  # including the first request
    initial_delay_s: float = 1.0
    max_delay_s: float = 60.0


@dataclass
class JudgeConfig:
    backend: Literal["gemini", "openai", "rules"] = "gemini"
    model: str = "gemini-2.5-flash-lite"
    first_k: int = 8  # judge sample indices 0..first_k-1 of every problem (paper: first 8 of 64)
    concurrency: int = 32  # requests in flight
    requests_per_minute: float = 4000
    base_url: Optional[str] = None  # gemini: API endpoint override; openai: server URL (required)
    max_output_tokens: int = 1024
    temperature: float = 0.0  # > 0 samples the judge's answer (for `validate --repeats`: its label variance)
    timeout_s: float = 120.0  # one HTTP request
    retry: Retry = field(default_factory=Retry)
    max_failed_frac: float = 0.0  # items whose API calls all failed: above this share the stage fails
    est_output_tokens: int = 120  # estimate mode: judge answer length assumed per call
    prices: Prices = field(default_factory=Prices)
    # Batch API mode (gemini only, half price): uncached items go out as batch jobs, polled to the end
    batch: bool = False
    batch_poll_s: float = 30.0  # seconds between status checks of a submitted job
    batch_max_requests: int = 1000  # requests per job (inlined requests; a job is also cut at ~15 MB of prompts)
    batch_max_wait_s: float = 86400.0  # give up polling after this long (the job stays recorded: a rerun resumes it)

    def __post_init__(self) -> None:
        from recall2reason.common.cfg import ConfigError

        if self.first_k < 1:
            raise ConfigError(f"judge.first_k: must be >= 1, got {self.first_k}")
        if self.concurrency < 1:
            raise ConfigError(f"judge.concurrency: must be >= 1, got {self.concurrency}")
        if self.requests_per_minute <= 0:
            raise ConfigError("judge.requests_per_minute: must be > 0")
        if not 0 <= self.temperature <= 2:
            raise ConfigError(f"judge.temperature: must be in [0, 2], got {self.temperature}")
        if self.retry.attempts < 1:
            raise ConfigError("judge.retry.attempts: must be >= 1")
        if self.batch and self.backend != "gemini":
            raise ConfigError(f"judge.batch: the Batch API mode is for the gemini backend only, not {self.backend!r}")
        if self.batch_poll_s <= 0 or self.batch_max_wait_s <= 0 or self.batch_max_requests < 1:
            raise ConfigError("judge.batch_poll_s / batch_max_wait_s: must be > 0; judge.batch_max_requests: >= 1")
        if self.backend == "openai" and not self.base_url:
            raise ConfigError("judge.base_url: the openai backend needs the server URL, e.g. http://localhost:8000/v1")


GEMINI_KEY_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
OPENAI_KEY_VAR = "OPENAI_API_KEY"  # optional: local servers (vLLM, Ollama, llama.cpp) need none
