"""Judge backends, one file each: ``gemini`` (google-genai), ``openai`` (any OpenAI-compatible
server), ``rules`` (offline heuristics). SDKs are imported only when a backend is built."""

from __future__ import annotations

from recall2reason.judge.backends.base import ApiFailure, Backend, BatchStatus, Item, Reply


def make_backend(cfg) -> Backend:
    if cfg.backend == "gemini":
        from recall2reason.judge.backends.gemini import GeminiBackend

        return GeminiBackend(cfg)
    if cfg.backend == "openai":
        from recall2reason.judge.backends.openai_compat import OpenAIBackend

        return OpenAIBackend(cfg)
    if cfg.backend == "rules":
        from recall2reason.judge.backends.rules import RulesBackend

        return RulesBackend(cfg)
    raise ValueError(f"judge.backend: unknown backend {cfg.backend!r}")


__all__ = ["ApiFailure", "Backend", "BatchStatus", "Item", "Reply", "make_backend"]
