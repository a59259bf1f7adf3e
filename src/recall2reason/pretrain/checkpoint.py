"""Resumable training state, kept under the state dir (never a declared Snakemake output).

``<state-dir>/state.pt`` (torch.save, written atomically: temp file + fsync + rename) holds the
model and AdamW state dicts, the optimizer step reached, the wall time spent so far, the RNG
states (python, numpy, torch CPU and CUDA) and a fingerprint of everything that determines the
numbers (train recipe, model config, data manifest). The data position and the learning rate are
functions of the step (see ``data.py``, ``schedule.py``), so the step is all a resume needs for
them. ``<state-dir>/metrics.jsonl`` is the running metrics log; rows past the checkpointed step
(written before a crash) are dropped on resume, so the final log has each step exactly once.

Signals (``recall2reason.common.signals``): SIGUSR1 requests a checkpoint and training continues;
SIGTERM (SLURM's warning, preemption, ``scancel``, an interrupted Snakemake) requests a checkpoint
and a clean exit with status 143, after which the job can be re-run and resumes. Before the first
step of a run (compiling, autotuning, capturing) SIGTERM exits at once: nothing is unsaved.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from recall2reason.common import formats
from recall2reason.common.io import atomic_write, read_jsonl, write_jsonl


class ResumeMismatchError(RuntimeError):
    pass


def rng_state() -> dict:
    s = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def set_rng_state(s: dict) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if "cuda" in s and torch.cuda.is_available() and len(s["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_state(path: Path, model, optimizer, step: int, elapsed_s: float, fingerprint: dict, done: bool = False) -> None:
    state = {
        "format": "r2r-pretrain-state-v1",
        "step": step,
        "elapsed_s": elapsed_s,
        "done": done,
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": rng_state(),
    }
    with atomic_write(path, "wb") as f:
        torch.save(state, f)


def load_state(path: Path, model, optimizer, fingerprint: dict, device) -> dict:
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:  # written atomically: only a damaged disk gets here
        raise ResumeMismatchError(f"{path}: cannot read the training state ({e}); delete {path.parent} to start "
                                  "this model from scratch") from None
    if state.get("format") != "r2r-pretrain-state-v1":
        raise ResumeMismatchError(f"{path}: not a pretrain state file")
    if state["fingerprint"] != fingerprint:
        old, new = state["fingerprint"], fingerprint
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ResumeMismatchError(
            f"{path} was written by a run with different {', '.join(diff)}: "
            f"{ {k: old.get(k) for k in diff} } vs now { {k: new.get(k) for k in diff} }. "
            f"Delete {path.parent} to start this model from scratch, or restore the old config."
        )
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state


class MetricsLog:
    """Append-only JSONL log in the state dir; truncated to ``keep_until`` steps when resuming."""

    def __init__(self, path: Path, keep_until: int):
        self.path = Path(path)
        rows = [r for r in self.rows() if r["step"] <= keep_until] if self.path.exists() else []
        write_jsonl(self.path, rows)
        self._f = open(self.path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def publish(self, dest: Path) -> int:
        """Copy the log atomically to the declared output ``dest``."""
        self._f.flush()
        return write_jsonl(dest, self.rows())

    def rows(self):
        # a kill mid-append tears the last line: read_jsonl skips it (and says so)
        return read_jsonl(self.path, formats.METRICS, resumable=True)

