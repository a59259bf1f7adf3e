"""common/warmup.py: jobs that start cold together wait for one warm-up per kernel family."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from recall2reason.common.warmup import first_item_warmed, first_warmup, kernel_families, warmup_dir

# a job warming `family` up: it holds the warm-up for hold_s, then finishes it (or fails, with "fail")
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from recall2reason.common.warmup import first_warmup
    folder, family, hold_s, outcome = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    with first_warmup([family], folder, timeout_s=30):
        (folder / "holding").touch()
        time.sleep(hold_s)
        if outcome == "fail":
            raise SystemExit(1)
        (folder / "warmed-by-holder").touch()
""")


@pytest.fixture
def holder(tmp_path):
    procs = []

    def start(family: str, hold_s: float, outcome: str = "ok", folder: Path = tmp_path) -> subprocess.Popen:
        (folder / "holding").unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), family, str(hold_s), outcome])
        procs.append(proc)
        t0 = time.monotonic()
        while not (folder / "holding").exists():
            assert proc.poll() is None and time.monotonic() - t0 < 60, "the holder did not start"
            time.sleep(0.05)
        return proc

    yield start
    for p in procs:
        p.kill()
        p.wait(30)


def test_a_job_starting_during_a_warmup_waits_for_it_then_later_ones_do_not(tmp_path, holder):
    h = holder("gdn", 1.0)
    with first_warmup(["gdn"], tmp_path, timeout_s=30, poll_s=0.05):
        assert (tmp_path / "warmed-by-holder").exists()  # it ran only once the holder had finished
    assert h.wait(30) == 0 and (tmp_path / "gdn.warm").exists()
    (tmp_path / "warmed-by-holder").unlink()
    holder("gdn", 30.0)  # warm already: it takes no lock, and nobody waits
    with first_warmup(["gdn"], tmp_path, timeout_s=30, poll_s=0.05):
        assert not (tmp_path / "warmed-by-holder").exists()


def test_other_families_do_not_wait(tmp_path, holder):
    holder("gla", 30.0)
    with first_warmup(["gdn"], tmp_path, timeout_s=30, poll_s=0.05):
        assert not (tmp_path / "warmed-by-holder").exists()
    assert (tmp_path / "gdn.warm").exists() and not (tmp_path / "gla.warm").exists()


def test_a_failed_or_dead_warmup_is_taken_over_by_a_waiter(tmp_path, holder):
    h = holder("gdn", 0.5, outcome="fail")
    with first_warmup(["gdn"], tmp_path, timeout_s=30, poll_s=0.05):
        assert h.wait(30) == 1 and not (tmp_path / "gdn.warm").exists()  # it failed (its lock goes before its exit): this job warms up
    assert (tmp_path / "gdn.warm").exists()
    h = holder("gla", 60.0)
    h.kill()  # the OS drops a dead job's lock
    h.wait(30)
    with first_warmup(["gla"], tmp_path, timeout_s=30, poll_s=0.05):
        assert not (tmp_path / "gla.warm").exists()
    assert (tmp_path / "gla.warm").exists()


def test_waiting_is_bounded_and_a_failed_block_marks_nothing(tmp_path, holder):
    h = holder("gdn", 60.0)
    with first_warmup(["gdn"], tmp_path, timeout_s=0.3, poll_s=0.05):  # gives up and goes on
        assert h.poll() is None
    assert not (tmp_path / "gdn.warm").exists()
    with pytest.raises(RuntimeError):
        with first_warmup(["mamba"], tmp_path, timeout_s=30):
            raise RuntimeError("out of memory")
    assert not (tmp_path / "mamba.warm").exists()


def test_no_flock_or_no_cache_means_no_coordination(tmp_path, monkeypatch):
    import fcntl

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    with monkeypatch.context() as m:
        m.setattr(fcntl, "flock", no_locks)
        with first_warmup(["gdn"], tmp_path, timeout_s=30):
            pass
    assert not (tmp_path / "gdn.warm").exists()
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton"))
    assert warmup_dir() == tmp_path / "triton" / ".warmup"  # beside the cache the locks guard
    monkeypatch.delenv("TRITON_CACHE_DIR")
    assert warmup_dir() is None
    with first_warmup(["gdn"]):  # no cache named: nothing to share, nothing to wait for
        pass


def test_families_are_keyed_by_mixer_and_shape_not_by_model():
    gla50 = {"d_model": 256, "n_heads": 4, "layers": ["gla", "attention"], "gla": {"expand_k": 1.0}}
    gla100 = {**gla50, "layers": ["gla", "gla"]}
    run = {"micro_batch": 16}
    (fam,) = kernel_families(gla50, "train", run)
    assert fam.startswith("train-gla-") and kernel_families(gla100, "train", run) == {fam}
    assert kernel_families({"layers": ["attention"]}, "train", run) == set()
    for other in (kernel_families(gla50, "decode", run), kernel_families(gla50, "train", {"micro_batch": 32}),
                  kernel_families({**gla50, "gla": {"expand_k": 0.5}}, "train", run)):
        assert other != {fam}
    assert len(kernel_families({**gla50, "layers": ["gla", "gdn", "mamba"]}, "train", run)) == 3


def test_a_samplers_first_completion_is_its_warmup(tmp_path, holder, monkeypatch):
    """Sampling and probes: everything up to the first completion (compile, capture, first prefills)
    waits for a concurrent job's warm-up of the same decode kernels; the rest streams as is."""
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    folder = tmp_path / ".warmup"
    folder.mkdir()
    seen = []

    def completions():
        seen.append((folder / "warmed-by-holder").exists())  # the engine's cold start happens here
        yield from range(3)

    h = holder("decode-gdn", 1.0, folder=folder)
    assert list(first_item_warmed(completions(), {"decode-gdn"})) == [0, 1, 2] and seen == [True]
    assert h.wait(30) == 0
    assert list(first_item_warmed(iter(()), {"decode-gla"})) == []
    assert not (folder / "decode-gla.warm").exists()  # nothing was generated: nothing is warm
    assert list(first_item_warmed(range(2), {"decode-gla"}, enabled=False)) == [0, 1]
    assert not (folder / "decode-gla.warm").exists()
