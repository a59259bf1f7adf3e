"""The paper's figures: test-time scaling curves (Figs 2, 4, 5 and GPU-seconds) and error
decomposition vs attention share (Figs 3, 9). Pure drawing: data comes in already read."""

from __future__ import annotations

import logging
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

from recall2reason.probe.score import ALL
from recall2reason.report.config import ModelInfo
from recall2reason.report.recall import RecallPoint, accuracy_vs_k, describe
from recall2reason.report.style import TRANSFORMER_COLOR, class_color, class_label, model_color
from recall2reason.report.tables import TOTAL, ErrorCounts

log = logging.getLogger("recall2reason.report")
KV = "Key-Value Binding Error"


def _sci(x: float, _pos=None) -> str:
    """Log-axis label: 10^n, or m x 10^n for the 2 and 5 ticks."""
    if x <= 0:
        return ""
    e = math.floor(math.log10(x) + 1e-9)
    m = round(x / 10**e)
    return f"$10^{{{e}}}$" if m == 1 else f"${m}\\times10^{{{e}}}$"


def class_panels(models: list[ModelInfo]) -> list[tuple[str, list[ModelInfo]]]:
    """One panel per hybrid class, each with the Transformer(s) as reference."""
    ref = [m for m in models if m.mixer_class == "transformer"]
    classes = list(dict.fromkeys(m.mixer_class for m in models if m.mixer_class != "transformer"))
    if not classes:
        return [("Transformer", ref)]
    return [(class_label(c), ref + [m for m in models if m.mixer_class == c]) for c in classes]


def line_styles(members: list[ModelInfo]):
    """(model, colour, line style) of a panel's lines: hybrids solid, Transformers black, each
    with its own dash pattern when a panel holds several."""
    ref_seen = 0
    for m in members:
        ls = "-"
        if m.mixer_class == "transformer":
            ls = ("-", "--", ":", "-.")[ref_seen % 4]
            ref_seen += 1
        yield m, model_color(m), ls


def scaling_figure(
    models: list[ModelInfo],
    curves: dict[str, pd.DataFrame],
    metric: str,
    bands: bool,
    ylabel: str,
    x_per_sample: dict[str, float] | None = None,
    xlabel: str = "Samples per problem N (majority vote)",
):
    """Accuracy vs N (or vs N x a per-sample cost, e.g. FLOPs or GPU-seconds), a panel per class."""
    panels = class_panels(models)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(0.4 + 3.2 * len(panels), 3.1), sharey=True, sharex=x_per_sample is not None,
        squeeze=False, layout="constrained",
    )
    top = 0.0
    for ax, (title, members) in zip(axes[0], panels):
        for m, color, ls in line_styles(members):
            df = curves[m.name]
            k = df["k"].to_numpy(dtype=float)
            x = k * x_per_sample[m.name] if x_per_sample is not None else k
            y = 100 * df[metric].to_numpy()
            top = max(top, float(np.max(100 * df[f"{metric}_hi"])) if bands else float(np.max(y)))
            pow2 = [i for i, kk in enumerate(k) if kk >= 1 and math.log2(kk).is_integer()]
            ax.plot(x, y, ls, color=color, marker="o", markevery=pow2 or None, label=m.label, zorder=3)
            if bands:
                ax.fill_between(
                    x, 100 * df[f"{metric}_lo"], 100 * df[f"{metric}_hi"], color=color, alpha=0.15, lw=0, zorder=2
                )
        ax.set_xscale("log", base=2 if x_per_sample is None else 10)
        if x_per_sample is None:
            kmax = max(int(curves[m.name]["k"].max()) for m in members)
            ticks = [2**i for i in range(int(math.log2(kmax)) + 1)]
            ax.xaxis.set_major_locator(FixedLocator(ticks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([str(t) for t in ticks])
        else:  # cost axes span 1-2 decades: label 1, 2, 5 x 10^n, leave minor ticks unlabelled
            costs = [curves[m.name]["k"].to_numpy(dtype=float) * x_per_sample[m.name] for m in models]
            span = max(c.max() for c in costs) / min(c.min() for c in costs)
            subs = (1.0,) if span > 300 else (1.0, 2.0, 5.0)
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=30))
            ax.xaxis.set_major_formatter(FuncFormatter(_sci))
            ax.xaxis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10)))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(title if title == "Transformer" else f"{title} hybrids")
        ax.set_xlabel(xlabel)
        ax.legend(loc="best", handlelength=1.8)  # curves rise with N: let matplotlib find the empty corner
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].set_ylim(0, min(100, top * 1.08 + 1))
    return fig


def error_figure(models: list[ModelInfo], counts: dict[str, ErrorCounts], dataset_label: str):
    """Left: total and Key-Value Binding errors vs attention %; right: KV share of all errors.

    Each hybrid class is one line through its attention shares; the Transformer is its 100 %
    end point (as in the paper), drawn in every class's line.
    """
    ref = [m for m in models if m.mixer_class == "transformer"][:1]
    classes = list(dict.fromkeys(m.mixer_class for m in models if m.mixer_class != "transformer"))
    lines = {c: [m for m in models if m.mixer_class == c] + ref for c in classes} or {"transformer": ref}

    fig, (ax_n, ax_s) = plt.subplots(1, 2, figsize=(7.4, 3.3), layout="constrained")
    shares = set()
    handles = []
    for cls, members in lines.items():
        pts = {}
        for m in members:
            pct = round(m.attention_pct, 1)
            if pct in pts:
                log.warning("fig: %s has the same attention share (%s %%) as %s; left out", m.name, pct, pts[pct].name)
                continue
            pts[pct] = m
        xs = sorted(pts)
        shares.update(xs)
        total = np.array([counts[pts[x].name].means[TOTAL] for x in xs])
        kv = np.array([counts[pts[x].name].means[KV] for x in xs])
        share = np.divide(100 * kv, total, out=np.full_like(kv, np.nan), where=total > 0)
        color = class_color(cls)
        ax_n.plot(xs, total, "-o", color=color, zorder=3)
        ax_n.plot(xs, kv, "--s", color=color, mfc="white", zorder=3)
        ax_s.plot(xs, share, "-o", color=color, zorder=3)
        if cls != "transformer":
            handles.append(Line2D([], [], color=color, marker="o", label=class_label(cls)))
    if ref:  # the shared 100 % end point, drawn once on top in the Transformer's colour
        c = counts[ref[0].name].means
        ax_n.plot([100], [c[TOTAL]], "o", color=TRANSFORMER_COLOR, zorder=4)
        ax_n.plot([100], [c[KV]], "s", color=TRANSFORMER_COLOR, mfc="white", zorder=4)
        if c[TOTAL] > 0:
            ax_s.plot([100], [100 * c[KV] / c[TOTAL]], "o", color=TRANSFORMER_COLOR, zorder=4)
        handles.append(Line2D([], [], color=TRANSFORMER_COLOR, marker="o", ls="none", label="Transformer (100 %)"))
    ticks = sorted(shares)
    for ax in (ax_n, ax_s):
        ax.set_xticks(ticks, [f"{t:.0f}" for t in ticks])
        ax.set_xlim(-5, 105)
        ax.set_xlabel("Attention layers (%)")
    ax_n.set_ylim(bottom=0)
    ax_n.set_ylabel(f"{dataset_label} errors per generation")
    ax_s.set_ylabel("Key-Value Binding share of errors (%)")
    ax_n.set_title("Errors vs attention")
    ax_s.set_title("Key-Value Binding share of errors")
    handles += [
        Line2D([], [], color="0.35", ls="-", marker="o", label="All errors"),
        Line2D([], [], color="0.35", ls="--", marker="s", mfc="white", label="Key-Value Binding errors"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), handlelength=2.2, columnspacing=1.2)
    return fig


def recall_figure(models: list[ModelInfo], summaries: dict[str, list[dict]], kinds: list[str]):
    """Recall accuracy vs the number of bindings k: a row per probe kind, a panel per hybrid class
    with the Transformer in each (as Figure 2); bands are 95 % Wilson intervals."""
    panels = class_panels(models)
    fig, axes = plt.subplots(
        len(kinds), len(panels), figsize=(0.4 + 3.0 * len(panels), 0.6 + 2.1 * len(kinds)), sharex=True, sharey=True,
        squeeze=False, layout="constrained",
    )
    ks = sorted({r["k"] for rows in summaries.values() for r in rows if r["k"] != ALL})
    for i, kind in enumerate(kinds):
        for j, (title, members) in enumerate(panels):
            ax = axes[i][j]
            for m, color, ls in line_styles(members):
                pts = accuracy_vs_k(summaries[m.name], kind)
                x = [r["k"] for r in pts]
                ax.plot(x, [100 * r["accuracy"] for r in pts], ls, color=color, marker="o", label=m.label, zorder=3)
                ax.fill_between(x, [100 * r["lo"] for r in pts], [100 * r["hi"] for r in pts], color=color, alpha=0.12,
                                lw=0, zorder=2)
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_locator(FixedLocator(ks))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([str(k) for k in ks])
            if i == 0:
                ax.set_title(title if title == "Transformer" else f"{title} hybrids")
                ax.legend(loc="best", handlelength=1.8)
            if i == len(kinds) - 1:
                ax.set_xlabel("Bindings in the context k")
            if j == 0:
                ax.set_ylabel(f"{kind}: recall (%)")
    axes[0][0].set_ylim(0, 102)
    return fig


def recall_correlation_figure(points: list[RecallPoint], corr: list[dict], maj_label: str):
    """Across models: recall accuracy vs the KV-binding share of GSM8K errors (left) and vs GSM8K
    majority-vote accuracy (right), each with Spearman's rho and its bootstrap interval."""
    fig, axes = plt.subplots(1, len(corr), figsize=(3.7 * len(corr), 3.4), squeeze=False, layout="constrained")
    ylabels = {"kv_share": "Key-Value Binding share of errors (%)", "maj": f"GSM8K {maj_label} (%)"}
    for ax, c in zip(axes[0], corr):
        for p in points:
            y = getattr(p, c["target"])
            if math.isnan(y):
                continue
            ax.plot(100 * p.recall, 100 * y, "o", color=model_color(p.model), mec="0.25", mew=0.5, ms=6, zorder=3)
            ax.annotate(p.model.label, (100 * p.recall, 100 * y), textcoords="offset points", xytext=(4, 3), fontsize=6.5)
        ax.set_xlabel("Recall accuracy over all probes (%)")
        ax.set_ylabel(ylabels[c["target"]])
        ax.set_title(describe(c, rho="ρ").replace(", 95 %", "\n95 %"), fontsize=8.5)
    return fig
