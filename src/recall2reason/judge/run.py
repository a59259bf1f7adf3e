"""Judge the first ``first_k`` completions of every problem of one (model, eval set).

Flow: build one :class:`Item` per (problem, sample index) -> answers already in the cache are
reused -> the rest go to the backend, at most ``concurrency`` in flight and at most
``requests_per_minute`` started -> an invalid answer (not JSON, unknown category, truncated)
is asked again once, then recorded with group "Error" and its raw text -> every paid answer is
committed to the cache the moment it arrives -> rows + ledger are written atomically at the end.
A request that fails for good (retries exhausted) is not cached and does not stop the others;
if more than ``max_failed_frac`` of the items failed, the stage exits non-zero without writing
its outputs, and a rerun asks only for those items. With ``judge.batch`` (gemini) the uncached
items go out as Batch API jobs instead, at the batch price: see :mod:`recall2reason.judge.batch`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Iterable, Optional

from tqdm import tqdm

from recall2reason.common import InputFileError, formats, jsonl_lines, write_json, write_jsonl
from recall2reason.judge.backends import ApiFailure, Backend, Item, make_backend
from recall2reason.judge.batch import BatchJobError, judge_items_batch
from recall2reason.judge.cache import CachedAnswer, JudgeCache
from recall2reason.judge.config import JudgeConfig
from recall2reason.judge.outcome import Outcome, Tally, check_reply, item_key
from recall2reason.judge.prompt import PROMPT_VERSION, error_verdict, render
from recall2reason.vote.extract import cut_completion  # the vote's cut: judge and math-verify see the same text

log = logging.getLogger("recall2reason.judge")



class InputError(InputFileError):
    """An input file is missing rows or has the wrong shape; the message names the file."""


EVAL_KEYS = ("id", "question", "reference_solution", "gold")


def load_items(
    cfg: JudgeConfig, eval_path: str | Path, sample_paths: Iterable[str | Path], vote_path: str | Path
) -> list[Item]:
    problems = []
    for lineno, p in jsonl_lines(eval_path, formats.EVAL_SET):
        if missing := [k for k in EVAL_KEYS if k not in p]:
            raise InputError(f"{eval_path}:{lineno}: problem row lacks key(s) {missing}; expected {formats.EVAL_SET}")
        problems.append(p)
    if not problems:
        raise InputError(f"{eval_path}: no problems in the eval set (empty file?)")
    votes = {}
    for lineno, row in jsonl_lines(vote_path, formats.VOTE_PROBLEMS):
        if "id" not in row or "correct" not in row:
            raise InputError(f"{vote_path}:{lineno}: row lacks 'id' / 'correct'; expected {formats.VOTE_PROBLEMS}")
        votes[str(row["id"])] = row
    texts: dict[tuple[str, int], str] = {}
    for path in sample_paths:
        for lineno, row in jsonl_lines(path, formats.SAMPLES):
            try:
                idx = int(row["sample_idx"])
                if idx < cfg.first_k:
                    texts[(str(row["problem_id"]), idx)] = row["text"]
            except (KeyError, TypeError, ValueError):
                raise InputError(f"{path}:{lineno}: sample row without problem_id / sample_idx / text; expected {formats.SAMPLES}")

    items = []
    for p in problems:
        pid = str(p["id"])
        vote = votes.get(pid)
        if vote is None:
            raise InputError(f"{vote_path}: no row for problem {pid!r} of {eval_path}")
        if len(vote["correct"]) < cfg.first_k:
            raise InputError(
                f"{vote_path}: problem {pid!r} has {len(vote['correct'])} samples, fewer than judge.first_k={cfg.first_k}"
            )
        answers = vote.get("answers") or [None] * len(vote["correct"])
        for idx in range(cfg.first_k):
            if (pid, idx) not in texts:
                raise InputError(f"sample files {', '.join(map(str, sample_paths))}: no sample {idx} of problem {pid!r}")
            completion = cut_completion(texts[(pid, idx)]).strip()
            items.append(
                Item(
                    problem_id=pid,
                    sample_idx=idx,
                    question=p["question"],
                    reference_solution=p["reference_solution"] or "",
                    gold=str(p["gold"]),
                    completion=completion,
                    prompt=render(p["question"], p["reference_solution"] or "", completion),
                    verify_correct=bool(vote["correct"][idx]),
                    extracted_answer=answers[idx] if idx < len(answers) else None,
                    answer_style=p.get("answer_style") or "gsm8k",
                )
            )
    return items


class RateLimiter:
    """Start at most ``per_minute`` requests a minute, evenly spaced (no bursts into a 429)."""

    def __init__(self, per_minute: float):
        self.interval = 60.0 / per_minute
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            now = time.monotonic()
            delay = self.next_at - now
            self.next_at = max(now, self.next_at) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


async def _ask(backend: Backend, item: Item, limiter: RateLimiter, sem: asyncio.Semaphore, tally: Tally):
    async with sem:
        if backend.paid:  # an offline backend has no rate limit to respect
            await limiter.wait()
        reply = await backend.judge(item)
    tally.calls += backend.paid  # the ledger counts paid calls only
    tally.tokens_in += reply.tokens_in
    tally.tokens_out += reply.tokens_out
    return reply


async def _judge_one(item, key, backend, cache, limiter, sem, tally, batch_price: bool) -> Outcome:
    if cache is not None and (hit := cache.get(key)) is not None:
        return Outcome(item, hit, cached=True)
    calls = tokens_in = tokens_out = 0
    raw = error = verdict = None
    try:
        for attempt in (1, 2):  # an unusable answer is asked again once
            reply = await _ask(backend, item, limiter, sem, tally)
            calls += int(backend.paid)
            tokens_in += reply.tokens_in
            tokens_out += reply.tokens_out
            raw = reply.text
            verdict, error = check_reply(reply)
            if verdict is not None:
                break
            if attempt == 1:
                tally.invalid_retries += 1
                log.debug("invalid judge answer for %s/%d (%s); asking again", item.problem_id, item.sample_idx, error)
    except ApiFailure as e:
        tally.api_failures.append(f"{item.problem_id}/{item.sample_idx}: {e}")
        return Outcome(item, None, failure=str(e))
    answer = CachedAnswer(raw, verdict, error, calls, tokens_in, tokens_out, batch_price)
    if cache is not None:
        cache.put(key, answer)  # committed before anything else can go wrong
    return Outcome(item, answer)


async def judge_items(
    cfg: JudgeConfig, items: list[Item], backend: Backend, cache: Optional[JudgeCache], tally: Tally
) -> list[Outcome]:
    if cfg.batch:
        if cache is None or not backend.supports_batch:
            raise ValueError(f"judge.batch: the {backend.name} backend has no Batch API mode")
        try:
            return await judge_items_batch(cfg, items, backend, cache, tally)
        finally:
            await backend.aclose()
    limiter = RateLimiter(cfg.requests_per_minute)
    sem = asyncio.Semaphore(cfg.concurrency)
    keys = [item_key(cfg, it) for it in items]
    tasks = [
        asyncio.ensure_future(_judge_one(it, k, backend, cache, limiter, sem, tally, False))
        for it, k in zip(items, keys)
    ]
    outcomes = []
    bar = tqdm(asyncio.as_completed(tasks), total=len(tasks), desc=f"judge[{cfg.backend}]", unit="item", mininterval=2)
    try:
        for fut in bar:
            outcomes.append(await fut)
            bar.set_postfix(calls=tally.calls, failed=len(tally.api_failures), refresh=False)
    finally:
        for t in tasks:
            t.cancel()
        await backend.aclose()
    return outcomes


def dollars(cfg: JudgeConfig, tokens_in: int, tokens_out: int, batch: bool = False) -> float:
    scale = cfg.prices.batch_discount if batch else 1.0
    return scale * (tokens_in * cfg.prices.input_per_m + tokens_out * cfg.prices.output_per_m) / 1e6


def row_of(cfg: JudgeConfig, out: Outcome) -> dict:
    ans = out.answer
    if ans is None:
        fields, raw = error_verdict(f"API failure: {out.failure}").fields(), None
    elif ans.verdict is None:
        fields, raw = error_verdict(f"invalid judge answer: {ans.error}").fields(), ans.raw
    else:
        fields, raw = {k: ans.verdict[k] for k in error_verdict("").fields()}, ans.raw
    return {
        "problem_id": out.item.problem_id,
        "sample_idx": out.item.sample_idx,
        **fields,
        "verify_correct": out.item.verify_correct,
        "backend": cfg.backend,
        "judge_model": cfg.model if cfg.backend != "rules" else "rules",
        "prompt_version": PROMPT_VERSION if cfg.backend != "rules" else "rules-v1",
        "raw": raw if cfg.backend != "rules" else None,
    }


def run(
    cfg: JudgeConfig,
    *,
    model_name: str,
    dataset: str,
    eval_path: str | Path,
    sample_paths: list[str | Path],
    vote_path: str | Path,
    cache_dir: str | Path,
    out_path: str | Path,
    ledger_path: str | Path,
    backend: Optional[Backend] = None,
) -> dict:
    t0 = time.time()
    for noisy in ("httpx", "httpx2", "google_genai.models", "google_genai.batches"):  # one INFO line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    items = load_items(cfg, eval_path, sample_paths, vote_path)
    backend = backend or make_backend(cfg)
    cache = JudgeCache(cache_dir) if backend.paid else None
    log.info("judging %d completions of %s/%s with %s (%s)", len(items), model_name, dataset, cfg.backend, cfg.model)
    tally = Tally()
    try:
        outcomes = asyncio.run(judge_items(cfg, items, backend, cache, tally))
    except BatchJobError as e:
        raise SystemExit(f"judge: {e}") from None
    finally:
        if cache is not None:
            cache.close()
    order = {(it.problem_id, it.sample_idx): i for i, it in enumerate(items)}
    outcomes.sort(key=lambda o: order[(o.item.problem_id, o.item.sample_idx)])
    rows = [row_of(cfg, o) for o in outcomes]
    ledger = make_ledger(cfg, model_name, dataset, outcomes, rows, tally, time.time() - t0, backend.coverage)
    for note in backend.coverage:
        log.info("the %s backend detects %s", cfg.backend, note)

    failed = len(tally.api_failures)
    if failed > cfg.max_failed_frac * len(items):
        for line in tally.api_failures[:10]:
            log.error("API failure %s", line)
        raise SystemExit(
            f"judge: {failed} of {len(items)} items got no answer from the {cfg.backend} API "
            f"(judge.max_failed_frac={cfg.max_failed_frac}); {len(items) - failed} answers are cached in {cache_dir}, "
            "rerun to ask only for the missing ones"
        )
    write_jsonl(out_path, rows)
    write_json(ledger_path, ledger)
    log.info(
        "judge %s/%s: %d rows, %d calls (%d cache hits), %d in / %d out tokens, $%.4f this run; "
        "%d is_correct disagreements with math-verify",
        model_name, dataset, len(rows), tally.calls, ledger["cache_hits"], tally.tokens_in, tally.tokens_out,
        ledger["dollars_this_run"], ledger["verify_disagreements"]["total"],
    )  # fmt: skip
    return ledger


def make_ledger(cfg, model_name, dataset, outcomes, rows, tally: Tally, wall_s: float, coverage: tuple = ()) -> dict:
    answered = [o.answer for o in outcomes if o.answer is not None]
    tin = sum(a.tokens_in for a in answered)
    tout = sum(a.tokens_out for a in answered)
    total_dollars = sum(dollars(cfg, a.tokens_in, a.tokens_out, a.batch) for a in answered)
    judged = [r for r in rows if r["is_correct"] is not None]
    j_true_v_false = sum(r["is_correct"] and not r["verify_correct"] for r in judged)
    j_false_v_true = sum(r["verify_correct"] and not r["is_correct"] for r in judged)
    return {
        "model": model_name,
        "dataset": dataset,
        "backend": cfg.backend,
        "judge_model": cfg.model if cfg.backend != "rules" else "rules",
        "prompt_version": PROMPT_VERSION,
        "items": len(rows),
        "cache_hits": sum(o.cached for o in outcomes),
        "calls_this_run": tally.calls,
        "calls_total": sum(a.calls for a in answered),  # every paid call behind these rows, earlier runs included
        "invalid_retries_this_run": tally.invalid_retries,
        "judge_errors": sum(r["error_group"] == "Error" for r in rows),
        "api_failures": len(tally.api_failures),
        "group_mismatch": sum(bool(a.verdict and a.verdict.get("group_mismatch")) for a in answered),
        "tokens_in_this_run": tally.tokens_in,
        "tokens_out_this_run": tally.tokens_out,
        "dollars_this_run": round(
            dollars(cfg, tally.tokens_in - tally.batch_tokens_in, tally.tokens_out - tally.batch_tokens_out)
            + dollars(cfg, tally.batch_tokens_in, tally.batch_tokens_out, batch=True), 6),
        "tokens_in_total": tin,
        "tokens_out_total": tout,
        "dollars_total": round(total_dollars, 6),
        "batch_jobs_this_run": tally.batch_jobs,
        "batch_billed_items": sum(a.batch for a in answered),
        "prices": {"input_per_m": cfg.prices.input_per_m, "output_per_m": cfg.prices.output_per_m,
                   "batch_discount": cfg.prices.batch_discount},
        "verify_disagreements": {"total": j_true_v_false + j_false_v_true, "judged": len(judged),
                                 "judge_correct_verify_wrong": j_true_v_false,
                                 "judge_wrong_verify_correct": j_false_v_true},
        "wall_s": round(wall_s, 3),
        "coverage": list(coverage),  # what the backend detects only in part (rules)
    }  # fmt: skip
