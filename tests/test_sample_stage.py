"""Sample stage end to end on CPU: CLI, output format, parts, kill -9 / restart, tokenizer check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from recall2reason.common import read_jsonl, write_jsonl
from recall2reason.data.template import format_prompt
from recall2reason.data.tokenizer import load_tokenizer, train_tokenizer
from recall2reason.models import ModelConfig, build_model, save_model
from recall2reason.sample import run as sample_run
from recall2reason.sample.__main__ import main
from recall2reason.sample.sampling import SAMPLER_VERSION

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("sample")
    texts = [f"Question: What is {a} plus {b}?\nAnswer: {a} + {b} = {a + b}. The answer is {a + b}."
             for a in range(40) for b in range(0, 40, 3)]
    train_tokenizer(texts, d / "tok.model", vocab_size=320)
    tok = load_tokenizer(d / "tok.model")
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, n_layers=2, n_heads=2, n_kv_heads=2, mlp_ratio=4,
                                    vocab_size=tok.vocab_size, max_seq_len=128, backend="reference", init_std=0.1))
    save_model(model, d / "model", extra={"name": "tiny", "tokenizer_sha256": tok.sha256})
    problems = [{"id": f"p{i}", "question": f"What is {i} plus {2 * i}?", "prompt": format_prompt(f"What is {i} plus {2 * i}?")}
                for i in range(16)]
    write_jsonl(d / "eval.jsonl", problems)
    return d, tok


def args(d: Path, tag: str, cfg: dict, part: int = 0) -> list[str]:
    return ["--cfg", json.dumps(cfg), "--model-dir", str(d / "model"), "--tokenizer", str(d / "tok.model"),
            "--eval", str(d / "eval.jsonl"), "--part", str(part), "--out", str(d / tag / f"part-{part}.jsonl"),
            "--stats", str(d / tag / f"part-{part}.stats.json"), "--state-dir", str(d / ".state" / tag / f"part-{part}"),
            "--device", "cpu", "--no-progress"]


CFG = {"n": 6, "temperature": 0.8, "top_p": 0.9, "max_new_tokens": 24, "batch_size": 8, "seed": 7}


def test_cli_rows_stats_and_parts(assets):
    d, tok = assets
    assert main(args(d, "one", CFG)) == 0
    rows = list(read_jsonl(d / "one" / "part-0.jsonl"))
    assert [(r["problem_id"], r["sample_idx"]) for r in rows] == [(f"p{i}", j) for i in range(16) for j in range(6)]
    for r in rows:
        assert set(r) == {"problem_id", "sample_idx", "text", "n_tokens", "finish_reason", "seed"}
        assert r["finish_reason"] in ("eos", "length") and 0 <= r["n_tokens"] <= 24
        assert (r["finish_reason"] == "length") == (r["n_tokens"] == 24)
        assert r["text"] == tok.decode(tok.encode(r["text"])) or r["n_tokens"] > 0
    assert len({r["seed"] for r in rows}) == len(rows)
    assert len({r["text"] for r in rows}) > len(rows) // 2  # sampling, not one repeated string
    st = json.loads((d / "one" / "part-0.stats.json").read_text())
    assert set(st) == {"device", "wall_s", "gpu_s", "new_tokens", "completions", "tokens_per_s", "kernels"}
    assert st["kernels"] == {"short_conv": "auto", "gla_train": "fused", "decode_attention": "sdpa"}
    assert st["device"] == "cpu" and st["completions"] == 96 and st["gpu_s"] == 0.0
    assert st["new_tokens"] == sum(r["n_tokens"] + (r["finish_reason"] == "eos") for r in rows)
    assert st["tokens_per_s"] > 0 and st["wall_s"] > 0
    assert not (d / ".state" / "one" / "part-0").exists()  # state removed once the part is written
    # the same samples split over 3 jobs: parts hold contiguous index blocks, rows identical
    split = []
    for k in range(3):
        assert main(args(d, "three", {**CFG, "jobs": 3}, part=k)) == 0
        part_rows = list(read_jsonl(d / "three" / f"part-{k}.jsonl"))
        assert {r["sample_idx"] for r in part_rows} == {2 * k, 2 * k + 1}
        split += part_rows
    key = lambda r: (r["problem_id"], r["sample_idx"])  # noqa: E731
    assert sorted(split, key=key) == sorted(rows, key=key)


def test_kill_9_and_restart_loses_and_duplicates_nothing(assets):
    d, _ = assets
    cfg = {**CFG, "n": 8, "max_new_tokens": 32, "batch_size": 4, "flush_every_s": 0.05}
    assert main(args(d, "clean", cfg)) == 0
    clean = list(read_jsonl(d / "clean" / "part-0.jsonl"))

    a = args(d, "killed", cfg)
    state = d / ".state" / "killed" / "part-0"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "recall2reason.sample", *a], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(state.glob("shard-*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (d / "killed" / "part-0.jsonl").exists(), "the run finished before the kill: make it longer"
    shards = list(state.glob("shard-*.json"))
    assert len(shards) >= 2
    done = sum(len(json.loads(p.read_text())["rows"]) for p in shards)
    assert 0 < done < len(clean)
    damaged = sorted(shards)[0]  # a state shard the disk damaged: dropped, its rows sampled again
    damaged.write_bytes(bytes(damaged.stat().st_size))
    assert main(args(d, "killed", cfg)) == 0
    resumed = list(read_jsonl(d / "killed" / "part-0.jsonl"))
    assert resumed == clean  # same rows, same order, no loss, no duplicate
    st = json.loads((d / "killed" / "part-0.stats.json").read_text())
    assert st["completions"] == len(clean)


def _start(a: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-m", "recall2reason.sample", *a], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 60) -> list[str]:
    lines, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} in the sampler's log:\n{''.join(lines)}")


def test_sigterm_flushes_finished_rows_and_exits_143(assets):
    """What an interrupted Snakemake or a scheduler's time limit sends: the rows finished so far go
    into a shard (none is due by time here), the process exits 143, and a rerun completes the part
    exactly as an uninterrupted run does."""
    d, _ = assets
    cfg = {**CFG, "n": 32, "max_new_tokens": 32, "batch_size": 4, "flush_every_s": 3600}
    assert main(args(d, "term-clean", cfg)) == 0
    clean = list(read_jsonl(d / "term-clean" / "part-0.jsonl"))

    a = args(d, "term", cfg)
    state = d / ".state" / "term" / "part-0"
    proc = _start(a)
    _wait_for_line(proc, "first completion after")
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, log
    assert "SIGTERM" in log and not (d / "term" / "part-0.jsonl").exists()
    done = sum(len(json.loads(p.read_text())["rows"]) for p in state.glob("shard-*.json"))
    assert 0 < done < len(clean), log
    assert main(args(d, "term", cfg)) == 0
    assert list(read_jsonl(d / "term" / "part-0.jsonl")) == clean


def test_sigterm_before_the_first_completion_exits_at_once(assets):
    """While loading, compiling or capturing there is nothing to save: TERM ends the job now."""
    d, _ = assets
    proc = _start(args(d, "term-early", {**CFG, "n": 64, "max_new_tokens": 64}))
    _wait_for_line(proc, "completions to go on")
    t0 = time.time()
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143 and time.time() - t0 < 10, log
    assert not (d / "term-early" / "part-0.jsonl").exists()


def test_state_of_another_config_is_discarded(assets):
    d, _ = assets
    cfg = {**CFG, "n": 2, "max_new_tokens": 8}
    state = d / ".state" / "cfgchange" / "part-0"
    state.mkdir(parents=True)
    (state / "fingerprint.json").write_text(json.dumps({"model": "something else"}))
    (state / "shard-000000.json").write_text(json.dumps(
        {"wall_s": 1, "gen_s": 1, "new_tokens": 1, "rows": [{"problem_id": "p0", "sample_idx": 0, "text": "STALE"}]}))
    assert main(args(d, "cfgchange", cfg)) == 0
    rows = list(read_jsonl(d / "cfgchange" / "part-0.jsonl"))
    assert len(rows) == 32 and all(r["text"] != "STALE" for r in rows)


def test_state_records_the_sampling_function(assets, monkeypatch):
    """The resume fingerprint names the sampling function, so shards drawn by another version of it
    are discarded (by the fingerprint check above) rather than mixed with new draws."""
    seen = []
    real = sample_run.ShardStore

    def spy(state_dir, fingerprint):
        seen.append(fingerprint)
        return real(state_dir, fingerprint)

    monkeypatch.setattr(sample_run, "ShardStore", spy)
    d, _ = assets
    assert main(args(d, "fp", {**CFG, "n": 1, "max_new_tokens": 4})) == 0
    assert [fp["sampler"] for fp in seen] == [SAMPLER_VERSION]


def test_refuses_other_tokenizer_and_bad_config(assets, tmp_path):
    d, _ = assets
    train_tokenizer([f"lorem ipsum {i} dolor" for i in range(300)], tmp_path / "other.model", vocab_size=300)
    a = args(d, "bad", CFG)
    a[a.index("--tokenizer") + 1] = str(tmp_path / "other.model")
    with pytest.raises(SystemExit, match="tokenizer mismatch"):
        main(a)
    with pytest.raises(SystemExit):
        main(args(d, "bad", {**CFG, "tempreature": 1.0}))  # unknown key -> argparse error
    with pytest.raises(SystemExit):
        main(args(d, "bad", {**CFG, "jobs": 2}, part=2))  # part outside 0..jobs-1
    assert not (d / "bad").exists()
