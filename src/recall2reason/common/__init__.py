"""Helpers shared by every stage: atomic file writes, strict typed configs, CLI + logging."""

from recall2reason.common.cfg import ConfigError, from_dict, load_cfg_arg, to_dict
from recall2reason.common.io import (
    atomic_write,
    read_json,
    read_jsonl,
    sha256_file,
    write_json,
    write_jsonl,
)

__all__ = [
    "ConfigError",
    "atomic_write",
    "from_dict",
    "load_cfg_arg",
    "read_json",
    "read_jsonl",
    "sha256_file",
    "to_dict",
    "write_json",
    "write_jsonl",
]
