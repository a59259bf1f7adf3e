"""How many completions yield no answer, per model and eval set (``tables/extraction.{csv,md}``).

Read from the vote stage's ``vote/<model>/<dataset>.problems.jsonl`` (``n``, ``no_answer``,
``no_ending`` per problem). A completion without an answer counts as wrong in every accuracy
curve, so a model whose share differs from the others' has a curve moved by extraction, not only
by reasoning. "No ending" means the completion never states an answer (no ``\\boxed{}``,
``The answer is`` or ``####``: often cut at the length limit); "unreadable" that its last ending
states one the extractor will not guess at.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from recall2reason.common import formats
from recall2reason.common.io import atomic_write
from recall2reason.report.config import ModelInfo
from recall2reason.report.inputs import InputError, model_of, read_rows

SUFFIX = ".problems.jsonl"


@dataclass
class NoAnswerCounts:
    problems: int
    completions: int
    no_answer: int
    no_ending: int

    @property
    def unreadable(self) -> int:
        return self.no_answer - self.no_ending

    def pct(self, n: int) -> float:
        return 100.0 * n / self.completions


def count_no_answers(path: str | os.PathLike) -> NoAnswerCounts:
    rows = read_rows(path, formats.VOTE_PROBLEMS)
    if not rows:
        raise InputError(f"{path}: no problems")
    total = NoAnswerCounts(0, 0, 0, 0)
    for lineno, row in rows:
        try:
            n, none, no_ending = int(row["n"]), int(row["no_answer"]), int(row["no_ending"])
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}:{lineno}: needs integer n, no_answer and no_ending ({e})") from None
        if not 0 <= no_ending <= none <= n:
            raise InputError(f"{path}:{lineno}: expected 0 <= no_ending <= no_answer <= n, got {no_ending}, {none}, {n}")
        total.problems += 1
        total.completions += n
        total.no_answer += none
        total.no_ending += no_ending
    return total


def dataset_of(path: str | os.PathLike) -> str:
    name = Path(path).name
    if not name.endswith(SUFFIX):
        raise InputError(f"{path}: expected vote/<model>/<dataset>{SUFFIX}")
    return name[: -len(SUFFIX)]


def read_all(paths: list[str]) -> dict[tuple[str, str], NoAnswerCounts]:
    """{(model, dataset): counts} for vote/<model>/<dataset>.problems.jsonl files."""
    out = {}
    for p in paths:
        key = (model_of(p, 1), dataset_of(p))
        if key in out:
            raise InputError(f"--problems: two files for model {key[0]!r} and eval set {key[1]!r}")
        out[key] = count_no_answers(p)
    return out


def to_csv(models: list[ModelInfo], datasets: list[str], counts: dict[tuple[str, str], NoAnswerCounts]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "dataset", "problems", "completions", "no_answer", "no_answer_pct", "no_ending", "unreadable"])
    for m in models:
        for d in datasets:
            if (c := counts.get((m.name, d))) is not None:
                w.writerow([m.name, d, c.problems, c.completions, c.no_answer, f"{c.pct(c.no_answer):.2f}",
                            c.no_ending, c.unreadable])  # fmt: skip
    return buf.getvalue()


def to_markdown(models: list[ModelInfo], datasets: list[str], counts: dict[tuple[str, str], NoAnswerCounts]) -> str:
    out = [
        "**Completions without an answer** (% of each model's completions; they count as wrong). "
        "No ending: never states an answer; unreadable: states one the extractor does not guess at.",
        "",
        "| model | " + " | ".join(f"{d} no answer | {d} no ending | {d} unreadable" for d in datasets) + " |",
        "|:--|" + "--:|" * (3 * len(datasets)),
    ]
    for m in models:
        cells = []
        for d in datasets:
            c = counts.get((m.name, d))
            cells += ["-"] * 3 if c is None else [f"{c.pct(n):.1f}" for n in (c.no_answer, c.no_ending, c.unreadable)]
        out.append(f"| {m.label} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def write_extraction_table(
    models: list[ModelInfo], counts: dict[tuple[str, str], NoAnswerCounts], out_csv: str | None, out_md: str | None
) -> None:
    datasets = sorted({d for _, d in counts})
    for path, text in ((out_csv, to_csv(models, datasets, counts)), (out_md, to_markdown(models, datasets, counts))):
        if path is not None:
            with atomic_write(path) as f:
                f.write(text)
