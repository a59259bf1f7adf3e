"""Training sources: where records come from and how each schema becomes one document.

A source is read from a local jsonl / parquet file in the Hub schema (``path``), from the
Hub through ``datasets`` (``hub_id``, streamed by default), or generated in-process
(``synthetic_*``). Each format maps its fields to (problem, solution); the document text
is :func:`recall2reason.data.template.format_document` of that pair.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal

from recall2reason.common import ConfigError
from recall2reason.common.io import parse_json_line, read_jsonl
from recall2reason.data import synthetic
from recall2reason.data.template import format_document

log = logging.getLogger("recall2reason.data")

SourceFormat = Literal["openmathinstruct2", "metamathqa", "gsm8k", "math", "synthetic_gsm8k", "synthetic_math"]

# format -> (problem field, solution field), in the upstream schema.
FIELDS: dict[str, tuple[str, str]] = {
    "openmathinstruct2": ("problem", "generated_solution"),  # + expected_answer, problem_source
    "metamathqa": ("query", "response"),                      # + type, original_question
    "gsm8k": ("question", "answer"),
    "math": ("problem", "solution"),
    "synthetic_gsm8k": ("question", "answer"),
    "synthetic_math": ("problem", "solution"),
}


@dataclass
class SourceConfig:
    format: SourceFormat
    hub_id: str | None = None
    hub_config: str | None = None
    split: str = "train"
    path: str | None = None        # local jsonl / parquet in the Hub schema (wins over hub_id)
    weight: float = 1.0            # share of each epoch's tokens (mixing by tokens)
    n_docs: int | None = None      # synthetic: documents to generate; others: read at most this many
    streaming: bool = True         # Hub: stream instead of downloading the whole split first


@dataclass
class DataConfig:
    sources: dict[str, SourceConfig]
    seq_len: int = 2048
    epochs: float = 4.0
    seed: int = 1234
    shard_tokens: int = 134_217_728  # 2^27 tokens = 256 MiB of uint16 per shard file

    def __post_init__(self):
        if not self.sources:
            raise ConfigError("data.sources: at least one source is required")
        for name, s in self.sources.items():
            if s.weight <= 0:
                raise ConfigError(f"data.sources.{name}.weight must be > 0, got {s.weight}")
            if s.format.startswith("synthetic") and not s.n_docs:
                raise ConfigError(f"data.sources.{name}.n_docs is required for format {s.format}")
            if not s.format.startswith("synthetic") and not (s.path or s.hub_id):
                raise ConfigError(f"data.sources.{name}: set path (local file) or hub_id")
        if self.seq_len < 1 or self.shard_tokens < 1 or self.epochs <= 0:
            raise ConfigError("data.seq_len, data.shard_tokens and data.epochs must be positive")


def document_text(fmt: str, rec: dict, where: str = "") -> str:
    """The training document text of one record (without EOS)."""
    pf, sf = FIELDS[fmt]
    try:
        problem, solution = rec[pf], rec[sf]
    except KeyError as e:
        raise ConfigError(
            f"{where or fmt}: record has no field {e.args[0]!r} (format {fmt} needs {pf!r}, {sf!r}; got {sorted(rec)})"
        ) from None
    if not isinstance(problem, str) or not isinstance(solution, str):
        raise ConfigError(f"{where or fmt}: fields {pf!r}/{sf!r} must be strings")
    return format_document(problem, solution)


def iter_records(name: str, src: SourceConfig, seed: int, raw: bool = False, start: int = 0) -> Iterator[Any]:
    """Records of a source from index ``start`` on, in order (at most ``n_docs`` in all).

    With ``raw`` a local jsonl yields its lines unparsed, as (``file:line``, bytes) pairs
    (workers parse them with :func:`parse_record`, keeping the reading process light, and name
    the line of a malformed record); everything else yields dicts.
    """
    limit = src.n_docs
    if src.format.startswith("synthetic"):
        style = src.format.removeprefix("synthetic_")
        # One seed per source name so two synthetic sources never repeat each other.
        yield from synthetic.generate(style, limit, seed=_name_seed(seed, name), stream="train", start=start)
        return
    it = _iter_path(src.path, raw) if src.path else _iter_hub(src)
    for i, rec in enumerate(it):
        if limit is not None and i >= limit:
            return
        if i >= start:
            yield rec


RECORD_EXPECT = "one training record per line: a JSON object in the source's Hub schema (data.sources.<name>.format)"


def parse_record(rec: Any) -> dict:
    """A record as a dict; raw records are (``file:line``, the line) pairs from a local jsonl,
    or a bare JSON line."""
    if isinstance(rec, tuple):
        where, line = rec
        return parse_json_line(line, where, RECORD_EXPECT, torn=not line.endswith(b"\n"))
    if isinstance(rec, (str, bytes)):
        return parse_json_line(rec, "a training record", RECORD_EXPECT)
    return rec


def _name_seed(seed: int, name: str) -> int:
    import zlib

    return seed * 1_000_003 + zlib.crc32(name.encode())


def _iter_path(path: str, raw: bool) -> Iterator[Any]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"source file not found: {p}")
    files = sorted(x for x in p.iterdir() if x.suffix in (".jsonl", ".parquet")) if p.is_dir() else [p]
    for f in files:
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=4096):
                yield from batch.to_pylist()
        elif f.suffix in (".jsonl", ".json"):
            if not raw:
                yield from read_jsonl(f, RECORD_EXPECT)
                continue
            with open(f, "rb") as fh:
                for lineno, line in enumerate(fh, 1):
                    if line.strip():
                        yield f"{f}:{lineno}", line
        else:
            raise ConfigError(f"source file {f}: expected .jsonl or .parquet")


def _iter_hub(src: SourceConfig) -> Iterator[dict]:
    import datasets  # network unless cached; never used by tests

    log.info("loading %s (config %s, split %s, streaming %s) from the Hub", src.hub_id, src.hub_config, src.split, src.streaming)
    ds = datasets.load_dataset(src.hub_id, src.hub_config, split=src.split, streaming=src.streaming)
    yield from ds


def source_fingerprint(name: str, src: SourceConfig) -> dict:
    """What identifies a source's content for resume checks (file sizes / mtimes, Hub ids)."""
    fp: dict[str, Any] = {"name": name, **{k: v for k, v in src.__dict__.items() if k != "weight"}}
    if src.path and os.path.exists(src.path):
        p = Path(src.path)
        files = sorted(p.iterdir()) if p.is_dir() else [p]
        fp["files"] = [[f.name, f.stat().st_size, int(f.stat().st_mtime)] for f in files]
    return fp
