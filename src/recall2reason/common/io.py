"""Atomic, crash-safe file output, and strict readers of the files the stages hand on.

Every stage writes its outputs through :func:`atomic_write`: data goes to a temporary
file in the same directory, is flushed and fsync'ed, then renamed over the target.
A killed job therefore leaves either the old file or the new one, never half a file.
The readers (:func:`read_json`, :func:`read_jsonl`) raise :class:`InputFileError` naming the
file and line of anything malformed, so a damaged input stops a stage with a one-line message.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

log = logging.getLogger("recall2reason")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=indent, sort_keys=False, default=_json_default)
        f.write("\n")


class InputFileError(ValueError):
    """An input file is empty, truncated, malformed or not what its checksum says; the message
    names the file (and the line), what was expected there and, where one helps, what to rerun."""


def read_json(path: str | os.PathLike, expect: str = "a JSON document") -> Any:
    """The JSON document in ``path``; an empty or malformed file raises :class:`InputFileError`."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.strip():
        raise InputFileError(f"{path}: the file is empty; expected {expect}")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputFileError(f"{path}: not UTF-8 text (byte {e.start}); expected {expect}") from None
    except json.JSONDecodeError as e:
        raise InputFileError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno}); expected {expect}") from None


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write rows as JSON lines atomically; returns the number of rows."""
    n = 0
    with atomic_write(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=_json_default))
            f.write("\n")
            n += 1
    return n


def read_jsonl(path: str | os.PathLike, expect: str = "one JSON object per line", resumable: bool = False) -> Iterator[dict]:
    """Yield the objects of a JSON-lines file (see :func:`jsonl_lines`)."""
    for _, row in jsonl_lines(path, expect, resumable):
        yield row


def jsonl_lines(path: str | os.PathLike, expect: str = "one JSON object per line", resumable: bool = False) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) of a JSON-lines file, skipping blank lines.

    A line that is not UTF-8, not JSON or not an object raises :class:`InputFileError` naming
    ``path:line`` and ``expect``. A last line without its newline was cut short: an error (a
    truncated file) unless it still parses, as a hand-made file's last line may. ``resumable``:
    the file is the append-only log of a resumable job, whose last line a kill may tear; that
    line is skipped, with a warning.
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            torn = not raw.endswith(b"\n")
            if torn and resumable:
                log.warning("%s:%d: skipping the torn last line of an interrupted append (%d bytes)", path, lineno, len(raw))
                return
            if raw.strip():
                yield lineno, parse_json_line(raw, f"{path}:{lineno}", expect, torn)


def parse_json_line(raw: str | bytes, where: str, expect: str, torn: bool = False) -> dict:
    """One JSON-lines record; errors name ``where`` (``file:line``) and what was expected."""
    try:
        row = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except UnicodeDecodeError as e:
        problem = f"not UTF-8 text (byte {e.start})"
    except json.JSONDecodeError as e:
        problem = f"not valid JSON ({e.msg}, column {e.colno})"
    else:
        if isinstance(row, dict):
            return row
        problem = f"a JSON {type(row).__name__}, not an object"
    if torn:
        problem += "; the file ends in the middle of this line (truncated?)"
    raise InputFileError(f"{where}: {problem}; expected {expect}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_files(paths: Iterable[str | os.PathLike], threads: int = 8) -> list[str]:
    """sha256 of each file, hashed in parallel (hashlib releases the GIL on large blocks)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(sha256_file, paths))


def _json_default(obj: Any) -> Any:
    # numpy scalars and paths show up in stage outputs; keep json.dump simple for callers.
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
