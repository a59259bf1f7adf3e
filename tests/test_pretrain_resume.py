"""Kill -9 at a random step, or SIGTERM, then resume: the same losses as an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

from test_pretrain import TINY_MODEL, job_cfg, make_data, read_rows, run_cli

MODEL = {**TINY_MODEL, "d_model": 64, "n_heads": 4, "n_kv_heads": 4}
KEYS = ("step", "tokens", "loss", "lr", "grad_norm")


def _cfg():
    return job_cfg(model=MODEL, max_steps=80, global_batch_tokens=1024, micro_batch_size=8, warmup_steps=10,
                   checkpoint_every_steps=7, log_every=1)


def _start(cfg, manifest, tok, out, state):
    import json

    cmd = [sys.executable, "-m", "recall2reason.pretrain", "--cfg", json.dumps(cfg), "--data", str(manifest),
           "--tokenizer", str(tok), "--out-dir", str(out), "--state-dir", str(state), "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _wait_rows(proc, path, n, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, f"training ended before step {n}: {proc.stderr.read()[-2000:]}"
        time.sleep(0.01)
    raise TimeoutError(f"no step {n} after {timeout}s")


def _project(rows):
    return [{k: r[k] for k in KEYS} for r in rows]


def test_kill9_and_sigterm_resume_reproduce_the_uninterrupted_run(tmp_path):
    manifest, tok = make_data(tmp_path / "data", n_tokens=60_000)
    cfg = _cfg()
    ref = run_cli(cfg, manifest, tok, tmp_path / "ref", tmp_path / "ref_state", timeout=80)
    assert ref.returncode == 0, ref.stderr[-3000:]
    ref_rows = _project(read_rows(tmp_path / "ref" / "metrics.jsonl"))
    assert [r["step"] for r in ref_rows] == list(range(1, 81))
    ref_w = load_file(str(tmp_path / "ref" / "model.safetensors"))

    # kill -9 at a random step (not necessarily a checkpoint step), resume
    k = random.Random().randint(10, 45)
    out, state = tmp_path / "out", tmp_path / "state"
    proc = _start(cfg, manifest, tok, out, state)
    _wait_rows(proc, state / "metrics.jsonl", k)
    proc.kill()
    proc.wait()
    assert not (out / "model.safetensors").exists()
    assert (state / "state.pt").exists()
    done = torch.load(state / "state.pt", weights_only=False)["step"]
    assert 0 < done < 80
    # SIGTERM a little later: checkpoint + exit 143, then resume to the end
    # (wait for the resumed run's first checkpoint: the old log already has rows past `done`)
    mtime = (state / "state.pt").stat().st_mtime_ns
    proc = _start(cfg, manifest, tok, out, state)
    t0 = time.time()
    while (state / "state.pt").stat().st_mtime_ns == mtime:
        assert proc.poll() is None and time.time() - t0 < 60, proc.stderr.read()[-2000:]
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "SIGTERM" in err
    st = torch.load(state / "state.pt", weights_only=False)
    assert st["step"] > done and not st["done"]
    r = run_cli(cfg, manifest, tok, out, state, timeout=80)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"at step {st['step']}" in r.stderr  # resumed, not restarted

    rows = _project(read_rows(out / "metrics.jsonl"))
    assert rows == ref_rows  # bit-identical losses, lr and grad norms at every step
    w = load_file(str(out / "model.safetensors"))
    assert w.keys() == ref_w.keys() and all(torch.equal(w[n], ref_w[n]) for n in w)


def test_resume_refuses_a_changed_recipe(tmp_path):
    manifest, tok = make_data(tmp_path / "data", n_tokens=20_000)
    cfg = job_cfg(max_steps=6, checkpoint_every_steps=2)
    assert run_cli(cfg, manifest, tok, tmp_path / "o", tmp_path / "s", timeout=60).returncode == 0
    cfg["train"]["lr"] = 5e-4
    r = run_cli(cfg, manifest, tok, tmp_path / "o", tmp_path / "s", timeout=60)
    assert r.returncode == 2 and "different train" in r.stderr and "Delete" in r.stderr
    assert (tmp_path / "s" / "state.pt").exists()  # nothing lost
