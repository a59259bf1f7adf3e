"""Typed config of the probe stage (config.yaml ``probe:``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from recall2reason.common.cfg import ConfigError, from_dict

Kind = Literal["binding", "distractor", "update", "mqar"]
KINDS: tuple[str, ...] = ("binding", "distractor", "update", "mqar")
# the keys that decide the probe set's content (the probe_set rule gets only these)
SET_KEYS = ("kinds", "ks", "distances", "per_cell", "max_value", "seed")
# the sample section's keys that set up the decoding engine of a probe job
ENGINE_KEYS = ("prompt_prefix", "dtype", "cuda_graph", "attention_kernel", "compile", "sync_every")
MAX_K = 64  # distinct names available to the named-entity probes (probe/generate.py NAMES)


@dataclass
class ProbeConfig:
    kinds: list[Kind] = field(default_factory=lambda: list(KINDS))
    ks: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32, 64])  # bindings per probe
    # where the queried key's last write sits: share of the possible distance to the question,
    # 0 = the sentence right before the question, 1 = as far from it as the probe allows
    distances: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0])
    per_cell: int = 20  # probes per (kind, k, distance)
    max_value: int = 999  # the numbers of a probe are distinct draws from 2..max_value
    seed: int = 1234
    max_new_tokens: int = 128  # greedy decoding stops at EOS or here
    batch_size: int = 256  # decode slots

    def __post_init__(self) -> None:
        for key in ("kinds", "ks", "distances"):
            values = getattr(self, key)
            if not values:
                raise ConfigError(f"probe.{key} must not be empty")
            if len(set(values)) != len(values):
                raise ConfigError(f"probe.{key} repeats a value: {values}")
        bad_k = [k for k in self.ks if not 2 <= k <= MAX_K]
        if bad_k:
            raise ConfigError(f"probe.ks: {bad_k} outside 2..{MAX_K}")
        bad_d = [d for d in self.distances if not 0.0 <= d <= 1.0]
        if bad_d:
            raise ConfigError(f"probe.distances: {bad_d} outside [0, 1]")
        if len({f"{d:.2f}" for d in self.distances}) != len(self.distances):  # probe ids name them so
            raise ConfigError(f"probe.distances: {self.distances} must differ in their first 2 decimals")
        for key in ("per_cell", "max_new_tokens", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"probe.{key} must be >= 1, got {getattr(self, key)}")
        need = max(numbers_needed(kind, k) for kind in self.kinds for k in self.ks)
        if self.max_value - 1 < need:
            raise ConfigError(
                f"probe.max_value: {self.max_value} leaves {self.max_value - 1} numbers (2..{self.max_value}), "
                f"but a probe of probe.ks up to {max(self.ks)} needs {need} distinct ones"
            )

    @classmethod
    def from_dict(cls, d: dict | None) -> "ProbeConfig":
        return from_dict(cls, d, "probe")


def numbers_needed(kind: str, k: int) -> int:
    """Distinct numbers in one probe: a value per binding, plus one per distractor or overwrite."""
    if kind == "distractor":
        return 2 * k
    if kind == "update":
        return k + n_updates(k)
    return k


def n_updates(k: int) -> int:
    """Overwrites in an ``update`` probe: half the keys (the queried one always among them)."""
    return max(1, k // 2)
