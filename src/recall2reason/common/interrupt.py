"""Make an interrupted Snakemake stop its running jobs (called from the DAG's ``onstart``).

On SIGTERM Snakemake "exits after finishing currently running jobs", and a ``kill -INT`` of its
process (not a Ctrl-C in its terminal, which reaches the whole process group) leaves them running
too: a GPU job may then run on for hours after the user asked the study to stop. This handler sends
SIGTERM to every process the Snakemake process started (the jobs and their children), and to any
job it still starts while it winds down, before Snakemake's own handler runs. Pretraining then checkpoints, sampling flushes its finished rows, the
others stop where they are (every output is written atomically), all exit, and Snakemake exits
after them. Whatever still runs ``GRACE_S`` later gets SIGKILL. A rerun of the same command
resumes; see README, "After an interrupt".
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

log = logging.getLogger("recall2reason")

GRACE_S = 60.0  # a 150M-parameter checkpoint (weights + AdamW, ~2 GB) is written well within this


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children first), read from /proc; [] where there is no /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(pids: list[int], sig: int) -> int:
    sent = 0
    for pid in pids:
        try:
            os.kill(pid, sig)
            sent += 1
        except ProcessLookupError:
            pass
    return sent


def stop_jobs(me: int, grace_s: float, poll_s: float = 0.5) -> None:
    """SIGTERM every process below ``me`` and, for as long as this process lives, every one that
    appears later (a job Snakemake was starting as the signal came); SIGKILL after ``grace_s``."""
    signalled: set[int] = set()
    t0 = time.monotonic()
    while True:
        pids = descendants(me)
        if time.monotonic() - t0 >= grace_s:
            if pids:
                log.warning("%d job process(es) still running %.0f s after SIGTERM: sending SIGKILL", len(pids), grace_s)
            _signal_all(pids, signal.SIGKILL)
        else:
            new = [p for p in pids if p not in signalled]
            _signal_all(new, signal.SIGTERM)
            signalled.update(new)
        time.sleep(poll_s)


def forward_interrupts_to_jobs(grace_s: float = GRACE_S) -> None:
    """Install SIGTERM / SIGINT handlers that stop the running jobs, then call the previous handler
    (Snakemake's). Must run in the main thread after Snakemake set its own (``onstart`` does)."""
    me = os.getpid()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stopper: list[threading.Thread] = []

    def handler(signum, frame):
        if not stopper:
            # claim the stop before anything slow: a second signal (timeout, then make) may arrive
            # while this one is handled, and re-enter here
            thread = threading.Thread(target=stop_jobs, args=(me, grace_s), daemon=True, name="stop-jobs")
            stopper.append(thread)
            thread.start()
            log.warning("%s: stopping the running job process(es): they save their progress and exit (rerun to resume)",
                        signal.Signals(signum).name)
        prev = previous[signum]
        if callable(prev):
            prev(signum, frame)
        elif prev == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(me, signum)

    for sig in previous:
        signal.signal(sig, handler)
