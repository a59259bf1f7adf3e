"""The measured-throughput table (``throughputs.yaml``) and how a (model, stage, GPU) gets its rate.

A rate is never silent about where it comes from: :func:`resolve` returns it with a ``kind`` and a
sentence for the output.

- ``measured``: a current figure of this model on this GPU kind.
- ``stale``: the Transformer's latest figure on this GPU predates a change (the row says which).
- ``ratio``: the model's latest figure as a ratio to the Transformer of the same call, times the
  Transformer's rate on this GPU (the shared code's later gains carry over, the model's own do not);
  stale or from another GPU kind, said so.
- ``sibling``: no figure of this model at all (the 75 / 83 % hybrids): its class's nearest measured
  recurrent share; on a tie the slower one (more hours, not fewer).
- ``scaled``: no Transformer figure on this GPU kind: one from another kind times the ratio of the
  datasheet peaks (bf16 dense TFLOP/s for training, HBM bandwidth for decoding, which is
  memory-bound). An assumption, printed as one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from recall2reason.pretrain.flops import PEAK_BF16_TFLOPS

TABLE_PATH = Path(__file__).with_name("throughputs.yaml")
STAGES = ("pretrain", "sample")


class PlanError(ValueError):
    """A plan cannot be made (unknown GPU kind, unknown config); the message says what to change."""


@dataclass(frozen=True)
class GPUKind:
    name: str  # as NVIDIA's datasheet / torch.cuda.get_device_name call it
    peak_key: str  # key of pretrain.flops.PEAK_BF16_TFLOPS (the MFU denominator)
    hbm_tb_s: float  # datasheet memory bandwidth, TB/s

    @property
    def bf16_tflops(self) -> float:
        return PEAK_BF16_TFLOPS[self.peak_key]


# datasheet figures, used only to scale a measured figure to a kind that has none (printed as such)
GPU_KINDS = {
    "h100": GPUKind("NVIDIA H100 SXM 80GB", "H100", 3.35),
    "h200": GPUKind("NVIDIA H200 SXM 141GB", "H200", 4.8),
    "h100-nvl": GPUKind("NVIDIA H100 NVL 94GB", "H100 NVL", 3.9),
    "h100-pcie": GPUKind("NVIDIA H100 PCIe 80GB", "H100 PCIe", 2.0),
    "a100": GPUKind("NVIDIA A100 SXM 80GB", "A100", 2.039),
    "l40s": GPUKind("NVIDIA L40S 48GB", "L40S", 0.864),
    "a10g": GPUKind("NVIDIA A10G 24GB", "A10G", 0.6),
    "rtx4090": GPUKind("NVIDIA GeForce RTX 4090 24GB", "RTX 4090", 1.008),
}
# what a stage's speed follows when carried to another GPU kind
SCALES_WITH = {"pretrain": "bf16 dense TFLOP/s", "sample": "HBM bandwidth"}


@dataclass(frozen=True)
class Row:
    stage: str
    model: str
    gpu: str
    tokens_per_s: float
    transformer_tokens_per_s: float
    date: str
    commit: str
    current: bool
    report: str  # the file under benchmarks/reports/ the figures are copied from
    stale: str | None = None
    note: str | None = None
    ref: int = 0  # its number in the plan's list of figures: [ref]

    @property
    def ratio(self) -> float:
        return self.tokens_per_s / self.transformer_tokens_per_s

    def describe(self) -> str:
        """The figure in full, as the plan's footnote [ref] prints it."""
        same = (f", {self.ratio:.3f}x the Transformer's {self.transformer_tokens_per_s:,.0f} in the same call"
                if self.model != "transformer" else "")
        state = "current" if self.current else f"STALE: {self.stale}"
        return (f"[{self.ref}] {self.stage} {self.model} on {self.gpu}: {self.tokens_per_s:,.0f} tok/s{same}; "
                f"{self.date}, {self.commit}; {self.report}; {state}"
                + (f" ({self.note})" if self.note else ""))


@dataclass(frozen=True)
class Rate:
    tokens_per_s: float
    kind: str  # measured | stale | ratio | sibling | scaled
    how: str  # one sentence for the output
    rows: tuple[Row, ...]  # the figures it rests on

    @property
    def flagged(self) -> bool:
        """True unless it is a current figure of this model on this GPU kind."""
        return self.kind != "measured"


@dataclass(frozen=True)
class Table:
    shape: dict
    rows: tuple[Row, ...]

    def of(self, stage: str, model: str, gpu: str | None = None) -> list[Row]:
        return [r for r in self.rows if r.stage == stage and r.model == model and (gpu is None or r.gpu == gpu)]

    def models(self, stage: str) -> set[str]:
        return {r.model for r in self.rows if r.stage == stage}


def load_table(path: str | Path = TABLE_PATH) -> Table:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    rows = []
    for stage in STAGES:
        for i, r in enumerate(data.get(stage) or []):
            try:
                rows.append(Row(stage=stage, ref=len(rows) + 1, **{k: (str(v) if k == "date" else v) for k, v in r.items()}))
            except TypeError as e:
                raise PlanError(f"{path}: {stage}[{i}]: {e}") from None
            if r["gpu"] not in GPU_KINDS:
                raise PlanError(f"{path}: {stage}[{i}]: gpu {r['gpu']!r} is not one of {sorted(GPU_KINDS)}")
    return Table(shape=data["shape"], rows=tuple(rows))


@functools.lru_cache(maxsize=None)
def default_table() -> Table:
    return load_table()


def gpu_kind(name: str) -> GPUKind:
    try:
        return GPU_KINDS[name]
    except KeyError:
        raise PlanError(
            f"unknown GPU kind {name!r}: known kinds are {', '.join(GPU_KINDS)} "
            f"(add its datasheet bf16 TFLOP/s and HBM bandwidth to recall2reason.plan.table.GPU_KINDS)"
        ) from None


def _latest(rows: list[Row], prefer_gpu: str | None = None) -> Row:
    """The newest row, current ones first; on equal dates the target GPU's, then the table's order."""
    return max(rows, key=lambda r: (r.current, r.date, r.gpu == prefer_gpu))


def _scaled(stage: str, row: Row, gpu: str) -> float:
    src, dst = gpu_kind(row.gpu), gpu_kind(gpu)
    factor = (dst.bf16_tflops / src.bf16_tflops) if stage == "pretrain" else (dst.hbm_tb_s / src.hbm_tb_s)
    return row.tokens_per_s * factor


def anchor(table: Table, stage: str, gpu: str) -> Rate:
    """The Transformer's rate on ``gpu``: every other model's ratio multiplies it."""
    gpu_kind(gpu)
    here = table.of(stage, "transformer", gpu)
    if here:
        r = _latest(here)
        if r.current:
            return Rate(r.tokens_per_s, "measured", f"measured [{r.ref}]", (r,))
        return Rate(r.tokens_per_s, "stale", f"STALE [{r.ref}]", (r,))
    rows = table.of(stage, "transformer")
    if not rows:
        raise PlanError(f"no Transformer figure for {stage} on any GPU kind in the throughput table")
    r = _latest(rows)
    src, dst = gpu_kind(r.gpu), gpu_kind(gpu)
    a, b = ((src.bf16_tflops, dst.bf16_tflops) if stage == "pretrain" else (src.hbm_tb_s, dst.hbm_tb_s))
    how = (f"SCALED from {r.gpu} x {b:g}/{a:g} ({SCALES_WITH[stage]}, datasheet: an assumption), "
           + ("" if r.current else "STALE ") + f"[{r.ref}]")
    return Rate(_scaled(stage, r, gpu), "scaled", how, (r,))


def resolve(table: Table, stage: str, model: str, gpu: str, mixer_class: str | None = None,
            recurrent_pct: float | None = None) -> Rate:
    """The rate of ``model`` in ``stage`` on ``gpu``, marked by where it comes from (module docstring).
    ``mixer_class`` and ``recurrent_pct`` find a sibling for a model without a figure."""
    if stage not in STAGES:
        raise PlanError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    if model == "transformer" or mixer_class == "transformer":
        return anchor(table, stage, gpu)
    here = [r for r in table.of(stage, model, gpu) if r.current]
    if here:
        r = _latest(here)
        return Rate(r.tokens_per_s, "measured", f"measured [{r.ref}]", (r,))
    rows = table.of(stage, model)
    if rows:
        r = _latest(rows, prefer_gpu=gpu)
        base = anchor(table, stage, gpu)
        marks = ([] if r.current else ["STALE"]) + ([f"on {r.gpu}"] if r.gpu != gpu else [])
        how = f"RATIO {r.ratio:.3f}x [{r.ref}]" + (f" ({', '.join(marks)})" if marks else "") + f" x the Transformer on {gpu}"
        return Rate(r.ratio * base.tokens_per_s, "ratio", how, (r, *base.rows))
    if mixer_class is None or recurrent_pct is None:
        raise PlanError(f"{stage}: no figure of {model!r} and no class / share to find a sibling by")
    sibling = _sibling(table, stage, model, gpu, mixer_class, recurrent_pct)
    if sibling is None:
        raise PlanError(f"{stage}: no figure of {model!r} nor of any {mixer_class} model in the throughput table")
    name, rate = sibling
    how = f"never measured; SIBLING {name}'s: {rate.how}"
    return Rate(rate.tokens_per_s, "sibling", how, rate.rows)


def recurrent_share(name: str) -> float | None:
    """The recurrent share in percent that a study model's name carries (``gla75`` -> 75)."""
    digits = name.lstrip("abcdefghijklmnopqrstuvwxyz")
    return float(digits) if digits.isdigit() and name[: -len(digits)].isalpha() else None


def _sibling(table: Table, stage: str, model: str, gpu: str, mixer_class: str, pct: float):
    candidates = []
    for name in sorted(table.models(stage)):
        share = recurrent_share(name)
        if name != model and name.startswith(mixer_class) and name[len(mixer_class):].isdigit() and share is not None:
            rate = resolve(table, stage, name, gpu)
            candidates.append((abs(share - pct), rate.tokens_per_s, name, rate))  # tie: the slower first
    if not candidates:
        return None
    _, _, name, rate = min(candidates, key=lambda c: (c[0], c[1]))
    return name, rate
