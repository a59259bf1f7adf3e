"""The study's model list, generated from the ``models`` config section.

Models are architecture classes x attention-layer sets (Section 3.1) plus explicit extras for
ablations, never hard-coded in rules: ``transformer``, then ``<class><recurrent %>`` in the
paper's order (mamba50 mamba75 mamba83 mamba100 gla50 ... gdn100), then ``extra`` models.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from recall2reason.common.cfg import ConfigError

CLASS_ORDER = ("transformer", "mamba", "gla", "gdn")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    mixer_class: str  # transformer | mamba | gla | gdn
    attention_layers: tuple[int, ...]
    n_layers: int
    base: dict = field(default_factory=dict, compare=False, hash=False)
    mixers: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def attention_pct(self) -> float:
        """Share of attention layers in percent (0 for pure recurrent, 100 for the Transformer)."""
        return 100.0 * len(self.attention_layers) / self.n_layers

    @property
    def layer_types(self) -> list[str]:
        mixer = "attention" if self.mixer_class == "transformer" else self.mixer_class
        return ["attention" if i in self.attention_layers else mixer for i in range(self.n_layers)]

    def model_config(self, backend: str = "auto") -> dict:
        """The dict that ``recall2reason.models.ModelConfig`` is built from."""
        return {
            **self.base,
            "layers": self.layer_types,
            **{k: v for k, v in self.mixers.items()},
            "backend": backend,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": self.mixer_class,
            "attention_layers": list(self.attention_layers),
            "attention_pct": self.attention_pct,
            "n_layers": self.n_layers,
        }


def expand_models(models_cfg: dict) -> list[ModelSpec]:
    """All models of the study in the paper's order, restricted to ``only`` when given."""
    base = dict(models_cfg["base"])
    n_layers = int(base["n_layers"])
    mixers = models_cfg.get("mixers", {})
    specs: list[ModelSpec] = []

    def check_layers(name: str, layers: list[int]) -> tuple[int, ...]:
        bad = [i for i in layers if not 0 <= i < n_layers]
        if bad:
            raise ConfigError(f"models: {name} puts attention at layer(s) {bad}, but n_layers is {n_layers}")
        return tuple(sorted(layers))

    if models_cfg.get("transformer", True):
        specs.append(ModelSpec("transformer", "transformer", tuple(range(n_layers)), n_layers, base, {}))
    # an overlay config (e.g. configs/demo.yaml) drops a variant of the base config with `null`
    shares = sorted(
        ((k, v) for k, v in models_cfg["attention_layers"].items() if v is not None), key=lambda kv: int(kv[0])
    )
    for cls in models_cfg.get("hybrid_classes", []):
        for share, layers in shares:
            name = f"{cls}{share}"
            specs.append(
                ModelSpec(name, cls, check_layers(name, layers), n_layers, base, {cls: dict(mixers.get(cls, {}))})
            )
    for name, extra in models_cfg.get("extra", {}).items():
        xbase = {**base, **extra.get("base", {})}
        cls = "transformer" if extra["mixer"] == "attention" else extra["mixer"]
        xmix = copy.deepcopy({cls: dict(mixers.get(cls, {}))} if cls != "transformer" else {})
        for k, v in extra.get("mixers", {}).items():
            xmix.setdefault(k, {}).update(v)
        xn = int(xbase["n_layers"])
        layers = tuple(sorted(extra["attention_layers"])) if cls != "transformer" else tuple(range(xn))
        if any(not 0 <= i < xn for i in layers):
            raise ConfigError(f"models.extra.{name}: attention layer out of range for n_layers={xn}")
        specs.append(ModelSpec(name, cls, layers, xn, xbase, xmix))

    names = [s.name for s in specs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"models: duplicate model name(s) {sorted(dupes)}")
    only = models_cfg.get("only") or []
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ConfigError(f"models.only names unknown model(s) {unknown}; known: {names}")
        specs = [s for s in specs if s.name in only]
    return specs
