"""Recall probes against reasoning across the study's models.

Per model: the recall accuracy of its probes (``probes/<model>.summary.csv``), the Key-Value
Binding share of its judged GSM8K errors (as in Figure 3, right) and its majority-vote accuracy
at the largest N (the end of Figure 2's curve). Across models: Spearman's rank correlation of
recall accuracy with each, and a percentile bootstrap interval that resamples models.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recall2reason.common.io import atomic_write
from recall2reason.probe.config import KINDS
from recall2reason.probe.score import ALL, SUMMARY_COLUMNS
from recall2reason.report.config import ModelInfo
from recall2reason.report.inputs import InputError, exists
from recall2reason.report.tables import TOTAL, ErrorCounts, _tex

KV = "Key-Value Binding Error"
SUMMARY_SUFFIX = ".summary.csv"
TARGETS = {"kv_share": "Key-Value Binding share of GSM8K errors", "maj": "GSM8K majority-vote accuracy"}


def probe_model(path: str | os.PathLike) -> str:
    """The model of ``probes/<model>.summary.csv``."""
    name = Path(path).name
    if not name.endswith(SUMMARY_SUFFIX):
        raise InputError(f"{path}: a probe summary is named <model>{SUMMARY_SUFFIX}")
    return name.removesuffix(SUMMARY_SUFFIX)


def read_probe_summary(path: str | os.PathLike) -> list[dict]:
    """The rows of a probe summary: ``k`` an int or ``all``, ``distance`` a float or ``all``,
    accuracies checked to lie in [0, 1]."""
    try:
        with open(exists(path), newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in SUMMARY_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputError(f"{path}: missing column(s) {missing}; expected {list(SUMMARY_COLUMNS)}")
            rows = []
            for lineno, r in enumerate(reader, 2):
                try:
                    row = {
                        "kind": r["kind"], "k": r["k"] if r["k"] == ALL else int(r["k"]),
                        "distance": r["distance"] if r["distance"] == ALL else float(r["distance"]),
                        "n": int(r["n"]), **{c: float(r[c]) for c in ("accuracy", "lo", "hi")},
                    }
                except ValueError as e:
                    raise InputError(f"{path}:{lineno}: {e}") from None
                if not all(0.0 <= row[c] <= 1.0 for c in ("accuracy", "lo", "hi")):
                    raise InputError(f"{path}:{lineno}: accuracy and its interval must lie in [0, 1]")
                rows.append(row)
    except OSError as e:
        raise InputError(f"{path}: cannot read the probe summary: {e}") from e
    if not any(r["kind"] == r["k"] == r["distance"] == ALL for r in rows):
        raise InputError(f"{path}: no overall row (kind, k and distance all '{ALL}')")
    return rows


def pooled(rows: list[dict], kind: str = ALL, k: int | str = ALL) -> dict:
    """The summary row of (kind, k) pooled over distances."""
    for r in rows:
        if r["kind"] == kind and r["k"] == k and r["distance"] == ALL:
            return r
    raise KeyError((kind, k))


def accuracy_vs_k(rows: list[dict], kind: str) -> list[dict]:
    """Rows of one kind, one per k (pooled over distances), by k."""
    return sorted((r for r in rows if r["kind"] == kind and r["k"] != ALL and r["distance"] == ALL), key=lambda r: r["k"])


# -- rank correlation ----------------------------------------------------------------------


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing the mean of the ranks they span."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks; NaN when x or y is constant."""
    rx, ry = average_ranks(x), average_ranks(y)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denom if denom > 0 else math.nan


def bootstrap_spearman(x, y, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float, int]:
    """Percentile interval of rho over ``n_boot`` resamples of the (x, y) pairs with replacement.

    A resample whose x or y is constant has no rho and is left out; returns (lo, hi, resamples
    with a rho), with NaN bounds when fewer than half of them have one."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 3 or n_boot == 0:
        return math.nan, math.nan, 0
    rng = np.random.default_rng(seed)
    rhos = []
    for idx in rng.integers(0, n, size=(n_boot, n)):
        rho = spearman(x[idx], y[idx])
        if not math.isnan(rho):
            rhos.append(rho)
    if len(rhos) < n_boot / 2:
        return math.nan, math.nan, len(rhos)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(rhos, [alpha, 1 - alpha])
    return float(lo), float(hi), len(rhos)


# -- one point per model -------------------------------------------------------------------


@dataclass
class RecallPoint:
    model: ModelInfo
    recall: float  # accuracy over every probe
    per_kind: dict[str, float]
    kv_share: float  # KV-binding errors / all errors of the judged GSM8K generations (NaN: no errors)
    maj: float  # majority-vote accuracy at the largest N


def recall_points(
    models: list[ModelInfo], summaries: dict[str, list[dict]], counts: dict[str, ErrorCounts], maj: dict[str, float]
) -> list[RecallPoint]:
    points = []
    for m in models:
        rows = summaries[m.name]
        kinds = [kind for kind in KINDS if any(r["kind"] == kind for r in rows)]
        means = counts[m.name].means
        share = means[KV] / means[TOTAL] if means[TOTAL] > 0 else math.nan
        points.append(RecallPoint(m, pooled(rows)["accuracy"], {kind: pooled(rows, kind)["accuracy"] for kind in kinds},
                                  share, maj[m.name]))
    return points


def correlations(points: list[RecallPoint], n_boot: int, seed: int) -> list[dict]:
    """Spearman's rho of recall accuracy with each target, over the models that have both."""
    out = []
    for target in TARGETS:
        pts = [p for p in points if not math.isnan(getattr(p, target))]
        x, y = [p.recall for p in pts], [getattr(p, target) for p in pts]
        rho = spearman(x, y) if len(pts) >= 3 else math.nan
        lo, hi, defined = bootstrap_spearman(x, y, n_boot, seed)
        out.append({"target": target, "n_models": len(pts), "spearman": rho, "lo": lo, "hi": hi,
                    "n_boot": n_boot, "n_defined": defined})
    return out


def describe(c: dict, rho: str = "rho") -> str:
    """``Spearman rho = -0.71, 95 % CI [-0.93, -0.25], 13 models`` (or why there is none)."""
    if math.isnan(c["spearman"]):
        return f"no rank correlation ({c['n_models']} models; it needs 3 with distinct values)"
    ci = "no interval" if math.isnan(c["lo"]) else f"95 % CI [{c['lo']:.2f}, {c['hi']:.2f}]"
    return f"Spearman {rho} = {c['spearman']:.2f}, {ci}, {c['n_models']} models"


# -- the table -----------------------------------------------------------------------------


def table_columns(points: list[RecallPoint]) -> list[str]:
    kinds = [k for k in KINDS if any(k in p.per_kind for p in points)]
    return [*kinds, "recall", "kv_share", "maj"]


def _cells(p: RecallPoint, columns: list[str]) -> list[float]:
    return [p.per_kind.get(c, math.nan) if c in KINDS else getattr(p, c) for c in columns]


def write_recall_table(
    points: list[RecallPoint], corr: list[dict], maj_label: str,
    out_csv: str | None, out_md: str | None, out_tex: str | None, out_correlation: str | None,
) -> None:
    columns = table_columns(points)
    heads = [c if c in KINDS else {"recall": "all probes", "kv_share": "KV share of errors", "maj": maj_label}[c] for c in columns]
    note = "Recall accuracy per probe kind and over all probes; " + "; ".join(
        f"vs {TARGETS[c['target']].replace('majority-vote accuracy', maj_label)}: {describe(c)}" for c in corr
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "class", "attention_pct", *columns])
    for p in points:
        w.writerow([p.model.name, p.model.mixer_class, f"{p.model.attention_pct:.1f}", *[f"{v:.4f}" for v in _cells(p, columns)]])
    md = [f"**Recall probes vs reasoning.** {note}.", "", "| | " + " | ".join(heads) + " |", "|:--|" + "--:|" * len(heads)]
    md += [f"| {p.model.label} | " + " | ".join(_pct(v) for v in _cells(p, columns)) + " |" for p in points]
    tex = [
        r"\begin{table}[t]", r"\centering", rf"\caption{{Recall probes vs reasoning. {_tex(note)}.}}",
        r"\label{tab:recall}", r"\begin{tabular}{l" + "r" * len(heads) + "}", r"\toprule",
        " & ".join(["", *map(_tex, heads)]) + r" \\", r"\midrule",
        *[" & ".join([_tex(p.model.label), *(_tex(_pct(v)) for v in _cells(p, columns))]) + r" \\" for p in points],
        r"\bottomrule", r"\end{tabular}", r"\end{table}",
    ]
    cbuf = io.StringIO()
    cw = csv.DictWriter(cbuf, fieldnames=list(corr[0]), lineterminator="\n")
    cw.writeheader()
    cw.writerows({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in c.items()} for c in corr)
    for path, text in ((out_csv, buf.getvalue()), (out_md, "\n".join(md) + "\n"), (out_tex, "\n".join(tex) + "\n"),
                       (out_correlation, cbuf.getvalue())):
        if path is not None:
            with atomic_write(path) as f:
                f.write(text)


def _pct(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{100 * v:.1f} %"
