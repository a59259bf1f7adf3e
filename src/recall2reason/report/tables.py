"""Tables 1 and 7: the judge's error categories per model, written as CSV, Markdown and LaTeX.

A cell is the number of completions in a category *for one generation index*, averaged over
the judged indices (the first ``judge.first_k`` = 8 samples per problem): the paper's
"average across 8 generations per problem". Rows are the 8 categories under their 3 groups
(paper order, ``recall2reason.judge.categories``); the largest category per column is marked.
Extra rows (never marked): total errors, No Error, judge failures, and how often the judge's
correct/incorrect verdict disagrees with math-verify.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass

from recall2reason.common import formats
from recall2reason.common.io import atomic_write
from recall2reason.judge.categories import CATEGORIES, GROUPS, JUDGE_ERROR_GROUP, NO_ERROR
from recall2reason.report.config import ModelInfo
from recall2reason.report.inputs import InputError, read_rows

TOTAL = "Total errors"
JUDGE_ERROR = "Judge error"
DISAGREE = "Judge vs math-verify disagreements"
EXTRA_ROWS = (TOTAL, NO_ERROR, JUDGE_ERROR, DISAGREE)

TABLES = {
    "table1": ("gsm8k", "Error category decomposition of model responses on GSM8K"),
    "table7": ("math500", "Error category decomposition of model responses on MATH500"),
}


@dataclass
class ErrorCounts:
    """Per-generation-index mean count of every row label for one model on one eval set."""

    means: dict[str, float]
    n_indices: int  # distinct judged sample indices
    n_problems: int
    n_rows: int


def count_errors(path: str | os.PathLike) -> ErrorCounts:
    """Read judge/<model>/<dataset>.jsonl and average category counts over generation indices."""
    rows = read_rows(path, formats.JUDGEMENTS)
    if not rows:
        raise InputError(f"{path}: no judged completions (empty file?)")
    counts: Counter[str] = Counter()
    seen: set[tuple] = set()
    indices, problems = set(), set()
    for lineno, row in rows:
        try:
            key = (row["problem_id"], row["sample_idx"])
            group, cat = row["error_group"], row["error_category"]
        except KeyError as e:
            raise InputError(f"{path}:{lineno}: row lacks key {e.args[0]!r}") from None
        if key in seen:  # would count one completion twice
            raise InputError(f"{path}:{lineno}: row repeats problem {key[0]!r} sample {key[1]!r}")
        seen.add(key)
        problems.add(key[0])
        indices.add(key[1])
        if group == JUDGE_ERROR_GROUP:
            counts[JUDGE_ERROR] += 1
        elif cat == NO_ERROR or cat in CATEGORIES:
            counts[cat] += 1
        else:
            raise InputError(
                f"{path}:{lineno}: row has unknown error_category {cat!r} (group {group!r}); "
                f"known: {list(CATEGORIES) + [NO_ERROR]}"
            )
        judged, verified = row.get("is_correct"), row.get("verify_correct")
        if isinstance(judged, bool) and isinstance(verified, bool) and judged != verified:
            counts[DISAGREE] += 1
    counts[TOTAL] = sum(counts[c] for c in CATEGORIES)
    n = len(indices)
    means = {label: counts[label] / n for label in (*CATEGORIES, *EXTRA_ROWS)}
    return ErrorCounts(means, n, len(problems), len(rows))


def build_table(models: list[ModelInfo], counts: dict[str, ErrorCounts]) -> list[dict]:
    """Rows ``{"group", "category", <model name>: mean, ...}`` in the paper's order."""
    rows = []
    for cat, g in CATEGORIES.items():
        rows.append({"group": GROUPS[g], "category": cat, **{m.name: counts[m.name].means[cat] for m in models}})
    for label in EXTRA_ROWS:
        rows.append({"group": "", "category": label, **{m.name: counts[m.name].means[label] for m in models}})
    return rows


def column_max(rows: list[dict], models: list[ModelInfo]) -> dict[str, float]:
    """Largest of the 8 category values per model (the marked cell; ties all marked)."""
    cat_rows = [r for r in rows if r["category"] in CATEGORIES]
    return {m.name: max(r[m.name] for r in cat_rows) for m in models}


def to_csv(rows: list[dict], models: list[ModelInfo]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["group", "category", *[m.name for m in models]])
    for r in rows:
        w.writerow([r["group"], r["category"], *[f"{r[m.name]:.4f}" for m in models]])
    return buf.getvalue()


def to_markdown(rows: list[dict], models: list[ModelInfo], title: str, note: str) -> str:
    best = column_max(rows, models)
    out = [f"**{title}.** {note}", "", "| | " + " | ".join(m.label for m in models) + " |"]
    out.append("|:--|" + "--:|" * len(models))
    group = None
    for r in rows:
        if r["group"] != group:
            group = r["group"]
            out.append(f"| ***{group or 'Totals and judge checks'}*** |" + " |" * len(models))
        cells = []
        for m in models:
            v = f"{r[m.name]:.2f}"
            cells.append(f"**{v}**" if r["category"] in CATEGORIES and r[m.name] == best[m.name] else v)
        out.append(f"| {r['category']} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _tex(s: str) -> str:
    return s.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%").replace("_", r"\_")


def to_latex(rows: list[dict], models: list[ModelInfo], title: str, note: str, label: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); wide tables are scaled to the text width."""
    best = column_max(rows, models)
    ncol = len(models) + 1
    out = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_tex(title)}. {_tex(note)}}}",
        rf"\label{{tab:{label}}}",
        r"\resizebox{\textwidth}{!}{%",
        r"\begin{tabular}{l" + "r" * len(models) + "}",
        r"\toprule",
        " & ".join(["", *[_tex(m.label) for m in models]]) + r" \\",
    ]
    group = None
    for r in rows:
        if r["group"] != group:
            group = r["group"]
            out.append(r"\midrule")
            if group:
                out.append(rf"\multicolumn{{{ncol}}}{{l}}{{\textit{{{_tex(group)}}}}} \\")
        cells = []
        for m in models:
            v = f"{r[m.name]:.2f}"
            cells.append(rf"\textbf{{{v}}}" if r["category"] in CATEGORIES and r[m.name] == best[m.name] else v)
        out.append(" & ".join([_tex(r["category"]), *cells]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}}", r"\end{table}"]
    return "\n".join(out) + "\n"


def write_table(
    which: str,
    models: list[ModelInfo],
    counts: dict[str, ErrorCounts],
    out_csv: str | None,
    out_md: str | None,
    out_tex: str | None,
) -> list[dict]:
    dataset, title = TABLES[which]
    rows = build_table(models, counts)
    idx = sorted({c.n_indices for c in counts.values()})
    probs = sorted({c.n_problems for c in counts.values()})
    note = (
        f"Completions per category for one generation index, averaged over the "
        f"{'/'.join(map(str, idx))} judged generations of each of {'/'.join(map(str, probs))} problems; "
        "the largest category per model is in bold"
    )
    for path, text in (
        (out_csv, to_csv(rows, models)),
        (out_md, to_markdown(rows, models, title, note)),
        (out_tex, to_latex(rows, models, title, note, which)),
    ):
        if path is not None:
            with atomic_write(path) as f:
                f.write(text)
    return rows
