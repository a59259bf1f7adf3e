"""Batch API mode of the judge (``judge.batch: true``, gemini only): half the online price.

Flow: answers already in the cache are reused -> jobs recorded in the cache db and not yet read
(a killed run's) are polled again if they hold items of this run -> every other uncached item
goes out in new jobs of at most ``batch_max_requests`` requests; each job's name is committed to
the cache db the moment the API returns it, before any polling -> every job is polled each
``batch_poll_s`` until it ends, for at most ``batch_max_wait_s`` -> a succeeded job's answers are
validated exactly as online answers are and committed to the cache marked batch-billed -> the
answers that were invalid (or whose request failed inside the job) are asked once more in a
second-round job (its name and what round 1 got are committed together with closing round 1),
then recorded as group "Error" with the raw text -> a job that fails, expires or is cancelled
stops the stage with a message naming it; every answer already read stays cached, and a rerun
submits the missing items again. A job still running when the wait runs out stays recorded:
the rerun polls it again and pays for nothing twice.

The only window in which a paid job can be lost is between the API accepting the create call
and the commit of its name (one local SQLite write).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Optional

from recall2reason.judge.backends import ApiFailure, Backend, BatchStatus, Item, Reply
from recall2reason.judge.cache import BatchJobRecord, CachedAnswer, JudgeCache
from recall2reason.judge.outcome import Outcome, check_reply, item_key

log = logging.getLogger("recall2reason.judge")

INLINE_MAX_CHARS = 15_000_000  # inlined requests of one create call must stay under the API's 20 MB


class BatchJobError(RuntimeError):
    """A batch job failed, expired, was cancelled, vanished or is still running after batch_max_wait_s."""


def chunks(requests: list[tuple[str, str]], max_requests: int) -> list[list[tuple[str, str]]]:
    out, cur, size = [], [], 0
    for key, prompt in requests:
        if cur and (len(cur) >= max_requests or size + len(prompt) > INLINE_MAX_CHARS):
            out.append(cur)
            cur, size = [], 0
        cur.append((key, prompt))
        size += len(prompt)
    if cur:
        out.append(cur)
    return out


class _Batch:
    def __init__(self, cfg, backend: Backend, cache: JudgeCache, tally, wanted: dict[str, Item]):
        self.cfg, self.backend, self.cache, self.tally = cfg, backend, cache, tally
        self.wanted = wanted  # uncached key -> an item with that key (for the prompt of a re-ask)
        self.failures: dict[str, str] = {}  # key -> why no answer (request failed in both rounds)
        self.problems: list[str] = []  # jobs that ended without answers
        self.deadline = time.monotonic() + cfg.batch_max_wait_s

    async def submit(self, keys: list[str], round_: int, prior: dict, replaces: Optional[str] = None):
        requests = [(k, self.wanted[k].prompt) for k in keys]
        jobs = []
        for part in chunks(requests, self.cfg.batch_max_requests):
            part_keys = [k for k, _ in part]
            digest = hashlib.sha256("".join(part_keys).encode()).hexdigest()[:12]
            name = await self.backend.batch_submit(part, display_name=f"recall2reason-judge-r{round_}-{digest}")
            carried = {k: prior[k] for k in part_keys if k in prior}
            job = BatchJobRecord(name, self.cfg.model, part_keys, round_, carried)
            # committed before the first poll; a round-2 job closes its round-1 job in the same commit
            self.cache.add_batch_job(job, replaces=replaces)
            replaces = None
            log.info("submitted Gemini batch job %s (round %d, %d requests)", name, round_, len(part))
            jobs.append(job)
        return jobs

    async def poll(self, job: BatchJobRecord) -> Optional[BatchStatus]:
        """Wait for the job to end; None when it ended without answers (recorded in self.problems)."""
        last = None
        while True:
            try:
                status = await self.backend.batch_status(job.name, job.keys)
            except ApiFailure as e:
                if e.status == 404:
                    self.cache.close_batch_job(job.name, "NOT_FOUND")
                    self.problems.append(f"batch job {job.name} is unknown to the API ({e})")
                    return None
                if e.status is not None and 400 <= e.status < 500 and e.status not in (408, 429):
                    self.problems.append(f"batch job {job.name}: cannot read its status ({e}); it stays recorded")
                    return None
                log.warning("batch job %s: status check failed (%s); polling again", job.name, e)
                status = None
            if status is not None:
                if status.state != last:
                    log.info("batch job %s: %s", job.name, status.state)
                    last = status.state
                if status.succeeded:
                    return status
                if status.done:
                    self.cache.close_batch_job(job.name, status.state)
                    why = f" ({status.error})" if status.error else ""
                    self.problems.append(f"batch job {job.name} ended in {status.state}{why}")
                    return None
            if time.monotonic() > self.deadline:
                self.problems.append(
                    f"batch job {job.name} still {last or 'unreadable'} after judge.batch_max_wait_s="
                    f"{self.cfg.batch_max_wait_s}s; it stays recorded and a rerun resumes polling it"
                )
                return None
            await asyncio.sleep(self.cfg.batch_poll_s)

    async def follow(self, job: BatchJobRecord) -> None:
        while True:
            status = await self.poll(job)
            if status is None:
                return
            self.tally.batch_jobs.append(job.name)
            again: dict[str, dict] = {}
            for key in job.keys:
                got = status.results.get(key, "no response for this request in the job's output")
                p = job.prior.get(key) or {}
                calls, tin, tout = p.get("calls", 0), p.get("tokens_in", 0), p.get("tokens_out", 0)
                raw, error, verdict = p.get("raw"), p.get("error"), None
                if isinstance(got, Reply):
                    calls, tin, tout, raw = calls + 1, tin + got.tokens_in, tout + got.tokens_out, got.text
                    t = self.tally
                    t.calls += 1
                    t.tokens_in, t.tokens_out = t.tokens_in + got.tokens_in, t.tokens_out + got.tokens_out
                    t.batch_tokens_in += got.tokens_in
                    t.batch_tokens_out += got.tokens_out
                    verdict, error = check_reply(got)
                if verdict is None and job.round == 1 and key in self.wanted:
                    again[key] = {"calls": calls, "tokens_in": tin, "tokens_out": tout, "raw": raw, "error": error}
                    if isinstance(got, Reply):
                        self.tally.invalid_retries += 1
                    continue
                if verdict is None and calls == 0:  # the request failed in every round: nothing to record
                    if key in self.wanted:
                        self.failures[key] = got if isinstance(got, str) else str(error)
                    continue
                if verdict is None and key not in self.wanted:
                    continue  # another run's item (shared job): left for that run to ask again
                self.cache.put(key, CachedAnswer(raw, verdict, error, calls, tin, tout, True))
            if not again:
                self.cache.close_batch_job(job.name, "SUCCEEDED")
                return
            log.info("batch job %s: %d answers unusable, asking them again in a second job", job.name, len(again))
            try:
                (job,) = await self.submit(list(again), 2, again, replaces=job.name)
            except ApiFailure as e:  # round 1 stays open: a rerun reads it again and resubmits the re-asks
                self.problems.append(f"re-ask job for {job.name} could not be submitted: {e}")
                return


async def judge_items_batch(cfg, items: list[Item], backend: Backend, cache: JudgeCache, tally) -> list:
    keys = [item_key(cfg, it) for it in items]
    hits = {k for k in set(keys) if cache.get(k) is not None}
    wanted = {k: it for it, k in zip(items, keys) if k not in hits}
    b = _Batch(cfg, backend, cache, tally, wanted)

    resumed, covered = [], set()
    for job in cache.open_batch_jobs(cfg.model):
        if set(job.keys) & (wanted.keys() - covered):
            resumed.append(job)
            covered |= set(job.keys)
            log.info("resuming batch job %s (round %d, %d requests) submitted by an earlier run", job.name, job.round,
                     len(job.keys))  # fmt: skip
    todo = [k for k in wanted if k not in covered]
    n_resumed = len(covered & wanted.keys())
    log.info("batch mode: %d cached, %d in resumed jobs, %d to submit", len(items) - len(wanted), n_resumed, len(todo))
    try:
        new = await b.submit(todo, 1, {}) if todo else []
    except ApiFailure as e:
        new = []
        b.problems.append(f"batch job could not be submitted: {e}")
    await asyncio.gather(*(b.follow(job) for job in resumed + new))

    still = [k for k in wanted if k not in b.failures and cache.get(k) is None]
    if b.problems or still:
        cached_now = sum(cache.get(k) is not None for k in wanted)
        raise BatchJobError(
            "; ".join(b.problems or ["some items got no answer"])
            + f". {len(hits) + cached_now} of {len(set(keys))} answers are cached in {cache.path.parent};"
            f" {len(still)} items have none: rerun to resume or resubmit only those"
        )
    outcomes = []
    for it, k in zip(items, keys):
        if k in b.failures:
            tally.api_failures.append(f"{it.problem_id}/{it.sample_idx}: {b.failures[k]}")
            outcomes.append(Outcome(it, None, failure=b.failures[k]))
        else:
            outcomes.append(Outcome(it, cache.get(k), cached=k in hits))
    return outcomes
