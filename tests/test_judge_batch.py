"""Batch API mode of the gemini judge (judge.batch): the real google-genai client against the fake
Gemini server's batch routes. Success with several jobs, invalid answers re-asked in a second job
then recorded as Error, failed / expired / cancelled jobs (clear error, cache intact), a bounded
wait, kill after submit then resume (same job polled, no second create), batch prices in the ledger."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes.judge_inputs import judge_cli, write_inputs  # noqa: E402
from fakes.llm_server import FakeGemini  # noqa: E402
from test_judge_llm import FAKE_KEY, judge, local_only_env, make_cfg  # noqa: E402, F401

from recall2reason.common import ConfigError, from_dict  # noqa: E402
from recall2reason.judge.cache import JudgeCache  # noqa: E402
from recall2reason.judge.config import JudgeConfig  # noqa: E402


def batch_cfg(url: str, first_k: int, **over) -> dict:
    return make_cfg("gemini", url, first_k, **{"batch": True, "batch_poll_s": 0.01, "batch_max_wait_s": 20, **over})


def db_rows(tmp_path, sql: str) -> list:
    db = sqlite3.connect(tmp_path / "cache" / "judge.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def inlined(body: dict) -> list[dict]:
    return body["batch"]["inputConfig"]["requests"]["requests"]


def test_batch_success_invalid_reask_and_batch_prices(tmp_path):
    comps = {
        "p1": ["She makes 9 * 2 = 18. The answer is 18", "[[cat:Calculation Error]] 9 * 2 = 19", "[[500once]] 18",
               "[[cat:Key-Value Binding Error]] 61 eggs"],
        "p2": ["[[badjson-once]] 18", "[[badjson]] 18", "[[unknown]] 7", "[[maxtokens]] 18"],
        "p3": ["[[maxtokens-once]] 18", "[[500]] 18", "fine 18", "also fine 18"],
    }  # fmt: skip
    inputs = write_inputs(tmp_path / "in", comps)
    with FakeGemini() as fake:
        cfg = batch_cfg(fake.url, 4, batch_max_requests=5, max_failed_frac=0.1)
        rows, ledger = judge(tmp_path, inputs, cfg)
        by = {(r["problem_id"], r["sample_idx"]): r for r in rows}
        assert [(r["problem_id"], r["sample_idx"]) for r in rows] == [(p, i) for p in comps for i in range(4)]

        # 12 items in jobs of <= 5 requests, then per job one re-ask job for its unusable answers
        sizes = [len(inlined(b)) for b in fake.batch_creates]
        assert sizes[:3] == [5, 5, 2] and sorted(sizes[3:]) == [2, 5]
        reasked = {r["metadata"]["key"] for b in fake.batch_creates[3:] for r in inlined(b)}
        assert len(reasked) == 7  # badjson-once, badjson, unknown, maxtokens, maxtokens-once, 500once, 500
        assert not [a for a, _ in fake.log if a not in {x for v in comps.values() for x in v}]
        assert sum(fake.batch_gets.values()) >= 3 * 4  # pending -> running -> succeeded, every job
        assert all(n >= 3 for n in fake.batch_gets.values())

        # what the real client sent: the online prompt and generation config, the cache key as metadata
        req = inlined(fake.batch_creates[0])[0]
        gc = req["request"]["generationConfig"]
        assert gc["temperature"] == 0 and gc["responseMimeType"] == "application/json"
        assert "Calculation Error" in gc["responseSchema"]["properties"]["error_category"]["enum"]
        assert "Generated Answer" in req["request"]["contents"][0]["parts"][0]["text"]
        assert fake.jobs["fake-1"]["headers"].get("x-goog-api-key") == FAKE_KEY

        # answers validated as online: valid ones kept, invalid ones asked once more, then "Error" + raw
        assert by["p1", 0]["error_category"] == "No Error" and by["p1", 1]["error_category"] == "Calculation Error"
        assert by["p1", 3]["error_group"] == "A" and by["p1", 2]["error_category"] == "No Error"
        assert by["p2", 0]["error_category"] == "No Error" and by["p3", 0]["error_category"] == "No Error"
        for key, why in ((("p2", 1), "not valid JSON"), (("p2", 2), "unknown error_category"), (("p2", 3), "truncated")):
            assert by[key]["error_group"] == "Error" and by[key]["error_category"] is None, by[key]
            assert why in by[key]["explanation"] and by[key]["raw"]
        assert by["p2", 1]["raw"] == "Sure! The answer is correct."
        # a request that failed inside both jobs: no answer, counted as an API failure
        assert by["p3", 1]["error_group"] == "Error" and "API failure" in by["p3", 1]["explanation"]
        assert "500" in by["p3", 1]["explanation"] and ledger["api_failures"] == 1
        ok = fake.ok_answers()
        for answer in ("[[badjson]] 18", "[[unknown]] 7", "[[maxtokens]] 18", "[[badjson-once]] 18"):
            assert ok[answer] == 2, (answer, ok)

        # ledger: batch calls at the batch price
        assert ledger["calls_this_run"] == 10 + 6 and ledger["invalid_retries_this_run"] == 5
        assert sorted(ledger["batch_jobs_this_run"]) == [f"batches/fake-{i}" for i in range(1, 6)]
        tin, tout = ledger["tokens_in_this_run"], ledger["tokens_out_this_run"]
        full = (tin * 0.10 + tout * 0.40) / 1e6
        assert tin > 0 and ledger["dollars_this_run"] == pytest.approx(0.5 * full, abs=2e-6)
        assert ledger["dollars_total"] == pytest.approx(0.5 * full, abs=2e-6)
        assert ledger["batch_billed_items"] == 11 and ledger["judge_errors"] == 4
        assert db_rows(tmp_path, "SELECT DISTINCT batch FROM answers") == [(1,)]
        assert {s for (s,) in db_rows(tmp_path, "SELECT state FROM batch_jobs")} >= {"SUCCEEDED"}
        assert not db_rows(tmp_path, "SELECT name FROM batch_jobs WHERE state IS NULL")

        # a rerun asks only for the item without an answer (round 1 + its re-ask), the rest is cached
        n_creates = len(fake.batch_creates)
        rows2, ledger2 = judge(tmp_path, inputs, cfg, name="again")
        assert [len(inlined(b)) for b in fake.batch_creates[n_creates:]] == [1, 1]
        assert ledger2["cache_hits"] == 11 and rows2 == rows and ledger2["dollars_total"] == ledger["dollars_total"]
    for path in (tmp_path / "out.jsonl", tmp_path / "out.ledger.json", tmp_path / "cache" / "judge.sqlite"):
        assert FAKE_KEY.encode() not in path.read_bytes()


@pytest.mark.parametrize("marker,state", [("[[batchfail]]", "FAILED"), ("[[batchexpire]]", "EXPIRED"),
                                          ("[[batchcancel]]", "CANCELLED")])  # fmt: skip
def test_failed_job_gives_clear_error_and_keeps_cache(tmp_path, marker, state):
    inputs1 = write_inputs(tmp_path / "in1", {"p1": ["18", "[[cat:Calculation Error]] 19"]})
    with FakeGemini() as fake:
        cfg = batch_cfg(fake.url, 2, batch_max_requests=2)
        judge(tmp_path, inputs1, cfg)
        assert len(fake.batch_creates) == 1
        cfg4 = {**cfg, "first_k": 4}
        inputs2 = write_inputs(tmp_path / "in2", {"p1": ["18", "[[cat:Calculation Error]] 19", "a 18", "b 18"],
                                                  "p2": ["18 ok", "18 fine", f"{marker} 18", "18 too"]})  # fmt: skip
        with pytest.raises(SystemExit, match=rf"batch job batches/fake-\d ended in JOB_STATE_{state}") as err:
            judge(tmp_path, inputs2, cfg4, name="second")
        assert "rerun" in str(err.value) and "2 items have none" in str(err.value)
        assert not (tmp_path / "second.jsonl").exists() and not (tmp_path / "second.ledger.json").exists()
        assert len(fake.batch_creates) == 1 + 3  # p1/2,3 - p2/0,1 - p2/2,3: only the last one failed
        # nothing already answered is lost: the first run's 2 + the good jobs' 4 answers are cached
        assert db_rows(tmp_path, "SELECT COUNT(*) FROM answers") == [(6,)]
        states = dict(db_rows(tmp_path, "SELECT name, state FROM batch_jobs"))
        assert sorted(states.values()) == sorted(["SUCCEEDED"] * 3 + [f"JOB_STATE_{state}"])
        # a rerun resubmits only the 2 items of the failed job
        with pytest.raises(SystemExit, match=f"JOB_STATE_{state}"):
            judge(tmp_path, inputs2, cfg4, name="third")
        assert len(fake.batch_creates) == 5 and len(inlined(fake.batch_creates[-1])) == 2


def test_bounded_wait_then_rerun_polls_the_same_job(tmp_path):
    inputs = write_inputs(tmp_path / "in", {"p1": ["18", "[[cat:State Tracking Error]] 13"]})
    with FakeGemini() as fake:
        fake.batch_hold = True
        cfg = batch_cfg(fake.url, 2, batch_max_wait_s=0.3)
        with pytest.raises(SystemExit, match=r"batches/fake-1 still JOB_STATE_RUNNING .*rerun resumes polling"):
            judge(tmp_path, inputs, cfg)
        assert db_rows(tmp_path, "SELECT name FROM batch_jobs WHERE state IS NULL") == [("batches/fake-1",)]
        fake.batch_hold = False
        rows, ledger = judge(tmp_path, inputs, cfg)
        assert len(fake.batch_creates) == 1 and ledger["batch_jobs_this_run"] == ["batches/fake-1"]
        assert [r["error_category"] for r in rows] == ["No Error", "State Tracking Error"]
        assert ledger["calls_this_run"] == 2 and ledger["dollars_this_run"] > 0


def test_reask_job_is_recorded_with_round_one_results(tmp_path):
    inputs = write_inputs(tmp_path / "in", {"p1": ["18", "[[badjson-once]] 18", "[[badjson]] 18"]})
    with FakeGemini() as fake:
        fake.batch_hold = {"batches/fake-2"}  # round 1 ends, its re-ask job does not (in this run)
        cfg = batch_cfg(fake.url, 3, batch_max_wait_s=0.3)
        with pytest.raises(SystemExit, match=r"batches/fake-2 still JOB_STATE_RUNNING"):
            judge(tmp_path, inputs, cfg)
        states = dict(db_rows(tmp_path, "SELECT name, state FROM batch_jobs"))
        assert states == {"batches/fake-1": "SUCCEEDED (re-asks in batches/fake-2)", "batches/fake-2": None}
        assert db_rows(tmp_path, "SELECT COUNT(*) FROM answers") == [(1,)]
        fake.batch_hold = False
        rows, ledger = judge(tmp_path, inputs, cfg)
        assert len(fake.batch_creates) == 2 and ledger["batch_jobs_this_run"] == ["batches/fake-2"]
        assert [r["error_group"] for r in rows] == ["None", "None", "Error"] and rows[2]["raw"]
        # round 1's paid calls and tokens were kept with the re-ask job: both calls are on the rows
        calls = sorted(c for (c,) in db_rows(tmp_path, "SELECT calls FROM answers"))
        assert calls == [1, 2, 2] and ledger["calls_total"] == 5 and ledger["calls_this_run"] == 2


def test_kill_after_submit_then_resume_polls_the_same_job(tmp_path):
    comps = {f"p{i}": [f"answer {i}.{j} is 18" for j in range(3)] for i in range(4)}  # 12 items
    inputs = write_inputs(tmp_path / "in", comps)
    with FakeGemini() as fake:
        fake.batch_hold = True  # the job never ends while the first run lives
        cfg = batch_cfg(fake.url, 3, batch_poll_s=0.05)
        cmd = judge_cli(cfg, inputs, tmp_path)
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        deadline = time.monotonic() + 40
        while fake.batch_gets["batches/fake-1"] < 3:  # submitted, and polled a few times
            assert proc.poll() is None and time.monotonic() < deadline, "stage ended before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == -signal.SIGKILL and not (tmp_path / "out.jsonl").exists()
        assert FAKE_KEY not in stderr and "submitted Gemini batch job batches/fake-1" in stderr
        cache = JudgeCache(tmp_path / "cache")
        (job,) = cache.open_batch_jobs("judge-model-x")
        cache.close()
        assert job.name == "batches/fake-1" and len(job.keys) == 12
        assert len(fake.batch_creates) == 1 and not fake.log  # nothing answered yet

        fake.batch_hold = False
        gets_before = fake.batch_gets["batches/fake-1"]
        rows, ledger = judge(tmp_path, inputs, cfg)
        assert len(fake.batch_creates) == 1  # no second create: the resumed run polled the same job
        assert fake.batch_gets["batches/fake-1"] > gets_before and set(fake.batch_gets) == {"batches/fake-1"}
        assert len(fake.log) == 12 and ledger["batch_jobs_this_run"] == ["batches/fake-1"]
        assert len(rows) == 12 and all(r["error_category"] == "No Error" for r in rows)
        assert ledger["calls_this_run"] == 12 and ledger["batch_billed_items"] == 12 and ledger["cache_hits"] == 0


def test_batch_is_gemini_only():
    with pytest.raises(ConfigError, match="judge.batch"):
        from_dict(JudgeConfig, {"backend": "openai", "base_url": "http://127.0.0.1:1/v1", "batch": True})
    assert from_dict(JudgeConfig, {"backend": "gemini", "batch": True}).batch
