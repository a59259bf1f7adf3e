"""The command-line shape every stage shares: ``--cfg`` (config slice as JSON) + logging."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def stage_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument(
        "--cfg",
        default="",
        help="this stage's config slice: inline JSON or @file.json/@file.yaml "
        "(the Snakemake rules pass it; keys as in config.yaml)",
    )
    p.add_argument("--log-level", default=os.environ.get("R2R_LOG_LEVEL", "INFO"))
    return p


def setup_logging(level: str = "INFO") -> logging.Logger:
    logging.basicConfig(
        level=getattr(logging, str(level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return logging.getLogger("recall2reason")


# Where torch.compile (inductor) and Triton keep compiled kernels and autotune winners (FLA caches
# its autotuning there). Pointing every GPU job of a study at one folder under the results dir means
# only the first job of each shape compiles and autotunes; the rest, and every retry on a cluster
# node, read the cache. A variable the user set wins.
COMPILE_CACHE_VARS = {"TRITON_CACHE_DIR": "triton", "TORCHINDUCTOR_CACHE_DIR": "inductor"}


def add_compile_cache_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile-cache", default=None,
                   help="folder for the inductor / Triton caches shared by the study's GPU jobs "
                        "(results/.cache/compile); TRITON_CACHE_DIR / TORCHINDUCTOR_CACHE_DIR set in the environment win")


def use_compile_cache(folder: str | os.PathLike | None) -> None:
    """Point the compile caches at ``folder`` unless the environment already names them; call
    before torch.compile or Triton first runs."""
    if not folder:
        return
    for var, sub in COMPILE_CACHE_VARS.items():
        if not os.environ.get(var):
            path = os.path.join(os.path.abspath(folder), sub)
            os.makedirs(path, exist_ok=True)
            os.environ[var] = path
