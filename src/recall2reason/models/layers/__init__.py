"""Sequence mixers, one per file, registered by name.

Adding a mixer = adding one file here that defines a ``Mixer`` subclass decorated with
``@register_mixer("<name>")``; every module of this package is imported on first lookup, so
nothing else needs editing. Each mixer offers two backends with one parameter layout:
``reference`` (pure PyTorch, runs anywhere) and ``kernels`` (mamba-ssm / FLA on CUDA,
imported lazily inside the kernel path).
"""

from __future__ import annotations

import importlib
import pkgutil

from recall2reason.models.layers.base import MIXERS, Mixer, register_mixer

_loaded = False


def get_mixer(name: str) -> type[Mixer]:
    global _loaded
    if not _loaded:
        for mod in pkgutil.iter_modules(__path__):
            if mod.name != "base":
                importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True
    try:
        return MIXERS[name]
    except KeyError:
        raise KeyError(f"unknown mixer {name!r}; known: {sorted(MIXERS)}") from None


__all__ = ["MIXERS", "Mixer", "get_mixer", "register_mixer"]
