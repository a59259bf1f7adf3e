"""Eval sets: GSM8K test, MATH-500 (Hub or local copies) and synthetic stand-ins.

Each problem becomes one row ``{"id", "question", "prompt", "gold", "answer_style",
"reference_solution", "subject", "level"}``; ``prompt`` uses the training template and
``gold`` is the raw gold string (GSM8K: text after ``####``; MATH: the ``answer`` field),
left for the vote stage to parse according to ``answer_style``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

from recall2reason.common import ConfigError, read_jsonl
from recall2reason.data import synthetic
from recall2reason.data.template import format_prompt

log = logging.getLogger("recall2reason.data")


@dataclass
class EvalSetConfig:
    format: Literal["gsm8k", "math500", "synthetic_gsm8k", "synthetic_math"]
    hub_id: str | None = None
    hub_config: str | None = None
    split: str = "test"
    path: str | None = None   # local jsonl / parquet in the Hub schema (wins over hub_id)
    limit: int | None = None  # first N problems
    n: int | None = None      # synthetic: problems to generate
    seed: int = 4321          # synthetic: seed of the eval stream (never the training stream)


def gsm8k_gold(answer: str, where: str = "") -> str:
    if "####" not in answer:
        raise ValueError(f"{where}: GSM8K answer has no '####' line: {answer[-80:]!r}")
    return answer.rsplit("####", 1)[1].strip()


def build_eval_rows(name: str, cfg: EvalSetConfig) -> list[dict]:
    rows = []
    for i, rec in enumerate(_records(name, cfg)):
        if cfg.limit is not None and i >= cfg.limit:
            break
        rows.append(_row(name, cfg.format, i, rec))
    if not rows:
        raise ConfigError(f"eval.{name}: no problems read (path {cfg.path!r}, hub_id {cfg.hub_id!r})")
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"eval.{name}: duplicate problem ids")
    return rows


def _row(name: str, fmt: str, i: int, rec: dict) -> dict:
    where = f"eval.{name} row {i}"
    try:
        if fmt in ("gsm8k", "synthetic_gsm8k"):
            q, sol = rec["question"], rec["answer"]
            return {"id": f"{name}-{i:05d}", "question": q, "prompt": format_prompt(q), "gold": gsm8k_gold(sol, where),
                    "answer_style": "gsm8k", "reference_solution": sol, "subject": None, "level": None}
        q = rec["problem"]
        level = rec.get("level")
        if isinstance(level, str) and level.startswith("Level "):  # MATH train/test files say "Level 3"
            level = int(level.split()[1]) if level.split()[1].isdigit() else None
        return {"id": rec.get("unique_id") or f"{name}-{i:05d}", "question": q, "prompt": format_prompt(q),
                "gold": str(rec["answer"]), "answer_style": "math", "reference_solution": rec.get("solution"),
                "subject": rec.get("subject") or rec.get("type"), "level": level}
    except KeyError as e:
        raise ConfigError(f"{where}: missing field {e.args[0]!r} for format {fmt} (fields: {sorted(rec)})") from None


def _records(name: str, cfg: EvalSetConfig) -> Iterator[dict]:
    if cfg.format.startswith("synthetic"):
        if not cfg.n:
            raise ConfigError(f"eval.{name}.n is required for format {cfg.format}")
        yield from synthetic.generate(cfg.format.removeprefix("synthetic_"), cfg.n, cfg.seed, stream="eval")
    elif cfg.path:
        p = Path(cfg.path)
        if not p.is_file():
            raise FileNotFoundError(f"eval.{name}.path: no such file {p}")
        if p.suffix == ".parquet":
            import pyarrow.parquet as pq

            yield from pq.read_table(p).to_pylist()
        else:
            yield from read_jsonl(p, f"one problem per line: a JSON object in the {cfg.format} schema (eval.{name}.format)")
    elif cfg.hub_id:
        import datasets  # network unless cached

        log.info("loading eval set %s from the Hub: %s (%s, %s)", name, cfg.hub_id, cfg.hub_config, cfg.split)
        yield from datasets.load_dataset(cfg.hub_id, cfg.hub_config, split=cfg.split)
    else:
        raise ConfigError(f"eval.{name}: set path (local file), hub_id, or a synthetic format")
