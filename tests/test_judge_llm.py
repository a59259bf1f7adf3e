"""The gemini (real google-genai client) and openai (real openai client) backends against fake
servers on 127.0.0.1: success, 429 then success, 5xx, malformed JSON, unknown category,
truncated output, the durable cache, and kill-during-run-then-resume without repeated calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes.judge_inputs import judge_cli, write_inputs  # noqa: E402
from fakes.llm_server import FakeGemini, FakeOpenAI  # noqa: E402

from recall2reason.common import from_dict, read_json, read_jsonl  # noqa: E402
from recall2reason.judge import preflight  # noqa: E402
from recall2reason.judge.cache import JudgeCache  # noqa: E402
from recall2reason.judge.config import JudgeConfig  # noqa: E402
from recall2reason.judge.run import item_key, load_items, run  # noqa: E402

FAKE_KEY = "fake-key-0123456789-never-logged"
BACKENDS = {"gemini": FakeGemini, "openai": FakeOpenAI}


@pytest.fixture(autouse=True)
def local_only_env(monkeypatch):
    for var in ("GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GENAI_API_VERSION",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
                "OPENAI_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)


def make_cfg(backend: str, url: str, first_k: int, **over) -> dict:
    return {
        "backend": backend,
        "model": "judge-model-x",
        "first_k": first_k,
        "base_url": url + ("/v1" if backend == "openai" else ""),
        "concurrency": 4,
        "requests_per_minute": 60000,
        "timeout_s": 10,
        "retry": {"attempts": 3, "initial_delay_s": 0.01, "max_delay_s": 0.05},
        **over,
    }


def judge(tmp_path, inputs, cfg: dict, name="out"):
    ledger = run(
        from_dict(JudgeConfig, cfg),
        model_name="mamba100",
        dataset="gsm8k",
        cache_dir=tmp_path / "cache",
        out_path=tmp_path / f"{name}.jsonl",
        ledger_path=tmp_path / f"{name}.ledger.json",
        **inputs,
    )
    return list(read_jsonl(tmp_path / f"{name}.jsonl")), ledger


@pytest.mark.parametrize("backend", BACKENDS)
def test_answers_faults_and_cache(tmp_path, backend):
    comps = {
        "p1": ["She makes 9 * 2 = 18. The answer is 18", "[[cat:Calculation Error]] 9 * 2 = 19", "[[429]] 18",
               "[[500once]] 18"],
        "p2": ["[[badjson-once]] 18", "[[badjson]] 18", "[[unknown]] 7", "[[maxtokens]] 18"],
        "p3": ["[[maxtokens-once]] 18", "[[cat:Goal Interpretation Error]] 9 [[x]]", "18\nQuestion: next one [[500]]",
               "[[cat:Key-Value Binding Error]] 61 eggs"],
    }  # fmt: skip
    inputs = write_inputs(tmp_path / "in", comps)
    with BACKENDS[backend]() as fake:
        rows, ledger = judge(tmp_path, inputs, make_cfg(backend, fake.url, 4))
        by = {(r["problem_id"], r["sample_idx"]): r for r in rows}
        assert [(r["problem_id"], r["sample_idx"]) for r in rows] == [(p, i) for p in comps for i in range(4)]
        assert set(rows[0]) == {"problem_id", "sample_idx", "is_correct", "error_category", "error_group",
                                "explanation", "erroneous_step_quote", "verify_correct", "backend", "judge_model",
                                "prompt_version", "raw"}  # fmt: skip
        assert by["p1", 0]["error_category"] == "No Error" and by["p1", 0]["error_group"] == "None"
        assert by["p1", 1]["error_category"] == "Calculation Error" and by["p1", 1]["error_group"] == "C"
        assert by["p1", 1]["is_correct"] is False and by["p1", 1]["erroneous_step_quote"]
        assert by["p3", 3]["error_group"] == "A"
        # 429 / 500 once: retried by the client, then answered
        assert by["p1", 2]["error_category"] == "No Error" and by["p1", 3]["error_category"] == "No Error"
        # unusable answers are asked again once, then recorded as "Error" with the raw text kept
        assert by["p2", 0]["error_category"] == "No Error"
        assert by["p3", 0]["error_category"] == "No Error"
        for key, why in ((("p2", 1), "not valid JSON"), (("p2", 2), "unknown error_category"), (("p2", 3), "truncated")):
            assert by[key]["error_group"] == "Error" and by[key]["error_category"] is None, by[key]
            assert why in by[key]["explanation"] and by[key]["raw"]
        assert by["p2", 1]["raw"] == "Sure! The answer is correct."
        # the completion was cut at "Question:", so the [[500]] marker never reached the judge
        assert by["p3", 2]["error_category"] == "No Error"
        assert all(r["backend"] == backend and r["judge_model"] == "judge-model-x" for r in rows)
        ok = fake.ok_answers()
        for answer in ("[[badjson]] 18", "[[unknown]] 7", "[[maxtokens]] 18", "[[badjson-once]] 18"):
            assert ok[answer] == 2, (answer, ok)
        assert sum(s == 429 for _, s in fake.log) == 1 and sum(s == 500 for _, s in fake.log) == 1
        assert ledger["calls_this_run"] == 12 + 5 and ledger["invalid_retries_this_run"] == 5
        assert ledger["judge_errors"] == 3 and ledger["api_failures"] == 0 and ledger["cache_hits"] == 0
        assert ledger["tokens_in_this_run"] > 0 and ledger["dollars_this_run"] > 0
        # verify says p2/2 ("[[unknown]]" row) was right, judge errors are not counted; p3/1 disagrees
        assert ledger["verify_disagreements"]["judged"] == 9
        assert read_json(tmp_path / "out.ledger.json") == ledger

        # what the real client sent: the paper prompt, temperature 0, schema with a category enum
        body = fake.bodies[0]
        if backend == "gemini":
            gc = body["generationConfig"]
            assert gc["temperature"] == 0 and gc["responseMimeType"] == "application/json"
            # the SDK sends the proto field name; the API's JSON parser accepts both spellings
            assert gc["thinkingConfig"] in ({"thinkingBudget": 0}, {"thinking_budget": 0}), gc
            assert "Calculation Error" in gc["responseSchema"]["properties"]["error_category"]["enum"]
            assert fake.headers[0].get("x-goog-api-key") == FAKE_KEY
        else:
            assert body["temperature"] == 0 and body["response_format"]["type"] == "json_schema"
            schema = body["response_format"]["json_schema"]["schema"]
            assert "No Error" in schema["properties"]["error_category"]["enum"]

        # a rerun repeats no call: everything comes from the cache, same rows
        n_before = len(fake.log)
        rows2, ledger2 = judge(tmp_path, inputs, make_cfg(backend, fake.url, 4), name="again")
        assert len(fake.log) == n_before and rows2 == rows
        assert ledger2["cache_hits"] == 12 and ledger2["calls_this_run"] == 0 and ledger2["dollars_this_run"] == 0
        assert ledger2["calls_total"] == 17 and ledger2["dollars_total"] == ledger["dollars_total"]
    for path in (tmp_path / "out.jsonl", tmp_path / "out.ledger.json", tmp_path / "cache" / "judge.sqlite"):
        assert FAKE_KEY.encode() not in path.read_bytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_persistent_5xx_fails_the_stage_but_keeps_answers(tmp_path, backend):
    comps = {"p1": ["18", "[[500]] 18", "[[cat:State Tracking Error]] 13 * 2 = 26"]}
    inputs = write_inputs(tmp_path / "in", comps)
    with BACKENDS[backend]() as fake:
        cfg = make_cfg(backend, fake.url, 3)
        with pytest.raises(SystemExit, match="1 of 3 items got no answer"):
            judge(tmp_path, inputs, cfg)
        assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.ledger.json").exists()
        assert sum(s == 500 for _, s in fake.log) == 3  # retry.attempts
        # the answered items are cached: allowing failures, the rerun asks only for the failed one
        n_ok = sum(s == 200 for _, s in fake.log)
        rows, ledger = judge(tmp_path, inputs, {**cfg, "max_failed_frac": 0.5})
        assert sum(s == 200 for _, s in fake.log) == n_ok and ledger["cache_hits"] == 2
        assert rows[1]["error_group"] == "Error" and "API failure" in rows[1]["explanation"]
        assert "500" in rows[1]["explanation"] and ledger["api_failures"] == 1
        assert rows[2]["error_category"] == "State Tracking Error"


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_during_run_then_resume_repeats_no_answered_call(tmp_path, backend):
    comps = {f"p{i}": [f"answer {i}.{j} is 18" for j in range(4)] for i in range(5)}  # 20 items
    inputs = write_inputs(tmp_path / "in", comps)
    with BACKENDS[backend](delay_s=0.15) as fake:
        cfg = make_cfg(backend, fake.url, 4, concurrency=2)
        cmd = judge_cli(cfg, inputs, tmp_path)
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        deadline = time.monotonic() + 40
        while sum(s == 200 for _, s in fake.log) < 6:
            assert proc.poll() is None and time.monotonic() < deadline, "stage ended before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == -signal.SIGKILL
        assert not (tmp_path / "out.jsonl").exists()
        assert FAKE_KEY not in stderr

        items = load_items(from_dict(JudgeConfig, cfg), **inputs)
        cache = JudgeCache(tmp_path / "cache")
        cached = cache.keys()
        cache.close()
        done_before = {it.completion for it in items if item_key(from_dict(JudgeConfig, cfg), it) in cached}
        assert 6 - cfg["concurrency"] <= len(done_before) < len(items)  # answers in flight may be lost
        n_before = len(fake.arrivals)  # requests of the killed run, answered or in flight

        rows, ledger = judge(tmp_path, inputs, cfg)
        asked_after = fake.arrivals[n_before:]
        assert not set(asked_after) & done_before  # no answered call is paid twice
        assert sorted(asked_after) == sorted({it.completion for it in items} - done_before)
        assert ledger["cache_hits"] == len(done_before) and len(rows) == 20
        assert all(r["error_category"] == "No Error" for r in rows)


@pytest.mark.parametrize("backend", BACKENDS)
def test_preflight_asks_the_server_for_the_key_and_model(backend, monkeypatch):
    """The preflight's one request: the key is accepted and judge.model served, or a message names
    the variable / config key; a server without a model list passes."""
    key_var = "GEMINI_API_KEY" if backend == "gemini" else "OPENAI_API_KEY"
    with BACKENDS[backend](models={"judge-model-x"}, key=FAKE_KEY) as fake:
        cfg = make_cfg(backend, fake.url, 1)
        assert preflight(cfg) is None
        msg = preflight({**cfg, "model": "judge-model-y"})
        assert "judge.model 'judge-model-y'" in msg and fake.url in msg
        monkeypatch.setenv(key_var, "another-key-42")
        msg = preflight(cfg)
        assert f"rejected the API key in {key_var}" in msg or f"rejected the key in {key_var}" in msg
        assert "another-key-42" not in msg
    assert "cannot" in preflight(cfg) and "judge.base_url" in preflight(cfg)  # the server is gone
    if backend == "openai":
        with FakeOpenAI() as bare:  # no GET /v1/models: nothing to check the model against
            assert preflight(make_cfg(backend, bare.url, 1, model="anything")) is None
