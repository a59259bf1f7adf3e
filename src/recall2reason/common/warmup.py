"""One cold warm-up per kernel family: GPU jobs of a study that start at the same moment wait for
one of them to fill the shared compile cache, instead of each autotuning the same kernels.

Why: the cache (`<results_dir>/.cache/compile`, where FLA keeps its Triton autotune winners) only
helps jobs that start after it is warm. On one H100 shared by 8 smoke jobs, three GDN trainings that
started together each spent ~154 s warming up, and a GDN job started after them 6 s
(benchmarks/reports/2026-12-07-gpu-smoke-h100-cold.md).

How: per family (e.g. ``train-gdn-<shape hash>``) a lock file and a ``.warm`` marker under
``$TRITON_CACHE_DIR/.warmup/``. The first job takes the lock, warms up, writes the marker and lets
go; jobs that find the lock taken wait. When it is let go they look for the marker: there, they go
on and read the cache; missing (the warm-up failed, or its job died and the OS dropped its lock),
the first of them to take the lock warms up instead. Waiting is bounded (``timeout_s``), and a file
system without flock skips all this, so at worst a job warms up on its own, as it would without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Iterable, Iterator, TypeVar

log = logging.getLogger("recall2reason")
T = TypeVar("T")


def kernel_families(model: dict, stage: str, run: dict) -> set[str]:
    """The recurrent kernel families a model (``ModelConfig.to_dict()``) compiles and autotunes in
    ``stage`` ("train", "decode"), each keyed by what its kernels' shapes and choices depend on (the
    mixer's settings, widths, kernel choices, and ``run``: batch shape, dtype, GPU), so that another
    config on the same cache does not find them warm. Attention's kernels are per model (inductor)
    or prebuilt: it takes no lock."""
    common = {k: model.get(k) for k in ("d_model", "n_heads", "n_kv_heads", "backend", "kernels")}
    families = set()
    for mixer in set(model.get("layers") or []) - {"attention"}:
        shape = json.dumps({**common, "mixer": model.get(mixer), "run": run}, sort_keys=True, default=str)
        families.add(f"{stage}-{mixer}-{hashlib.sha256(shape.encode()).hexdigest()[:12]}")
    return families


def warmup_dir() -> Path | None:
    """Where the locks live: beside the Triton cache they guard (None: no cache named)."""
    cache = os.environ.get("TRITON_CACHE_DIR")
    return Path(cache) / ".warmup" if cache else None


def _lock_or_wait(folder: Path, family: str, timeout_s: float, poll_s: float):
    """The open lock file if this job is to warm ``family`` up, else None (after waiting for the job that does)."""
    import fcntl

    marker = folder / f"{family}.warm"
    if marker.exists():
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        f = open(folder / f"{family}.lock", "a+")
    except OSError:
        return None
    t0, waited = time.monotonic(), False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        except OSError:  # a file system without flock (some NFS / Lustre mounts): no coordination
            break
        else:
            if not marker.exists():
                return f  # first here, or the warm-up before us failed: ours now
            break  # warmed up while we waited
        if not waited:
            log.info("waiting for another job to warm up the %s kernels (%s)", family, folder)
            waited = True
        if time.monotonic() - t0 >= timeout_s:
            log.warning("gave up waiting for the %s warm-up after %.0f s; warming up here", family, timeout_s)
            break
        time.sleep(poll_s)
    f.close()
    if waited:
        log.info("%s kernels: waited %.1f s", family, time.monotonic() - t0)
    return None


class _Warmup:
    warmed = True  # set False to leave the families unmarked (nothing was warmed up)


@contextlib.contextmanager
def first_warmup(families: Iterable[str], folder: Path | None = None, timeout_s: float = 900.0,
                 poll_s: float = 1.0) -> Iterator[_Warmup]:
    """Run the block (a job's first step) as the warm-up of every family not yet warm, or after
    another job's warm-up of it. Families are taken in sorted order, so two jobs never wait on each
    other; a block that raises marks nothing."""
    folder = folder if folder is not None else warmup_dir()
    held, state = [], _Warmup()
    try:
        if folder is not None:
            for family in sorted(set(families)):
                f = _lock_or_wait(folder, family, timeout_s, poll_s)
                if f is not None:
                    held.append((family, f))
        yield state
        for family, _ in held if state.warmed else ():
            try:
                (folder / f"{family}.warm").touch()
            except OSError as e:  # a full disk must not fail a job that trained: the next job warms up again
                log.warning("could not mark %s warm: %s", family, e)
    finally:
        for _, f in held:
            f.close()


def first_item_warmed(items: Iterable[T], families: Iterable[str], enabled: bool = True) -> Iterator[T]:
    """``items``, with the work up to the first one (a sampler's compile, capture and first prefills,
    and the decode steps until a row finishes: at most max_new_tokens) run as a :func:`first_warmup`."""
    it = iter(items)
    if enabled:
        end = object()
        with first_warmup(families) as warmup:
            first = next(it, end)
            warmup.warmed = first is not end
        if first is end:
            return
        yield first
    yield from it
