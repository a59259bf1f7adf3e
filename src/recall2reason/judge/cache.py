"""Durable, content-addressed cache of judge answers: a paid call is never made twice.

One SQLite file in WAL mode (several Snakemake jobs may share it; SQLite locks across
processes). Every answer is committed with ``synchronous=FULL`` as soon as it arrives, so a
killed run loses at most the calls that were in flight. The key is the SHA-256 of
(backend, judge model, prompt version, question, reference solution, completion).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional


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


class JudgeCache:
    def __init__(self, directory: str | Path):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "judge.sqlite"
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, raw TEXT, verdict TEXT, error TEXT,"
            " calls INTEGER, tokens_in INTEGER, tokens_out INTEGER, batch INTEGER, created REAL)"
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

    def close(self) -> None:
        self.db.close()
