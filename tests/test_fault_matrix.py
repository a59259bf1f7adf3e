"""The fault matrix: one row per stage (tokenize, pretrain, sample, vote, judge, report).

Columns:
- kill -9: the stage's CLI, SIGKILLed mid-run (tests/fakes/killpoint.py: the same point every
  run, mid-write), then run again, gives the outputs of an uninterrupted run;
- truncated / corrupted (same size, 64 bytes zeroed in the middle) / empty input file: the stage
  exits 2 with a message naming the damaged file (no traceback).

A tiny study is run once, uninterrupted, as the reference (module fixture); each cell reuses its
inputs. docs/design.md lists the matrix. The judge talks to a fake OpenAI-compatible server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from conftest import REPO
from fakes.llm_server import FakeOpenAI
from recall2reason.common import read_jsonl, write_jsonl
from recall2reason.data import synthetic
from recall2reason.data.evalsets import EvalSetConfig, build_eval_rows
from recall2reason.data.sources import document_text
from recall2reason.data.tokenizer import train_tokenizer

KILLPOINT = REPO / "tests" / "fakes" / "killpoint.py"
STAGES = ["tokenize", "pretrain", "sample", "vote", "judge", "report"]
N_SAMPLES, FIRST_K = 4, 2

# What each damaged input makes the stage say, besides the file's name.
MATRIX = {
    "tokenize": {"truncated": "the file ends in the middle of this line", "corrupted": "not valid JSON", "empty": "no documents read"},
    "pretrain": {"truncated": "(truncated?)", "corrupted": "sha256", "empty": "(truncated?)"},
    "sample": {"truncated": "sha256", "corrupted": "sha256", "empty": "sha256"},
    "vote": {"truncated": "the file ends in the middle of this line", "corrupted": "not valid JSON", "empty": "lack samples"},
    "judge": {"truncated": "the file ends in the middle of this line", "corrupted": "not valid JSON", "empty": "no row for problem"},
    "report": {"truncated": "the file ends in the middle of this line", "corrupted": "not valid JSON", "empty": "no judged completions"},
}  # fmt: skip

# Output fields that measure the run rather than its result (wall time, this run's calls).
TIMING = {"elapsed_s", "tokens_per_s", "mfu", "train_wall_s", "wall_s", "cache_hits", "calls_this_run",
          "tokens_in_this_run", "tokens_out_this_run", "dollars_this_run", "invalid_retries_this_run"}  # fmt: skip


@dataclass
class Stage:
    module: str
    args: Callable[[dict, Path], list[str]]  # (inputs by role, output dir) -> CLI arguments
    inputs: dict  # role -> path, the reference outputs of the stages before
    outputs: list[str]  # files (globs) under the output dir that must equal the reference's; the first is
    # one the killed run had not written yet
    kill: str  # killpoint spec
    damage: tuple[str, str | None]  # (input role, file in that role's directory, or None: the file itself)
    resumed: str = ""  # what the rerun's log says when it picked up the killed run's state
    main: Callable = field(default=None, repr=False)


def _env() -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"), "NO_PROXY": "127.0.0.1,localhost"}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "OPENAI_BASE_URL"):
        env.pop(var, None)
    return env


def run_stage(stage: Stage, inputs: dict, out: Path, kill: str | None = None) -> subprocess.CompletedProcess:
    args = stage.args(inputs, out)
    cmd = [sys.executable, str(KILLPOINT), kill, stage.module, *args] if kill else [sys.executable, "-m", stage.module, *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)


def _stages(root: Path, judge_url: str) -> dict[str, Stage]:
    from recall2reason.data.__main__ import main as data_main
    from recall2reason.judge.__main__ import main as judge_main
    from recall2reason.pretrain.__main__ import main as pretrain_main
    from recall2reason.report.__main__ import main as report_main
    from recall2reason.sample.__main__ import main as sample_main
    from recall2reason.vote.stage import main as vote_main

    ref = root / "ref"
    data_cfg = lambda i: {"sources": {"train": {"format": "gsm8k", "path": str(i["source"])}},  # noqa: E731
                          "seq_len": 32, "epochs": 1, "seed": 3, "shard_tokens": 4096}
    model = {"d_model": 32, "n_layers": 2, "n_heads": 2, "n_kv_heads": 2, "vocab_size": 400, "max_seq_len": 256,
             "backend": "reference"}
    train = {"global_batch_tokens": 256, "micro_batch_size": 4, "warmup_steps": 2, "precision": "fp32", "compile": False,
             "log_every": 1, "max_steps": 12, "checkpoint_every_steps": 3}
    sample_cfg = {"n": N_SAMPLES, "temperature": 1.0, "top_p": 0.95, "max_new_tokens": 16, "batch_size": 8, "seed": 5,
                  "flush_every_s": 1e-6}  # every completion its own resumable shard
    judge_cfg = {"backend": "openai", "model": "judge-model-x", "base_url": judge_url + "/v1", "first_k": FIRST_K,
                 "concurrency": 2, "requests_per_minute": 60000, "timeout_s": 10,
                 "retry": {"attempts": 2, "initial_delay_s": 0.01, "max_delay_s": 0.05}}
    tok, ev = root / "in" / "tokenizer.model", root / "in" / "gsm8k.jsonl"
    return {
        "tokenize": Stage(
            "recall2reason.data",
            lambda i, o: ["tokenize", "--cfg", json.dumps(data_cfg(i)), "--tokenizer", str(i["tokenizer"]),
                          "--out", str(o / "train" / "manifest.json"), "--state-dir", str(o / "state"), "--workers", "1"],
            {"source": root / "in" / "train.jsonl", "tokenizer": tok},
            ["train/manifest.json", "train/shard_*.bin"],
            "rename:shard_*.bin:3", ("source", None), main=data_main),
        "pretrain": Stage(
            "recall2reason.pretrain",
            lambda i, o: ["--cfg", json.dumps({"name": "transformer", "model": model, "train": train}),
                          "--data", str(i["manifest"]), "--tokenizer", str(i["tokenizer"]), "--out-dir", str(o / "model"),
                          "--state-dir", str(o / "state"), "--device", "cpu"],
            {"manifest": ref / "tokenize" / "train" / "manifest.json", "tokenizer": tok},
            ["model/model.safetensors", "model/config.json", "model/metrics.jsonl"],
            "rename:state.pt:2", ("manifest", "shard_00001.bin"), resumed="at step 3 / 12", main=pretrain_main),
        "sample": Stage(
            "recall2reason.sample",
            lambda i, o: ["--cfg", json.dumps(sample_cfg), "--model-dir", str(i["model"]), "--tokenizer", str(i["tokenizer"]),
                          "--eval", str(i["eval"]), "--out", str(o / "part-0.jsonl"), "--stats", str(o / "part-0.stats.json"),
                          "--state-dir", str(o / "state"), "--device", "cpu", "--no-progress"],
            {"model": ref / "pretrain" / "model", "tokenizer": tok, "eval": ev},
            ["part-0.jsonl"], "rename:shard-*.json:3", ("model", "model.safetensors"),
            resumed=f"22 of {6 * N_SAMPLES} completions to go", main=sample_main),
        "vote": Stage(
            "recall2reason.vote",
            lambda i, o: ["--cfg", json.dumps({"workers": 1, "bootstrap": 50}), "--eval", str(i["eval"]),
                          "--samples", str(i["samples"]), "--n", str(N_SAMPLES), "--out-problems", str(o / "problems.jsonl"),
                          "--out-curves", str(o / "curves.csv"), "--out-breakdown", str(o / "breakdown.csv")],
            {"eval": ev, "samples": ref / "sample" / "part-0.jsonl"},
            ["curves.csv", "problems.jsonl", "breakdown.csv"], "rename:curves.csv:1", ("samples", None), main=vote_main),
        "judge": Stage(
            "recall2reason.judge",
            lambda i, o: ["run", "--cfg", json.dumps(judge_cfg), "--model-name", "transformer", "--dataset", "gsm8k",
                          "--eval", str(i["eval"]), "--samples", str(i["samples"]), "--vote", str(i["vote"]),
                          "--cache", str(o / "cache"), "--out", str(o / "judge.jsonl"), "--ledger", str(o / "ledger.json")],
            {"eval": ev, "samples": ref / "sample" / "part-0.jsonl", "vote": ref / "vote" / "problems.jsonl"},
            ["judge.jsonl", "ledger.json"], "call:recall2reason.judge.cache:JudgeCache.put:3", ("vote", None),
            resumed="(3 cache hits)", main=judge_main),
        "report": Stage(
            "recall2reason.report",
            lambda i, o: ["table", "--which", "table1", "--cfg", "{}", "--judge", str(i["judge"]), "--names", "transformer",
                          "--out-csv", str(o / "table1.csv"), "--out-md", str(o / "table1.md"), "--out-tex", str(o / "table1.tex")],
            {"judge": ref / "judge" / "judge.jsonl"},
            ["table1.md", "table1.csv", "table1.tex"], "rename:table1.md:1", ("judge", None), main=report_main),
    }  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    (root / "in").mkdir()
    train_rows = list(synthetic.generate("gsm8k", 300, seed=11, stream="train"))
    write_jsonl(root / "in" / "train.jsonl", train_rows)
    train_tokenizer([document_text("gsm8k", r) for r in train_rows], root / "in" / "tokenizer.model", vocab_size=400)
    write_jsonl(root / "in" / "gsm8k.jsonl", build_eval_rows("gsm8k", EvalSetConfig(format="synthetic_gsm8k", n=6, seed=7)))
    with FakeOpenAI(models={"judge-model-x"}) as judge_server:
        stages = _stages(root, judge_server.url)
        for name in STAGES:  # the reference: every stage once, uninterrupted
            proc = run_stage(stages[name], stages[name].inputs, root / "ref" / name)
            assert proc.returncode == 0, f"{name}:\n{proc.stderr[-4000:]}"
        yield root, stages


def _comparable(path: Path):
    """A file's content with the fields that measure the run (not its result) left out."""
    if path.suffix == ".json":
        return _drop_timing(json.loads(path.read_text()))
    if path.suffix == ".jsonl":
        return [_drop_timing(r) for r in read_jsonl(path)]
    return path.read_bytes()


def _drop_timing(obj):
    return {k: v for k, v in obj.items() if k not in TIMING} if isinstance(obj, dict) else obj


@pytest.mark.parametrize("name", STAGES)
def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_outputs(study, name, tmp_path):
    root, stages = study
    stage = stages[name]
    killed = run_stage(stage, stage.inputs, tmp_path, kill=stage.kill)
    assert killed.returncode == -signal.SIGKILL, f"not killed at {stage.kill}:\n{killed.stderr[-3000:]}"
    assert not list(tmp_path.glob(stage.outputs[0]))
    rerun = run_stage(stage, stage.inputs, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert stage.resumed in rerun.stderr
    ref = root / "ref" / name
    for pattern in stage.outputs:
        files = sorted(p.relative_to(ref) for p in ref.glob(pattern))
        assert files and sorted(p.relative_to(tmp_path) for p in tmp_path.glob(pattern)) == files, pattern
        for f in files:
            assert _comparable(tmp_path / f) == _comparable(ref / f), f


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":  # cut mid-line, as a copy that stopped early
        cut = len(data) * 3 // 5
        path.write_bytes(data[: cut - 1 if data[cut - 1 : cut] == b"\n" else cut])
    elif how == "corrupted":  # same size, a block of zeros in the middle (a bad disk, a torn overwrite)
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes(64) + data[mid + 64 :])
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "corrupted", "empty"])
@pytest.mark.parametrize("name", STAGES)
def test_damaged_input_stops_the_stage_naming_the_file(study, name, how, tmp_path, capsys, caplog):
    root, stages = study
    stage = stages[name]
    role, member = stage.damage
    src = Path(stage.inputs[role])
    inputs = dict(stage.inputs)
    if member is None:
        inputs[role] = bad = tmp_path / src.name
        shutil.copy(src, bad)
    else:  # a file next to the named one (a shard of a manifest) or in the named directory (weights)
        folder = src if src.is_dir() else src.parent
        shutil.copytree(folder, tmp_path / folder.name)
        inputs[role] = tmp_path / folder.name / (src.name if src.is_file() else "")
        bad = tmp_path / folder.name / member
    damage(bad, how)
    rc = stage.main(stage.args(inputs, tmp_path / "out"))
    said = capsys.readouterr().err + caplog.text
    assert rc == 2, said[-3000:]
    assert str(bad) in said and MATRIX[name][how] in said, said[-3000:]
