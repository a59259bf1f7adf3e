"""Run a stage's CLI and SIGKILL it at a chosen point: kill -9 mid-run, at the same place every run.

    python tests/fakes/killpoint.py SPEC MODULE [ARGS...]      (as ``python -m MODULE ARGS...``)

SPEC is one of
  ``rename:GLOB:N``         just before the Nth atomic rename (os.replace) onto a file whose name
                            matches GLOB: its temp file is written, the target not yet replaced
  ``call:MODULE:ATTR:N``    just after the Nth call of MODULE.ATTR returns (ATTR may be Class.method)

A kill from outside at a random moment would test the same code, but only sometimes the
interesting moment; this lands there every time, so a fault-matrix row cannot pass by luck.
If the point is never reached the stage finishes normally (exit 0), which the test reports.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import os
import runpy
import signal
import sys


def install(spec: str) -> None:
    kind, *where, n = spec.split(":")
    n, count = int(n), 0

    def tick() -> None:
        nonlocal count
        count += 1
        if count == n:
            os.kill(os.getpid(), signal.SIGKILL)

    if kind == "rename":
        (glob,) = where
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if fnmatch.fnmatch(os.path.basename(os.fspath(dst)), glob):
                tick()
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    elif kind == "call":
        module, attr = where
        owner = importlib.import_module(module)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        real = getattr(owner, name)

        @functools.wraps(real)
        def wrapper(*args, **kwargs):
            out = real(*args, **kwargs)
            tick()
            return out

        setattr(owner, name, wrapper)
    else:
        raise SystemExit(f"killpoint: unknown spec {spec!r} (rename:GLOB:N | call:MODULE:ATTR:N)")


if __name__ == "__main__":
    spec, module, *args = sys.argv[1:]
    install(spec)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
