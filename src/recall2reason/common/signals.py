"""SIGTERM / SIGUSR1 for long stages: act at a safe point, or at once while nothing is unsaved.

SLURM's warning signal, a preemption, and Snakemake's interrupt forwarding (``workflow/rules/
common.smk``) all arrive as SIGTERM. A loop (a training step, a sampled completion) checks
``exit_requested`` at its next safe point, saves its progress and exits 143. Before its first
unit of new work, a job may spend minutes in torch.compile, kernel autotuning or CUDA-graph capture
without reaching such a point; there is nothing to save then, so while ``nothing_to_save`` is true
SIGTERM exits at once instead of waiting for it.
"""

from __future__ import annotations

import logging
import signal

log = logging.getLogger("recall2reason")

EXIT_CODE = 143  # 128 + SIGTERM, what a shell reports for a job ended by TERM


class StopSignals:
    """Installs handlers for SIGTERM (save, then exit) and, with ``checkpoint_signal``, SIGUSR1
    (save and go on); ``restore()`` puts the previous handlers back."""

    def __init__(self, checkpoint_signal: bool = False):
        self.checkpoint_requested = False
        self.exit_requested = False
        self.nothing_to_save = True  # set False once the first unit of new work is done
        self._old = {}
        sigs = (signal.SIGTERM, signal.SIGUSR1) if checkpoint_signal else (signal.SIGTERM,)
        for sig in sigs:
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGTERM and self.nothing_to_save:
            log.warning("SIGTERM before any new work: exiting now (re-run to resume)")
            raise SystemExit(EXIT_CODE)
        self.checkpoint_requested = True
        if signum == signal.SIGTERM:
            self.exit_requested = True

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}
