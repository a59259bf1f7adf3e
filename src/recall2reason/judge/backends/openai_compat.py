"""Any OpenAI-compatible chat server (vLLM, Ollama, llama.cpp, OpenAI) with JSON-schema output.

Lets users without Google access judge with a local open model. The SDK's own retries are off
(their delays are not configurable); this file retries 408 / 429 / 5xx and connection errors
with the exponential backoff of ``judge.retry``. OPENAI_API_KEY is used when set.
"""

from __future__ import annotations

import asyncio
import os
import random

from recall2reason.judge.backends.base import RETRY_STATUS, ApiFailure, Backend, Item, Reply
from recall2reason.judge.config import OPENAI_KEY_VAR, JudgeConfig
from recall2reason.judge.prompt import RESPONSE_JSON_SCHEMA


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, cfg: JudgeConfig):
        import openai

        self.cfg = cfg
        self.openai = openai
        self.client = openai.AsyncOpenAI(
            base_url=cfg.base_url,
            api_key=os.environ.get(OPENAI_KEY_VAR) or "none",  # local servers ignore it
            max_retries=0,
            timeout=cfg.timeout_s,
        )
        self.response_format = {
            "type": "json_schema",
            "json_schema": {"name": "judge_verdict", "schema": RESPONSE_JSON_SCHEMA, "strict": True},
        }

    async def judge(self, item: Item) -> Reply:
        retry = self.cfg.retry
        for attempt in range(1, retry.attempts + 1):
            try:
                resp = await self.client.chat.completions.create(
                    model=self.cfg.model,
                    messages=[{"role": "user", "content": item.prompt}],
                    temperature=self.cfg.temperature,
                    max_tokens=self.cfg.max_output_tokens,
                    response_format=self.response_format,
                )
            except self.openai.APIStatusError as e:
                if e.status_code not in RETRY_STATUS or attempt == retry.attempts:
                    raise ApiFailure(f"openai-compatible server HTTP {e.status_code}: {_short(e.message)}") from None
            except (self.openai.APIConnectionError, self.openai.APITimeoutError) as e:
                if attempt == retry.attempts:
                    raise ApiFailure(f"openai-compatible server unreachable: {type(e).__name__}") from None
            else:
                choice = resp.choices[0] if resp.choices else None
                usage = resp.usage
                return Reply(
                    text=choice.message.content if choice else None,
                    tokens_in=(usage.prompt_tokens or 0) if usage else 0,
                    tokens_out=(usage.completion_tokens or 0) if usage else 0,
                    truncated=choice is not None and choice.finish_reason == "length",
                )
            delay = min(retry.max_delay_s, retry.initial_delay_s * 2 ** (attempt - 1))
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self.client.close()


def _short(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[:n] + "..."
