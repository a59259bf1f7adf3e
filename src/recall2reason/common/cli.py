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
