"""Expected calls, tokens and dollars of a judge run, before anything is spent.

Token counts are estimated as characters / 4 (no Gemini tokenizer offline); the judge's
answer is assumed ``judge.est_output_tokens`` long. With ``--samples`` (and ``--vote``) the
real completions of one model are used and answers already in ``--cache`` are not counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from recall2reason.common import formats, read_jsonl
from recall2reason.judge.backends.base import Item
from recall2reason.judge.config import JudgeConfig
from recall2reason.judge.prompt import render, template
from recall2reason.judge.outcome import item_key
from recall2reason.judge.run import dollars, load_items

CHARS_PER_TOKEN = 4.0


def uncached(cfg: JudgeConfig, items: list[Item], cache_dir: Optional[str | Path]) -> list[Item]:
    """The items whose answers are not yet in ``cache_dir`` (all of them without a cache)."""
    if cache_dir is None or cfg.backend == "rules" or not (Path(cache_dir) / "judge.sqlite").exists():
        return items
    from recall2reason.judge.cache import JudgeCache

    cache = JudgeCache(cache_dir)
    done = cache.keys()
    cache.close()
    return [it for it in items if item_key(cfg, it) not in done]


def estimate_items(cfg: JudgeConfig, items: list[Item], name: str, cache_dir: Optional[str | Path] = None) -> dict:
    """Expected calls, tokens and dollars of judging ``items`` (those in the cache cost nothing)."""
    todo = uncached(cfg, items, cache_dir)
    per_set = [{"eval": name, "calls": len(todo), "tokens_in": int(sum(len(it.prompt) for it in todo) / CHARS_PER_TOKEN),
                "tokens_out": len(todo) * cfg.est_output_tokens}]  # fmt: skip
    return summarize(cfg, per_set, 1)


def estimate(
    cfg: JudgeConfig,
    eval_paths: list[str | Path],
    n_models: int = 1,
    completion_tokens: int = 300,
    sample_paths: Optional[list[str | Path]] = None,
    vote_path: Optional[str | Path] = None,
    cache_dir: Optional[str | Path] = None,
) -> dict:
    if sample_paths:
        if len(eval_paths) != 1 or vote_path is None:
            raise ValueError("--samples needs exactly one --eval file and its --vote file")
        return estimate_items(cfg, load_items(cfg, eval_paths[0], sample_paths, vote_path), str(eval_paths[0]), cache_dir)
    sets = [(str(path), list(read_jsonl(path, formats.EVAL_SET))) for path in eval_paths]
    return estimate_sets(cfg, sets, n_models, completion_tokens)


def estimate_sets(cfg: JudgeConfig, sets: list[tuple[str, list[dict]]], n_models: int = 1,
                  completion_tokens: int = 300) -> dict:
    """``estimate`` for eval sets already in memory: (name, problem rows) pairs, each completion
    assumed ``completion_tokens`` long (the study's plan calls this before any file exists)."""
    per_set = []
    for name, problems in sets:
        calls = len(problems) * cfg.first_k * n_models
        base = sum(len(render(p["question"], p.get("reference_solution") or "", "")) for p in problems)
        chars = (base * cfg.first_k + calls // max(n_models, 1) * completion_tokens * CHARS_PER_TOKEN) * n_models
        per_set.append({"eval": name, "calls": calls, "tokens_in": int(chars / CHARS_PER_TOKEN),
                        "tokens_out": calls * cfg.est_output_tokens})  # fmt: skip
    return summarize(cfg, per_set, n_models)


def summarize(cfg: JudgeConfig, per_set: list[dict], n_models: int) -> dict:
    if cfg.backend == "rules":
        for s in per_set:
            s["calls"] = s["tokens_in"] = s["tokens_out"] = 0  # offline: nothing is asked
    calls = sum(s["calls"] for s in per_set)
    tin = sum(s["tokens_in"] for s in per_set) if calls else 0
    tout = sum(s["tokens_out"] for s in per_set) if calls else 0
    paid = cfg.backend == "gemini"
    return {
        "backend": cfg.backend,
        "judge_model": cfg.model,
        "first_k": cfg.first_k,
        "models": n_models,
        "per_eval_set": per_set,
        "calls": calls,
        "tokens_in": tin,
        "tokens_out": tout,
        "dollars_online": round(dollars(cfg, tin, tout), 2) if paid else 0.0,
        "dollars_batch": round(dollars(cfg, tin, tout, batch=True), 2) if paid else 0.0,
        "minutes_at_rate_limit": round(calls / cfg.requests_per_minute, 1),
        "template_chars": len(template()),
        "note": "tokens estimated as chars/4" + ("" if paid else "; prices apply to the gemini backend only"),
    }


def format_estimate(est: dict) -> str:
    lines = [
        f"judge estimate: backend={est['backend']} model={est['judge_model']} first_k={est['first_k']} "
        f"models={est['models']}"
    ]
    for s in est["per_eval_set"]:
        lines.append(f"  {s['eval']}: {s['calls']:,} calls, ~{s['tokens_in']:,} tokens in, ~{s['tokens_out']:,} out")
    lines.append(
        f"  total: {est['calls']:,} calls, ~{est['tokens_in']:,} in / ~{est['tokens_out']:,} out tokens; "
        f"${est['dollars_online']:.2f} online, ${est['dollars_batch']:.2f} with the Batch API; "
        f"~{est['minutes_at_rate_limit']} min at the rate limit ({est['note']})"
    )
    return "\n".join(lines)
