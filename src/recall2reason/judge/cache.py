"""Durable, content-addressed cache of judge answers: a paid call is never made twice.

One SQLite file in WAL mode (several Snakemake jobs may share it; SQLite locks across
processes). Every answer is committed with ``synchronous=FULL`` as soon as it arrives, so a
killed run loses at most the calls that were in flight. The key is the SHA-256 of
(backend, judge model, prompt version, question, reference solution, completion).

Batch API mode also keeps its submitted jobs here (table ``batch_jobs``): a job's name is
committed the moment the API returns it, before any polling, so a killed run resumes polling
the same job instead of paying for a second one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from recall2reason.common.io import InputFileError


def cache_key(backend: str, model: str, prompt_version: str, question: str, reference: str, completion: str) -> str:
    payload = json.dumps([backend, model, prompt_version, question, reference, completion], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class CachedAnswer:
    raw: Optional[str]  # the judge's last answer text
    verdict: Optional[dict]  # validated fields, or None when the answer stayed invalid
    error: Optional[str]  # why the answer is unusable (invalid JSON, unknown category, truncated)
    calls: int
    tokens_in: int
    tokens_out: int
    batch: bool  # billed at the Batch API price


@dataclass
class BatchJobRecord:
    name: str  # "batches/..." as the API named it
    model: str
    keys: list[str]  # cache keys of its requests (each request's metadata carries its key too)
    round: int = 1  # 2: the one re-ask of answers that were invalid (or failed) in round 1
    prior: dict = field(default_factory=dict)  # round 2: key -> what round 1 got (calls, tokens, raw, error)


class JudgeCache:
    def __init__(self, directory: str | Path):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "judge.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:  # a damaged file fails here, named, not at some later query
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, raw TEXT, verdict TEXT, error TEXT,"
                " calls INTEGER, tokens_in INTEGER, tokens_out INTEGER, batch INTEGER, created REAL)"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS batch_jobs (name TEXT PRIMARY KEY, model TEXT, keys TEXT, round INTEGER,"
                " prior TEXT, state TEXT, created REAL, finished REAL)"
            )
            problems = [r[0] for r in self.db.execute("PRAGMA quick_check")]  # reads it all: ~0.1 s per 100 MB
        except sqlite3.DatabaseError as e:
            problems = [str(e)]
        if problems != ["ok"]:
            self.db.close()
            raise InputFileError(
                f"{self.path}: the judge's answer cache is damaged ({'; '.join(problems[:3])}); move it aside and "
                "rerun (the answers it held are asked, and paid, again)"
            )

    def get(self, key: str) -> Optional[CachedAnswer]:
        row = self.db.execute(
            "SELECT raw, verdict, error, calls, tokens_in, tokens_out, batch FROM answers WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        raw, verdict, error, calls, tin, tout, batch = row
        return CachedAnswer(raw, json.loads(verdict) if verdict else None, error, calls, tin, tout, bool(batch))

    def put(self, key: str, answer: CachedAnswer) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                answer.raw,
                json.dumps(answer.verdict) if answer.verdict is not None else None,
                answer.error,
                answer.calls,
                answer.tokens_in,
                answer.tokens_out,
                int(answer.batch),
                time.time(),
            ),
        )

    def keys(self) -> set[str]:
        return {k for (k,) in self.db.execute("SELECT key FROM answers")}

    def add_batch_job(self, job: BatchJobRecord, replaces: Optional[str] = None) -> None:
        """Record a submitted job; ``replaces``: the round-1 job it follows, closed in the same commit."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO batch_jobs VALUES (?, ?, ?, ?, ?, NULL, ?, NULL)",
                (job.name, job.model, json.dumps(job.keys), job.round, json.dumps(job.prior), time.time()),
            )
            if replaces is not None:
                self.db.execute(
                    "UPDATE batch_jobs SET state = ?, finished = ? WHERE name = ?",
                    (f"SUCCEEDED (re-asks in {job.name})", time.time(), replaces),
                )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def open_batch_jobs(self, model: str) -> list[BatchJobRecord]:
        """Jobs of this judge model submitted but not yet read to the end (oldest first)."""
        rows = self.db.execute(
            "SELECT name, model, keys, round, prior FROM batch_jobs WHERE model = ? AND state IS NULL ORDER BY created",
            (model,),
        ).fetchall()
        return [BatchJobRecord(n, m, json.loads(k), r, json.loads(p or "{}")) for n, m, k, r, p in rows]

    def close_batch_job(self, name: str, state: str) -> None:
        self.db.execute("UPDATE batch_jobs SET state = ?, finished = ? WHERE name = ?", (state, time.time(), name))

    def batch_job_state(self, name: str) -> Optional[str]:
        row = self.db.execute("SELECT state FROM batch_jobs WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()
