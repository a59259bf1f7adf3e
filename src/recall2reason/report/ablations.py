"""Appendix A.3's ablation figures: training loss per variant with its loss spikes (Figures 6
and 7, and the spike table), and GSM8K majority-vote accuracy per variant (Figure 8).

The rule for a loss spike (``find_spikes``), on the logged training losses of one model
(``pretrain/<model>/metrics.jsonl``, every ``train.log_every`` steps):

    a spike starts at a logged point whose loss exceeds (1 + threshold) x the median of the
    ``window`` logged losses before it, and lasts while the loss stays above that level. The
    first ``window`` points (no full window yet) never start one.

The median, not the mean, so one spike does not raise the bar for the next; relative, so the
rule reads the same at a loss of 10 (start) and of 1 (end). Each spike counts once however long it lasts.

--cfg carries ``{"sets": [AblationSet.summary(), ...], "spikes": {...}, "metric": ..., "bands": ...}``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Literal

from recall2reason.common.cfg import ConfigError, from_dict, load_cfg_arg
from recall2reason.report.inputs import InputError, read_rows


@dataclass
class SpikeRule:
    window: int = 10  # logged losses before a point (log_every 10: the last 100 steps)
    threshold: float = 0.05  # relative rise over their median

    def __post_init__(self) -> None:
        if self.window < 1 or not self.threshold > 0:
            raise ConfigError(f"ablations.spikes: window must be >= 1 and threshold > 0, got {self}")


@dataclass
class VariantInfo:
    model: str
    label: str


@dataclass
class SetInfo:
    name: str
    title: str
    base: str
    variants: list[VariantInfo] = field(default_factory=list)


@dataclass
class AblationReportConfig:
    sets: list[SetInfo] = field(default_factory=list)
    spikes: SpikeRule = field(default_factory=SpikeRule)
    metric: Literal["maj_exact", "maj_first"] = "maj_exact"
    bands: bool = True

    @classmethod
    def load(cls, arg: str) -> "AblationReportConfig":
        cfg = from_dict(cls, load_cfg_arg(arg), "ablations")
        if not cfg.sets:
            raise ConfigError("ablations: --cfg names no sets")
        return cfg

    def models(self) -> list[str]:
        return list(dict.fromkeys(v.model for s in self.sets for v in s.variants))


@dataclass(frozen=True)
class Spike:
    start_step: int
    end_step: int  # the last logged step above the level
    peak_step: int
    reference: float  # the median the rise is measured against
    peak_loss: float

    @property
    def rise(self) -> float:
        return self.peak_loss / self.reference - 1.0


def find_spikes(steps: list[int], losses: list[float], rule: SpikeRule) -> list[Spike]:
    """The module docstring's rule, over logged points in step order."""
    spikes = []
    i, n = rule.window, len(losses)
    while i < n:
        ref = statistics.median(losses[i - rule.window:i])
        level = (1.0 + rule.threshold) * ref
        if losses[i] <= level:
            i += 1
            continue
        j = i
        while j + 1 < n and losses[j + 1] > level:
            j += 1
        peak = max(range(i, j + 1), key=lambda t: losses[t])
        spikes.append(Spike(steps[i], steps[j], steps[peak], ref, losses[peak]))
        i = j + 1
    return spikes


def read_losses(path) -> tuple[list[int], list[float]]:
    """(steps, losses) of pretrain/<model>/metrics.jsonl, checked to be finite and in step order."""
    steps, losses = [], []
    for line, row in read_rows(path, "a metrics row with step and loss"):
        step, loss = row.get("step"), row.get("loss")
        if not isinstance(step, int) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
            raise InputError(f"{path}:{line}: expected an integer step and a finite loss, got {row}")
        if steps and step <= steps[-1]:
            raise InputError(f"{path}:{line}: step {step} after step {steps[-1]}: rows must be in step order")
        steps.append(step)
        losses.append(float(loss))
    if not steps:
        raise InputError(f"{path}: no metrics rows")
    return steps, losses


# -- drawing -------------------------------------------------------------------------------------

def _panels(n: int, width: float = 3.6, height: float = 3.0):
    import matplotlib.pyplot as plt

    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.4 + width * cols, height * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _colors(n: int):
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    return [cmap(0.9 * i / max(1, n - 1)) for i in range(n)]


def loss_figure(sets: list[SetInfo], losses: dict[str, tuple[list[int], list[float]]], rule: SpikeRule):
    """Training loss vs step, a panel per set and a line per variant; each spike's peak is an x."""
    fig, axes = _panels(len(sets))
    for ax, s in zip(axes, sets):
        for v, color in zip(s.variants, _colors(len(s.variants))):
            steps, loss = losses[v.model]
            spikes = find_spikes(steps, loss, rule)
            ax.plot(steps, loss, color=color, lw=1.2, label=f"{v.label} ({len(spikes)} spikes)")
            if spikes:
                ax.plot([sp.peak_step for sp in spikes], [sp.peak_loss for sp in spikes], "x", color=color, ms=6,
                        mew=1.6, zorder=4)
        ax.set_yscale("log")
        from matplotlib.ticker import FuncFormatter

        plain = FuncFormatter(lambda y, _pos: f"{y:g}")  # 3, 4, 6 rather than 3 x 10^0
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.set_title(s.title)
        ax.set_xlabel("training step")
        ax.set_ylabel("training loss")
        ax.legend(loc="upper right")
    return fig


def final_accuracy(df, metric: str) -> tuple[float, float, float]:
    """(accuracy, lo, hi) at the largest N of a curves table."""
    last = df.iloc[-1]
    return float(last[metric]), float(last[f"{metric}_lo"]), float(last[f"{metric}_hi"])


def accuracy_figure(sets: list[SetInfo], curves: dict, metric: str, bands: bool):
    """maj@N (N: the samples per problem) per variant, a panel per set, with the 95 % interval."""
    fig, axes = _panels(len(sets), width=3.8, height=0.6 + 0.35 * max(len(s.variants) for s in sets))
    for ax, s in zip(axes, sets):
        vals = [final_accuracy(curves[v.model], metric) for v in s.variants]
        n = int(curves[s.variants[0].model]["k"].iloc[-1])
        y = list(range(len(vals)))[::-1]
        err = [[100 * (a - lo) for a, lo, _ in vals], [100 * (hi - a) for a, _, hi in vals]] if bands else None
        ax.barh(y, [100 * a for a, _, _ in vals], xerr=err, color=_colors(len(vals)), height=0.7, capsize=2)
        top = max(100 * (hi if bands else a) for a, _, hi in vals)
        ax.set_xlim(0, max(5.0, 1.18 * top))  # from 0 even when every model scores 0 (the CI demo)
        for yy, (a, _, _) in zip(y, vals):
            ax.text(100 * a, yy, f" {100 * a:.1f}", va="center", ha="left", fontsize=7)
        ax.set_yticks(y, [v.label for v in s.variants])
        ax.set_title(s.title)
        ax.set_xlabel(f"GSM8K maj@{n} (%)")
        ax.grid(axis="y", visible=False)
    return fig


# -- the spike table -------------------------------------------------------------------------

SPIKE_COLUMNS = ["set", "model", "variant", "logged_points", "spikes", "first_spike_step", "largest_rise_pct",
                 "final_loss"]


def spike_rows(sets: list[SetInfo], losses: dict, rule: SpikeRule) -> list[dict]:
    rows = []
    for s in sets:
        for v in s.variants:
            steps, loss = losses[v.model]
            spikes = find_spikes(steps, loss, rule)
            tail = loss[-rule.window:]
            rows.append({"set": s.name, "model": v.model, "variant": v.label, "logged_points": len(loss),
                         "spikes": len(spikes), "first_spike_step": spikes[0].start_step if spikes else "",
                         "largest_rise_pct": round(100 * max(sp.rise for sp in spikes), 1) if spikes else "",
                         "final_loss": round(sum(tail) / len(tail), 4)})
    return rows


def write_spike_table(rows: list[dict], rule: SpikeRule, out_csv=None, out_md=None) -> None:
    import csv
    import io

    from recall2reason.common.io import atomic_write

    if out_csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, SPIKE_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        with atomic_write(out_csv, "w") as f:
            f.write(buf.getvalue())
    if out_md:
        lines = [f"Loss spikes per variant: a spike starts where a logged training loss exceeds {1 + rule.threshold:g} x "
                 f"the median of the {rule.window} logged losses before it (final loss: mean of the last {rule.window}).",
                 "", "| " + " | ".join(SPIKE_COLUMNS) + " |", "|" + "---|" * len(SPIKE_COLUMNS)]
        lines += ["| " + " | ".join(str(r[c]) for c in SPIKE_COLUMNS) + " |" for r in rows]
        with atomic_write(out_md, "w") as f:
            f.write("\n".join(lines) + "\n")
