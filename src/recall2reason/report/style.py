"""Figure style: one colour family per model class, shaded by attention share; atomic saving.

Darker = more attention layers. The Transformer (100 % attention) is black in every panel so
each hybrid class is read against the same reference.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless and deterministic; set before pyplot is imported anywhere
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import logging  # noqa: E402

logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting logs every table at INFO
logging.getLogger("matplotlib").setLevel(logging.WARNING)

from recall2reason.common.io import atomic_write  # noqa: E402
from recall2reason.report.config import CLASS_LABEL, ModelInfo  # noqa: E402

CLASS_CMAP = {"mamba": "Oranges", "gla": "Greens", "gdn": "Blues"}
OTHER_CMAP = "Purples"
TRANSFORMER_COLOR = "#111111"
# attention shares of the paper's hybrids (100 - 100, 83, 75, 50 % recurrent) -> colormap position
_SHARE_POINTS = [0.0, 100 / 6, 25.0, 50.0]
_SHADE_POINTS = [0.38, 0.58, 0.76, 0.95]

plt.rcParams.update(
    {
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "legend.fontsize": 7.5,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "grid.linewidth": 0.6,
        "lines.linewidth": 1.6,
        "lines.markersize": 4,
        "legend.frameon": False,
        "pdf.fonttype": 42,  # embed TrueType: text stays selectable/editable in the PDF
        "svg.hashsalt": "recall2reason",
    }
)


def model_color(m: ModelInfo):
    if m.mixer_class == "transformer":
        return TRANSFORMER_COLOR
    cmap = plt.get_cmap(CLASS_CMAP.get(m.mixer_class, OTHER_CMAP))
    return cmap(float(np.interp(m.attention_pct, _SHARE_POINTS, _SHADE_POINTS)))


def class_color(cls: str):
    """The colour a whole class is drawn in when it is one line (Figures 3 and 9)."""
    if cls == "transformer":
        return TRANSFORMER_COLOR
    return plt.get_cmap(CLASS_CMAP.get(cls, OTHER_CMAP))(0.78)


def class_label(cls: str) -> str:
    return CLASS_LABEL.get(cls, cls)


def save_figure(fig, out_pdf: str | os.PathLike | None, out_png: str | os.PathLike | None, dpi: int = 200) -> None:
    """Write the PDF and PNG atomically, without timestamps, so reruns give identical bytes."""
    for path, fmt, meta in (
        (out_pdf, "pdf", {"CreationDate": None, "ModDate": None}),
        (out_png, "png", {"Software": None}),
    ):
        if path is None:
            continue
        with atomic_write(Path(path), "wb") as f:
            fig.savefig(f, format=fmt, dpi=dpi, metadata=meta, bbox_inches="tight", pad_inches=0.03)
    plt.close(fig)
