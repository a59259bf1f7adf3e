"""The study's model list, generated from the ``models`` config section.

Models are architecture classes x attention-layer sets (Section 3.1) plus explicit extras (one
class with its attention layers, or every layer's mixer: ``layers: [mamba, gdn, attention, ...]``),
never hard-coded in rules: ``transformer``, then ``<class><recurrent %>`` in the
paper's order (mamba50 mamba75 mamba83 mamba100 gla50 ... gdn100), then ``extra`` models.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from recall2reason.common.cfg import ConfigError

CLASS_ORDER = ("transformer", "mamba", "gla", "gdn")
MIXERS = ("attention", "mamba", "gla", "gdn")  # names of a layer's mixer (models.extra.<name>.layers)
MIXED = "mixed"  # mixer_class of a per-layer list with more than one recurrent class


@dataclass(frozen=True)
class ModelSpec:
    name: str
    mixer_class: str  # transformer | mamba | gla | gdn | mixed (a per-layer list of several recurrent classes)
    attention_layers: tuple[int, ...]
    n_layers: int
    base: dict = field(default_factory=dict, compare=False, hash=False)
    mixers: dict = field(default_factory=dict, compare=False, hash=False)
    layers: tuple[str, ...] | None = None  # every layer's mixer, as models.extra.<name>.layers writes it

    @property
    def attention_pct(self) -> float:
        """Share of attention layers in percent (0 for pure recurrent, 100 for the Transformer)."""
        return 100.0 * len(self.attention_layers) / self.n_layers

    @property
    def layer_types(self) -> list[str]:
        if self.layers is not None:
            return list(self.layers)
        mixer = "attention" if self.mixer_class == "transformer" else self.mixer_class
        return ["attention" if i in self.attention_layers else mixer for i in range(self.n_layers)]

    def model_config(self, backend: str = "auto", kernels: dict | None = None) -> dict:
        """The dict that ``recall2reason.models.ModelConfig`` is built from; ``kernels``: the
        ``models.kernels`` section (``KernelConfig``; None: its defaults)."""
        return {
            **self.base,
            "layers": self.layer_types,
            **{k: v for k, v in self.mixers.items()},
            "backend": backend,
            **({"kernels": dict(kernels)} if kernels is not None else {}),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": self.mixer_class,
            "attention_layers": list(self.attention_layers),
            "attention_pct": self.attention_pct,
            "n_layers": self.n_layers,
        }


def kernels_section(models_cfg: dict) -> dict | None:
    """The ``models.kernels`` choices that differ from ``KernelConfig``'s defaults, None if none
    do: a rule's params (Snakemake reruns a rule when they change) stay those of a config without
    the section, so existing checkpoints are not retrained for it; the model gets the defaults
    either way, and its config.json records all of them."""
    from recall2reason.models.config import KernelConfig

    given = models_cfg.get("kernels") or {}
    changed = {k: v for k, v in given.items() if v != getattr(KernelConfig, k, object())}
    return changed or None


def expand_models(models_cfg: dict) -> list[ModelSpec]:
    """All models of the study in the paper's order, restricted to ``only`` when given."""
    return select_only(all_models(models_cfg), models_cfg.get("only"))


def select_only(specs: list[ModelSpec], only: list[str] | None) -> list[ModelSpec]:
    """``specs`` restricted to the names of ``models.only`` (all of them when it is empty)."""
    if not only:
        return specs
    names = [s.name for s in specs]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ConfigError(f"models.only names unknown model(s) {unknown}; known: {names}")
    return [s for s in specs if s.name in only]


def all_models(models_cfg: dict) -> list[ModelSpec]:
    """Every model the ``models`` section defines, ``only`` aside (ablation variants may vary a
    model the main study leaves out), each checked as building it would check it."""
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
        if "layers" in extra:  # every layer's mixer, e.g. [mamba, gdn, attention, ...]
            specs.append(_layer_list_spec(name, extra, base, mixers))
            continue
        if "mixer" not in extra or (extra["mixer"] != "attention" and "attention_layers" not in extra):
            raise ConfigError(f"models.extra.{name}: give either mixer and attention_layers, or layers "
                              f"(every layer's mixer, of {', '.join(MIXERS)})")
        xbase = {**base, **extra.get("base", {})}
        cls = "transformer" if extra["mixer"] == "attention" else extra["mixer"]
        unused = sorted(set(extra.get("mixers", {})) - {cls})
        if unused:
            raise ConfigError(f"models.extra.{name}.mixers.{unused[0]}: no layer of {name} is a {unused[0]} layer")
        xmix = copy.deepcopy({cls: dict(mixers.get(cls, {}))} if cls != "transformer" else {})
        for k, v in extra.get("mixers", {}).items():
            xmix[k].update(v)
        xn = int(xbase["n_layers"])
        layers = tuple(sorted(extra["attention_layers"])) if cls != "transformer" else tuple(range(xn))
        if any(not 0 <= i < xn for i in layers):
            raise ConfigError(f"models.extra.{name}: attention layer out of range for n_layers={xn}")
        specs.append(ModelSpec(name, cls, layers, xn, xbase, xmix))

    names = [s.name for s in specs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"models: duplicate model name(s) {sorted(dupes)}")
    for spec in specs:  # mixer settings that only building the model would reject (e.g. Mamba's d_xb)
        for cls in set(spec.layer_types) & {"mamba", "gla", "gdn"}:
            effective_mixer(cls, spec.mixers.get(cls, {}), int(spec.base["d_model"]))
    return specs


def _layer_list_spec(name: str, extra: dict, base: dict, mixers: dict) -> ModelSpec:
    """A ``models.extra`` model given by every layer's mixer: ``{layers: [mamba, gdn, attention, ...]}``
    (optionally with ``base`` / ``mixers`` overrides, as the other extras)."""
    where = f"models.extra.{name}"
    if "mixer" in extra or "attention_layers" in extra:
        raise ConfigError(f"{where}: layers names every layer's mixer; drop mixer / attention_layers")
    layers = extra["layers"]
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ConfigError(f"{where}.layers: expected a list of mixer names, got {layers!r}")
    bad = [(i, m) for i, m in enumerate(layers) if m not in MIXERS]
    if bad:
        i, m = bad[0]
        raise ConfigError(f"{where}.layers.{i}: unknown mixer {m!r}; mixers: {', '.join(MIXERS)}")
    xbase = {**base, **extra.get("base", {})}
    xn = int(xbase["n_layers"])
    if len(layers) != xn:
        raise ConfigError(f"{where}.layers: {len(layers)} mixers, but n_layers is {xn}")
    classes = list(dict.fromkeys(m for m in layers if m != "attention"))
    unused = sorted(set(extra.get("mixers", {})) - set(classes))
    if unused:
        raise ConfigError(f"{where}.mixers.{unused[0]}: no layer of {name} is a {unused[0]} layer")
    xmix = copy.deepcopy({cls: dict(mixers.get(cls, {})) for cls in classes})
    for k, v in extra.get("mixers", {}).items():
        xmix[k].update(v)
    cls = "transformer" if not classes else classes[0] if len(classes) == 1 else MIXED
    attention = tuple(i for i, m in enumerate(layers) if m == "attention")
    return ModelSpec(name, cls, attention, xn, xbase, xmix, tuple(layers))


# -- the ablations of Appendix A.3 (Figures 6, 7, 8) ---------------------------------------------

LOSS_FIGURES = ("fig6", "fig7")  # training-loss curves per variant, loss spikes marked
ACCURACY_FIGURES = ("fig8",)  # GSM8K majority-vote accuracy per variant


@dataclass(frozen=True)
class Variant:
    spec: ModelSpec
    label: str  # the set's swept settings, e.g. "d_state=8" or "attention 0, 11"


@dataclass(frozen=True)
class AblationSet:
    name: str
    title: str
    base: str
    variants: tuple[Variant, ...]

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "base": self.base,
                "variants": [{"model": v.spec.name, "label": v.label} for v in self.variants]}


def effective_mixer(cls: str, settings: dict, d_model: int) -> dict:
    """A mixer's settings with every default filled in and Mamba's "auto" values (None) resolved,
    so that two ways of writing the same layer compare equal (d_xb null and d_xb = d_inner)."""
    from recall2reason.models.config import (  # torch-free
        GDNConfig, GLAConfig, MambaConfig, mamba_dt_limit, mamba_repeat, mamba_widths)

    dc = {"mamba": MambaConfig, "gla": GLAConfig, "gdn": GDNConfig}[cls]
    from recall2reason.common.cfg import from_dict, to_dict

    out = to_dict(from_dict(dc, settings, f"mixers.{cls}"))
    if cls == "mamba":
        out["d_inner"], out["dt_rank"], out["d_xb"] = mamba_widths(d_model, out["expand"], out["d_inner"],
                                                                  out["dt_rank"], out["d_xb"])
        out.pop("expand")  # only through d_inner
        mamba_repeat(out["d_inner"], out["d_xb"], out["d_state"])  # a bad d_xb stops the parse, not a GPU job
        mamba_dt_limit(out["dt_limit"])
    return out


def _token(value: Any) -> str:
    """A setting's value in a model name: 8, on / off, 0p0001 (0.0001), 1_none (a list)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return "_".join(_token(v) for v in value)
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
        return text.replace(".", "p").replace("-", "m").replace("+", "")
    return str(value)


def _join(key: str, value: Any) -> str:
    tok = _token(value)
    return f"{key}{tok}" if tok[:1].isdigit() else f"{key}_{tok}"


def variant_spec(base: ModelSpec, override: dict, where: str) -> tuple[ModelSpec, dict[str, Any]]:
    """The base model with ``override`` ({mixers: {cls: {...}}, attention_layers: [...]}) applied,
    and the settings that differ from the base's (key -> value). Its name is the base's name plus
    those settings in a fixed order (mixer keys sorted, then attention layers): the same variant
    reached from two sets, or written two ways, gets one name and is trained once."""
    if base.layers is not None:
        raise ConfigError(f"{where}: {base.name} is given layer by layer (models.extra.{base.name}.layers); "
                          "an ablation varies a model of one mixer class and its attention placement")
    if base.mixer_class == "transformer":
        raise ConfigError(f"{where}: the Transformer has no mixer settings or attention placement to vary")
    cls = base.mixer_class
    d_model = int(base.base["d_model"])
    unknown = sorted(set(override.get("mixers", {})) - {cls})
    if unknown:
        raise ConfigError(f"{where}: mixers.{unknown[0]} does not apply to {base.name}, a {cls} model")
    old = effective_mixer(cls, base.mixers.get(cls, {}), d_model)
    asked = {**base.mixers.get(cls, {}), **override.get("mixers", {}).get(cls, {})}
    try:
        new = effective_mixer(cls, asked, d_model)
    except ConfigError as e:  # e.g. the paper's d_xb sweep (written for d_model 768) at another width
        raise ConfigError(f"{where} of {base.name}: {e}") from None
    changed = {k: new[k] for k in sorted(new) if new[k] != old[k]}
    layers = base.attention_layers
    if "attention_layers" in override:
        layers = tuple(sorted(override["attention_layers"]))
        bad = [i for i in layers if not 0 <= i < base.n_layers]
        if bad:
            raise ConfigError(f"{where}: attention at layer(s) {bad}, but {base.name} has {base.n_layers} layers")
    parts = [_join(k, v) for k, v in changed.items()]
    if layers != base.attention_layers:
        parts.append("attn_" + ("_".join(map(str, layers)) or "none"))
    if not parts:
        return base, {}
    mixers = copy.deepcopy(base.mixers)
    mixers[cls] = asked  # as written: d_xb 768 stays 768 when d_inner grows (its null would follow d_inner)
    settings = dict(changed)
    if layers != base.attention_layers:
        settings["attention_layers"] = list(layers)
    name = "_".join([base.name, *parts])
    return ModelSpec(name, cls, layers, base.n_layers, dict(base.base), mixers), settings


def _label(settings: dict[str, Any], swept: list[str], effective: dict[str, Any]) -> str:
    """The legend entry: every setting the set sweeps, at this variant's value."""
    items = []
    for key in swept:
        value = settings.get(key, effective.get(key))
        if key == "attention_layers":
            items.append("attention " + (", ".join(map(str, value)) or "none"))
        elif isinstance(value, bool) or value is None:
            items.append(f"{key} {'none' if value is None else 'on' if value else 'off'}")
        elif isinstance(value, (list, tuple)):
            items.append(f"{key} [{', '.join('none' if v is None else f'{v:g}' for v in value)}]")
        else:
            items.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(items)


def expand_ablations(
    models_cfg: dict, ablations_cfg: dict, every_model: list[ModelSpec] | None = None
) -> dict[str, AblationSet]:
    """Every ablation set of ``ablations.sets`` whose name some figure of ``ablations.figures``
    draws, its variants built from the study's models (``models.only`` aside: a set may vary a
    model the main study leaves out; ``every_model``: :func:`all_models` of ``models_cfg``, when
    the caller has it). A variant whose model equals a study model is that model."""
    known = {s.name: s for s in (every_model if every_model is not None else all_models(models_cfg))}
    by_config = {json_key(s): s for s in known.values()}
    sets_cfg = ablations_cfg.get("sets", {})
    drawn = [n for names in ablations_cfg.get("figures", {}).values() for n in names or []]
    missing = sorted(set(drawn) - set(sets_cfg))
    if missing:
        raise ConfigError(f"ablations.figures: no set named {missing[0]!r} in ablations.sets ({sorted(sets_cfg)})")
    out: dict[str, AblationSet] = {}
    names: dict[str, ModelSpec] = dict(known)  # a variant may not take a study model's name with other settings
    for set_name in dict.fromkeys(drawn):
        scfg = sets_cfg[set_name]
        if scfg["base"] not in known:
            raise ConfigError(f"ablations.sets.{set_name}.base: {scfg['base']!r} is not a model of the study ({sorted(known)})")
        base = known[scfg["base"]]
        built = [variant_spec(base, v or {}, f"ablations.sets.{set_name}.variants[{i}]")
                 for i, v in enumerate(scfg["variants"])]
        swept = sorted({k for _, settings in built for k in settings}, key=lambda k: (k == "attention_layers", k))
        effective = {**effective_mixer(base.mixer_class, base.mixers.get(base.mixer_class, {}),
                                       int(base.base["d_model"])),
                     "attention_layers": list(base.attention_layers)}
        variants = []
        for spec, settings in built:
            spec = by_config.get(json_key(spec), spec)  # e.g. gdn83 with attention at 3, 7, 11 is gdn75
            prev = names.setdefault(spec.name, spec)
            if json_key(prev) != json_key(spec):
                raise ConfigError(f"ablations: two different models are both named {spec.name!r} (a variant and a "
                                  "study model, or two variants): rename the models.extra entry")
            label = _label(settings, swept, effective) or base.name
            if spec.name in [v.spec.name for v in variants]:
                raise ConfigError(f"ablations.sets.{set_name}: variant {spec.name!r} listed twice (two of its variants "
                                  "are the same model under this config's models section: drop one, or the set "
                                  "from ablations.figures)")
            variants.append(Variant(spec, label))
        out[set_name] = AblationSet(set_name, scfg.get("title") or set_name, base.name, tuple(variants))
    return out


def json_key(spec: ModelSpec) -> str:
    """What the model is (its ModelConfig dict, mixers resolved), not what it is called."""
    import json

    cfg = spec.model_config()
    for cls in ("mamba", "gla", "gdn"):
        if cls in cfg:
            cfg[cls] = effective_mixer(cls, cfg[cls], int(spec.base["d_model"]))
    used = set(spec.layer_types)
    cfg = {k: v for k, v in cfg.items() if k not in ("mamba", "gla", "gdn") or k in used}
    return json.dumps(cfg, sort_keys=True)


def ablation_models(sets: dict[str, AblationSet]) -> dict[str, ModelSpec]:
    """Each model the ablations train, once, in the sets' order."""
    out: dict[str, ModelSpec] = {}
    for s in sets.values():
        for v in s.variants:
            out.setdefault(v.spec.name, v.spec)
    return out
