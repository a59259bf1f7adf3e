"""The probe stage: write the probe set; decode it greedily with one model; score and summarise.

One job per model runs every probe through the sample stage's engine (temperature 0), extracts
each answer with the vote stage's extractor and writes ``probes/<model>.jsonl`` (a row per probe)
and ``probes/<model>.summary.csv``. A job takes minutes on a GPU, so it keeps no resumable state.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from recall2reason.common import ConfigError, read_jsonl, write_jsonl
from recall2reason.probe.config import ProbeConfig
from recall2reason.probe.generate import probe_set
from recall2reason.probe.score import extract_answer, outcome, summary_rows, write_summary
from recall2reason.sample.config import SampleConfig

log = logging.getLogger("recall2reason.probe")

PROBE_KEYS = ("id", "kind", "k", "distance", "prompt", "gold", "stale", "other_keys", "distractors")


class ProbeInputError(ValueError):
    """The probe set file is malformed; the message names the file and line."""


def write_probe_set(cfg: ProbeConfig, out: str | os.PathLike) -> int:
    n = write_jsonl(out, probe_set(cfg))
    log.info("wrote %s: %d probes (seed %d)", out, n, cfg.seed)
    return n


def read_probe_set(path: str | os.PathLike) -> list[dict]:
    probes, seen = [], set()
    for lineno, row in enumerate(read_jsonl(path), 1):
        missing = [k for k in PROBE_KEYS if k not in row]
        if missing:
            raise ProbeInputError(f"{path}:{lineno}: probe lacks key(s) {missing}")
        if row["id"] in seen:
            raise ProbeInputError(f"{path}:{lineno}: duplicate probe id {row['id']!r}")
        seen.add(row["id"])
        probes.append(row)
    if not probes:
        raise ProbeInputError(f"{path}: no probes")
    return probes


def run_probes(
    cfg: ProbeConfig,
    engine_cfg: SampleConfig,
    timeout_s: float,
    *,
    model_dir: str | os.PathLike,
    tokenizer: str | os.PathLike,
    probes_path: str | os.PathLike,
    out: str | os.PathLike,
    summary: str | os.PathLike,
    device: str | None = None,
    progress: bool = True,
) -> list[dict]:
    from tqdm import tqdm

    from recall2reason.sample.engine import Request
    from recall2reason.sample.run import cold_start, make_engine, open_checkpoint, prompt_ids, resolve_device

    t0 = time.perf_counter()
    model_dir = Path(model_dir)
    probes = read_probe_set(probes_path)
    tok, meta = open_checkpoint(model_dir, tokenizer)
    name = meta.get("name") or model_dir.name
    prompts = [prompt_ids(tok, p["prompt"], engine_cfg.prompt_prefix) for p in probes]
    longest = max(range(len(probes)), key=lambda i: len(prompts[i]))
    context = meta["model"]["max_seq_len"]
    if len(prompts[longest]) + cfg.max_new_tokens > context:
        raise ConfigError(
            f"probe.ks / probe.max_new_tokens: probe {probes[longest]['id']} has {len(prompts[longest])} prompt tokens, "
            f"+ {cfg.max_new_tokens} new ones exceed the {context} positions of model {name} (max_seq_len)"
        )

    dev = resolve_device(device)
    engine = make_engine(model_dir, engine_cfg, dev, len(prompts[longest]), tok.eos_id)
    requests = [Request(i, prompt, seed=0) for i, prompt in enumerate(prompts)]  # greedy: the seed is unused
    texts: dict[int, tuple[str, int, str]] = {}
    new_tokens = 0
    with tqdm(total=len(requests), unit="probe", desc=f"probe {name}", disable=not progress, dynamic_ncols=True) as bar:
        for c in cold_start(engine, engine_cfg, engine.generate(requests)):
            texts[c.key] = (tok.decode(c.tokens), len(c.tokens), c.finish_reason)
            new_tokens += c.n_generated
            bar.update(1)
    t_gen = time.perf_counter() - t0

    rows = []
    for i, p in enumerate(probes):
        text, n_tokens, finish = texts[i]
        answer = extract_answer(text, timeout_s)
        rows.append({
            "id": p["id"], "kind": p["kind"], "k": p["k"], "distance": p["distance"], "gold": p["gold"],
            "answer": answer, "outcome": outcome(answer, p), "text": text, "n_tokens": n_tokens,
            "finish_reason": finish, "prompt_tokens": len(prompts[i]),
        })
    write_jsonl(out, rows)
    table = summary_rows(rows)
    write_summary(summary, table)
    overall = table[-1]
    log.info("%s: %d probes, recall accuracy %.3f [%.3f, %.3f]; %d new tokens in %.1f s on %s",
             name, len(rows), overall["accuracy"], overall["lo"], overall["hi"], new_tokens, t_gen, dev)
    return rows
