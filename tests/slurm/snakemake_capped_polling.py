"""``python -m snakemake`` with the SLURM executor plugin's status-check interval capped (tests only).

Usage: ``python tests/slurm/snakemake_capped_polling.py <snakemake arguments>``.

The plugin (2.x) asks SLURM for its jobs' states every ``slurm-init-seconds-before-status-checks``
seconds and adds 10 s after every check in which no job finished (up to 180 s). That suits a busy
cluster; on the one-node test cluster, where a job lasts seconds, it makes Snakemake notice a
finished, failed or cancelled job 10-40 s late, and the study's jobs run one wave after another.
Here the interval is held at CAP_S seconds (``R2R_SLURM_STATUS_CAP_S``, default 2). Only how often
``squeue`` is asked changes: submission, the status command and how its answer is read, failure
handling and retries are the plugin's own code, unchanged. Should a plugin version drop the
attribute, the cap is skipped (the run is only slower), never an error.
"""

from __future__ import annotations

import os
import runpy
import sys

CAP_S = float(os.environ.get("R2R_SLURM_STATUS_CAP_S", "2"))


def cap_status_interval(cap_s: float = CAP_S) -> bool:
    """Cap the plugin executor's ``next_seconds_between_status_checks``; True when applied."""
    try:
        from snakemake_executor_plugin_slurm import Executor
    except ImportError:
        return False
    prop = getattr(Executor, "next_seconds_between_status_checks", None)  # RemoteExecutor's property
    if not isinstance(prop, property) or prop.fget is None or prop.fset is None:
        return False

    def get(self):
        value = prop.fget(self)
        return value if value is None else min(value, cap_s)

    def set_(self, value):
        prop.fset(self, value if value is None else min(value, cap_s))

    Executor.next_seconds_between_status_checks = property(get, set_)
    return True


if __name__ == "__main__":
    cap_status_interval()
    sys.argv[0] = "snakemake"
    runpy.run_module("snakemake", run_name="__main__", alter_sys=True)
