"""Helpers shared by every stage: atomic file writes, strict typed configs, CLI + logging."""

from recall2reason.common.cfg import ConfigError, from_dict, load_cfg_arg, to_dict
from recall2reason.common.io import (
    InputFileError,
    atomic_write,
    jsonl_lines,
    read_json,
    read_jsonl,
    sha256_file,
    sha256_files,
    write_json,
    write_jsonl,
)

__all__ = [
    "ConfigError",
    "InputFileError",
    "atomic_write",
    "from_dict",
    "jsonl_lines",
    "load_cfg_arg",
    "read_json",
    "read_jsonl",
    "sha256_file",
    "sha256_files",
    "to_dict",
    "write_json",
    "write_jsonl",
]
