"""The report stage's config slice and the model metadata every table and figure shares.

The Snakemake rule passes ``config["report"]`` plus the study's model summaries
(``ModelSpec.summary()`` in the paper's order) as ``--cfg``::

    {"datasets": {...}, "metric": "maj_exact", "bands": true,
     "models": [{"name": "transformer", "class": "transformer", "attention_pct": 100.0, ...}, ...]}

Models not listed in ``models`` (a stage run by hand) are recognised from their names
(``transformer``, ``<class><recurrent %>``), so ``--cfg '{}'`` works for the standard suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from recall2reason.common.cfg import ConfigError, from_dict, load_cfg_arg
from recall2reason.study import CLASS_ORDER

CLASS_LABEL = {"transformer": "Transformer", "mamba": "Mamba", "gla": "GLA", "gdn": "GDN",
               "mixed": "Mixed"}  # mixed: models.extra given layer by layer, several recurrent classes


@dataclass
class ModelInfo:
    name: str
    mixer_class: str  # transformer | mamba | gla | gdn | mixed ("class" in ModelSpec.summary())
    attention_pct: float
    attention_layers: list[int] = field(default_factory=list)
    n_layers: int | None = None

    @property
    def label(self) -> str:
        """Display name as in the paper: Transformer, Mamba50, GLA75, GDN100."""
        cls = CLASS_LABEL.get(self.mixer_class, self.mixer_class)
        if self.name == self.mixer_class:
            return cls
        if self.name.startswith(self.mixer_class):
            return cls + self.name[len(self.mixer_class):]
        return self.name


@dataclass
class CorrelationConfig:
    """The bootstrap interval of the recall-vs-reasoning rank correlations (models resampled)."""

    bootstrap: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.bootstrap < 0:
            raise ConfigError(f"report.correlation.bootstrap must be >= 0, got {self.bootstrap}")


@dataclass
class ReportConfig:
    datasets: dict[str, str] = field(default_factory=lambda: {"gsm8k": "gsm8k", "math500": "math500"})
    # which majority-vote column of vote/<model>/<dataset>.curves.csv the figures draw:
    # maj_exact (exact expectation over random size-N subsets) or maj_first (first N samples)
    metric: Literal["maj_exact", "maj_first"] = "maj_exact"
    bands: bool = True  # draw the 95 % bootstrap band (<metric>_lo, <metric>_hi)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    models: list[ModelInfo] = field(default_factory=list)

    def lookup(self, names: list[str]) -> list[ModelInfo]:
        """ModelInfo for each name, in the config's (paper's) order."""
        known = {m.name: m for m in self.models}
        infos = [known.get(n) or guess_model(n) for n in names]
        order = {m.name: i for i, m in enumerate(self.models)}
        return sorted(infos, key=lambda m: (order.get(m.name, len(order)), paper_rank(m)))


def paper_rank(m: ModelInfo) -> tuple:
    cls = CLASS_ORDER.index(m.mixer_class) if m.mixer_class in CLASS_ORDER else len(CLASS_ORDER)
    return (cls, -m.attention_pct, m.name)


_NAME = re.compile(r"^(mamba|gla|gdn)(\d+)$")


def guess_model(name: str) -> ModelInfo:
    if name == "transformer":
        return ModelInfo(name, "transformer", 100.0)
    m = _NAME.match(name)
    if not m:
        raise ConfigError(
            f"model {name!r} is not in --cfg models and its name does not say its class "
            "(transformer or <mamba|gla|gdn><recurrent %>); pass the model summaries in --cfg"
        )
    return ModelInfo(name, m.group(1), 100.0 - float(m.group(2)))


def load_report_cfg(arg: str) -> ReportConfig:
    data = dict(load_cfg_arg(arg))
    models = []
    for i, m in enumerate(data.pop("models", None) or []):
        if not isinstance(m, dict):
            raise ConfigError(f"report.models[{i}]: expected a mapping, got {m!r}")
        m = dict(m)
        if "class" in m:
            m["mixer_class"] = m.pop("class")
        models.append(m)
    data["models"] = models
    return from_dict(ReportConfig, data, "report")
