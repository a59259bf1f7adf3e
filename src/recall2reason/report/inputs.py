"""Reading the earlier stages' outputs, with errors that name the offending file."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from recall2reason.common.io import InputFileError, jsonl_lines, read_json

CURVE_COLUMNS = [
    "k", "maj_exact", "maj_exact_lo", "maj_exact_hi", "maj_first", "maj_first_lo", "maj_first_hi",
    "pass_k", "pass_k_lo", "pass_k_hi",
]


class InputError(InputFileError):
    """An input file is missing, malformed or inconsistent; the message names the file."""


def read_curves(path: str | os.PathLike) -> pd.DataFrame:
    """vote/<model>/<dataset>.curves.csv, sorted by k, accuracies checked to lie in [0, 1]."""
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read majority-vote curves: {e}") from e
    missing = [c for c in CURVE_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; expected {CURVE_COLUMNS}")
    if df.empty:
        raise InputError(f"{path}: no rows")
    acc = df[CURVE_COLUMNS[1:]]
    if acc.isna().any().any() or ((acc < 0) | (acc > 1)).any().any():
        raise InputError(f"{path}: accuracies must be numbers in [0, 1]")
    if df["k"].duplicated().any() or (df["k"] < 1).any():
        raise InputError(f"{path}: column k must hold distinct sample counts >= 1")
    return df.sort_values("k").reset_index(drop=True)


def read_rows(path: str | os.PathLike, expect: str) -> list[tuple[int, dict]]:
    """(line number, row) of every row of a JSON-lines file; a bad line is an error naming file:line."""
    try:
        return list(jsonl_lines(path, expect))
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e}") from e


def read_json_file(path: str | os.PathLike, what: str, keys: list[str]) -> dict:
    try:
        obj = read_json(path, f"the {what}, a JSON object with keys {keys}")
    except OSError as e:
        raise InputError(f"{path}: cannot read the {what}: {e}") from e
    if not isinstance(obj, dict):
        raise InputError(f"{path}: the {what} must be a JSON object")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise InputError(f"{path}: the {what} lacks key(s) {missing}")
    return obj


def per_model(paths: list[str], arg: str, names: list[str] | None = None, depth: int = 1) -> dict[str, str]:
    """{model: path} for one-file-per-model inputs; the model is ``--names`` or the path's
    ``depth``-th parent directory (docs/design.md: ``judge/<model>/<dataset>.jsonl``)."""
    if names is not None and len(names) != len(paths):
        raise InputError(f"--{arg} got {len(paths)} files for {len(names)} --names ({' '.join(names)})")
    models = names if names is not None else [model_of(p, depth) for p in paths]
    out: dict[str, str] = {}
    for m, p in zip(models, paths):
        if m in out:
            raise InputError(f"--{arg}: two files for model {m!r}: {out[m]} and {p}")
        out[m] = p
    return out


def grouped(paths: list[str], depth: int) -> dict[str, list[str]]:
    """{model: [paths]} for many-files-per-model inputs (``samples/<model>/<dataset>/part-*``)."""
    out: dict[str, list[str]] = {}
    for p in paths:
        out.setdefault(model_of(p, depth), []).append(p)
    return out


def model_of(path: str | os.PathLike, depth: int) -> str:
    parts = Path(path).parts
    if len(parts) < depth + 1:
        raise InputError(f"{path}: cannot tell the model from the path (expected .../<model>/{'*/' * (depth - 1)}file)")
    return parts[-1 - depth]


def exists(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    return p
