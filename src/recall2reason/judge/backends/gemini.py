"""Gemini through google-genai: JSON constrained by a response schema, ``judge.temperature`` (0 by default), no thinking.

Retries of 408 / 429 / 5xx are done by the SDK itself, which retries nothing unless
``HttpRetryOptions`` is given. The API key comes from GEMINI_API_KEY or GOOGLE_API_KEY only.

Batch API mode (``judge.batch``): ``batch_submit`` sends inlined requests (the same prompt and
generation config as online, the cache key in each request's metadata) to
``models/<model>:batchGenerateContent``; ``batch_status`` reads ``batches/<id>`` and, once the
job succeeded, its ``dest.inlined_responses``.
"""

from __future__ import annotations

import os

from recall2reason.judge.backends.base import RETRY_STATUS, ApiFailure, Backend, BatchStatus, Item, Reply
from recall2reason.judge.config import GEMINI_KEY_VARS, JudgeConfig
from recall2reason.judge.prompt import gemini_response_schema


def api_key() -> str | None:
    return next((os.environ[v] for v in GEMINI_KEY_VARS if os.environ.get(v)), None)


def make_client(cfg: JudgeConfig):
    from google import genai
    from google.genai import types

    key = api_key()
    if key is None:
        raise ApiFailure(f"the gemini judge needs an API key in {' or '.join(GEMINI_KEY_VARS)}")
    http = types.HttpOptions(
        base_url=cfg.base_url,
        timeout=int(cfg.timeout_s * 1000),
        retry_options=types.HttpRetryOptions(
            attempts=cfg.retry.attempts,
            initial_delay=cfg.retry.initial_delay_s,
            max_delay=cfg.retry.max_delay_s,
            jitter=cfg.retry.initial_delay_s,
            http_status_codes=list(RETRY_STATUS),
        ),
    )
    return genai.Client(api_key=key, http_options=http)


def generation_config(cfg: JudgeConfig):
    from google.genai import types

    return types.GenerateContentConfig(
        temperature=cfg.temperature,
        response_mime_type="application/json",
        response_schema=gemini_response_schema(),
        thinking_config=types.ThinkingConfig(thinking_budget=0),
        max_output_tokens=cfg.max_output_tokens,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )


def reply_of(response) -> Reply:
    """Text, billed tokens and truncation of a GenerateContentResponse (online or batch)."""
    usage = response.usage_metadata
    tokens_in = (usage.prompt_token_count or 0) if usage else 0
    # thinking tokens are billed as output; with thinking off they should be 0
    tokens_out = ((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0
    cand = response.candidates[0] if response.candidates else None
    text = None
    if cand is not None and cand.content is not None and cand.content.parts:
        text = "".join(p.text or "" for p in cand.content.parts if not getattr(p, "thought", False))
    truncated = cand is not None and str(getattr(cand.finish_reason, "value", cand.finish_reason)) == "MAX_TOKENS"
    return Reply(text=text, tokens_in=tokens_in, tokens_out=tokens_out, truncated=truncated)


class GeminiBackend(Backend):
    name = "gemini"

    def __init__(self, cfg: JudgeConfig):
        self.cfg = cfg
        self.client = make_client(cfg)
        self.config = generation_config(cfg)

    async def judge(self, item: Item) -> Reply:
        from google.genai import errors

        try:
            response = await self.client.aio.models.generate_content(
                model=self.cfg.model, contents=item.prompt, config=self.config
            )
        except errors.APIError as e:
            raise ApiFailure(f"gemini HTTP {e.code}: {e.message or e.status}", e.code) from None
        except Exception as e:  # connection errors and timeouts after the SDK's retries
            raise ApiFailure(f"gemini request failed: {type(e).__name__}: {e}") from None
        return reply_of(response)

    supports_batch = True

    async def batch_submit(self, requests: list[tuple[str, str]], display_name: str) -> str:
        from google.genai import errors, types

        src = [
            types.InlinedRequest(contents=prompt, config=self.config, metadata={"key": key}) for key, prompt in requests
        ]
        try:
            job = await self.client.aio.batches.create(
                model=self.cfg.model, src=src, config=types.CreateBatchJobConfig(display_name=display_name)
            )
        except errors.APIError as e:
            raise ApiFailure(f"gemini batch create HTTP {e.code}: {e.message or e.status}", e.code) from None
        except Exception as e:
            raise ApiFailure(f"gemini batch create failed: {type(e).__name__}: {e}") from None
        if not job.name:
            raise ApiFailure("gemini batch create returned no job name")
        return job.name

    async def batch_status(self, name: str, keys: list[str]) -> BatchStatus:
        from google.genai import errors

        try:
            job = await self.client.aio.batches.get(name=name)
        except errors.APIError as e:
            raise ApiFailure(f"gemini batch get {name}: HTTP {e.code}: {e.message or e.status}", e.code) from None
        except Exception as e:
            raise ApiFailure(f"gemini batch get {name} failed: {type(e).__name__}: {e}") from None
        state = str(getattr(job.state, "value", job.state) or "JOB_STATE_UNSPECIFIED")
        status = BatchStatus(state=state, done=bool(job.done), succeeded=state == "JOB_STATE_SUCCEEDED")
        if job.error is not None:
            status.error = f"{job.error.code}: {job.error.message}"
        if status.succeeded:
            responses = (job.dest.inlined_responses if job.dest else None) or []
            for i, r in enumerate(responses):
                key = (r.metadata or {}).get("key") or (keys[i] if i < len(keys) else None)
                if key is None:
                    continue
                if r.error is not None or r.response is None:
                    err = r.error
                    why = f"gemini batch request error {err.code}: {err.message}" if err else "no response"
                    status.results[key] = why
                else:
                    status.results[key] = reply_of(r.response)
        return status

    async def aclose(self) -> None:
        await self.client.aio.aclose()
