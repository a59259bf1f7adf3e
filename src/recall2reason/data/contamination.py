"""Contamination report: eval problems with a near-duplicate in the training sources.

OpenMathInstruct-2 is synthesised from GSM8K and MATH *train* problems and MetaMathQA
rewrites them, so some eval problems may have close copies in pretraining. An eval
problem counts as contaminated by a source when one of its word 13-grams (lower-cased
alphanumeric words, the GPT-3 style test) occurs in any document of that source
(problem + solution). Problems shorter than n words must occur whole.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path
from typing import Iterable

from recall2reason.common import InputFileError, atomic_write, formats, jsonl_lines
from recall2reason.data.pack import _batches, _bounded_map
from recall2reason.data.sources import DataConfig, document_text, iter_records, parse_record

log = logging.getLogger("recall2reason.data")
_WORD = re.compile(r"[a-z0-9]+")
COLUMNS = ["eval_set", "source", "n_problems", "n_contaminated", "frac_contaminated", "n_train_docs", "ngram", "example_ids"]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def grams(ws: list[str], n: int) -> set[str]:
    if len(ws) < n:
        return set()
    return {" ".join(ws[i : i + n]) for i in range(len(ws) - n + 1)}


class EvalIndex:
    """n-grams of every eval problem -> the problems that contain them."""

    def __init__(self, problems: dict[str, list[tuple[str, str]]], n: int = 13):
        self.n = n
        self.owner: dict[str, set[tuple[str, str]]] = {}
        self.lengths: set[int] = set()  # gram lengths to look for in training text
        for eval_set, rows in problems.items():
            for pid, question in rows:
                ws = words(question)
                k = min(n, len(ws))
                if k == 0:
                    continue
                self.lengths.add(k)
                for g in grams(ws, k):
                    self.owner.setdefault(g, set()).add((eval_set, pid))

    def hits(self, text: str) -> set[tuple[str, str]]:
        ws = words(text)
        found: set[tuple[str, str]] = set()
        for k in self.lengths:
            for g in grams(ws, k):
                if g in self.owner:
                    found |= self.owner[g]
        return found


_IDX: dict = {}


def _init(index: EvalIndex, fmt: str, where: str) -> None:
    _IDX.update(index=index, fmt=fmt, where=where)


def _scan(recs: list) -> set:
    idx: EvalIndex = _IDX["index"]
    found: set = set()
    for r in recs:
        found |= idx.hits(document_text(_IDX["fmt"], parse_record(r), _IDX["where"]))
    return found


def contamination_report(
    cfg: DataConfig, eval_files: Iterable[str | Path], out_csv: str | Path, n: int = 13, workers: int = 1
) -> list[dict]:
    from tqdm import tqdm

    problems = {}
    for f in eval_files:
        f = Path(f)
        problems[f.stem] = []
        for lineno, r in jsonl_lines(f, formats.EVAL_SET):
            if "id" not in r or "question" not in r:
                raise InputFileError(f"{f}:{lineno}: row lacks id or question; expected {formats.EVAL_SET}")
            problems[f.stem].append((r["id"], r["question"]))
    index = EvalIndex(problems, n)
    rows, union = [], {e: set() for e in problems}
    for name, src in cfg.sources.items():
        found: set = set()
        n_docs = 0
        records = iter_records(name, src, cfg.seed, raw=True)
        with tqdm(desc=f"contamination {name}", unit="doc", unit_scale=True) as bar:
            for hit, k in _bounded_map(_scan, _batches(records, 512), workers, (index, src.format, f"data.sources.{name}"), _init):
                found |= hit
                n_docs += k
                bar.update(k)
        for e, rows_e in problems.items():
            ids = sorted(pid for (es, pid) in found if es == e)
            union[e].update(ids)
            rows.append(_row(e, name, len(rows_e), ids, n_docs, n))
    for e, rows_e in problems.items():
        rows.append(_row(e, "all", len(rows_e), sorted(union[e]), None, n))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    with atomic_write(out_csv) as f:
        f.write(buf.getvalue())
    for r in rows:
        log.info("%s vs %s: %d / %d problems with a %d-gram match", r["eval_set"], r["source"], r["n_contaminated"], r["n_problems"], n)
    return rows


def _row(eval_set: str, source: str, n_problems: int, ids: list[str], n_docs: int | None, n: int) -> dict:
    return {
        "eval_set": eval_set, "source": source, "n_problems": n_problems, "n_contaminated": len(ids),
        "frac_contaminated": round(len(ids) / n_problems, 6) if n_problems else 0.0,
        "n_train_docs": n_docs if n_docs is not None else "", "ngram": n, "example_ids": " ".join(ids[:5]),
    }
