"""``python -m recall2reason.judge validate``: a judge backend measured on the validation set.

Every item of the set (:mod:`recall2reason.judge.validation_set`: completions with one injected
error of known category) is judged the way the study judges a completion: same prompt, same
cache and ledger, ``is_correct`` from the vote stage's extractor and math-verify for the
``rules`` backend. The cost is estimated first (as ``estimate`` does) and the run refused above
``--max-dollars``. Reported: the confusion matrix (rows: injected category, columns: the judge's),
per-category precision / recall / F1, Cohen's kappa over the 9 labels and over the groups, the
``is_correct`` agreement, the categories the backend says it cannot detect, the cost and, with
``--repeats N``, how stable the judge's label is when the same completion is judged N times
(``judge.temperature`` > 0 samples it; at 0 only a server's own nondeterminism shows).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Optional

from recall2reason.judge.agreement import cohen_kappa, confusion, per_label, repeat_agreement
from recall2reason.judge.backends import Backend, Item, make_backend
from recall2reason.judge.cache import JudgeCache
from recall2reason.judge.categories import ALL_LABELS, NO_ERROR, group_of
from recall2reason.judge.config import JudgeConfig
from recall2reason.judge.estimate import estimate_items
from recall2reason.judge.prompt import render
from recall2reason.judge.outcome import Tally
from recall2reason.judge.run import judge_items, make_ledger, row_of
from recall2reason.judge.validation_set import DEFAULT_PATH, load
from recall2reason.vote.extract import cut_completion, extract_answer, parse_gold, verify_pair

log = logging.getLogger("recall2reason.judge")

JUDGE_FAILED = "Judge error"  # the judge's answer was unusable or never came
SHORT = {
    "Key-Value Binding Error": "KV", "State Tracking Error": "ST", "Context Synthesis Error": "CS",
    "Procedural Retrieval Error": "PR", "Conceptual Knowledge Gap": "CK", "Flawed Logical Synthesis": "FLS",
    "Calculation Error": "CALC", "Goal Interpretation Error": "GI", NO_ERROR: "NONE", JUDGE_FAILED: "ERR",
}  # fmt: skip


class ValidationRefused(RuntimeError):
    """The estimated cost is above ``--max-dollars``; nothing was asked."""


def validation_items(rows: list[dict], timeout_s: float = 5) -> list[Item]:
    """Judge inputs of the validation rows, with math-verify's verdict as the vote stage gives it."""
    items = []
    for r in rows:
        completion = cut_completion(r["completion"]).strip()
        pred = extract_answer(completion, timeout_s)
        gold = parse_gold(r["gold"], r["answer_style"], timeout_s)
        items.append(Item(
            problem_id=r["id"], sample_idx=0, question=r["question"], reference_solution=r["reference_solution"],
            gold=r["gold"], completion=completion, prompt=render(r["question"], r["reference_solution"], completion),
            verify_correct=bool(pred and gold and verify_pair(gold, pred, timeout_s)),
            extracted_answer=pred.key if pred else None, answer_style=r["answer_style"],
        ))  # fmt: skip
    return items


def label_of(row: dict) -> str:
    return JUDGE_FAILED if row["error_category"] is None else row["error_category"]


def group_label(label: str) -> str:
    return "Error" if label == JUDGE_FAILED else group_of(label)


def agreement_with_truth(truth: list[str], pred: list[str], truth_correct: list[bool], judged_correct: list) -> dict:
    return {
        "items": len(truth),
        "accuracy": sum(t == p for t, p in zip(truth, pred)) / len(truth),
        "cohen_kappa": cohen_kappa(truth, pred),
        "cohen_kappa_groups": cohen_kappa([group_of(t) for t in truth], [group_label(p) for p in pred]),
        "is_correct_agreement": sum(j is t for j, t in zip(judged_correct, truth_correct)) / len(truth),
        "judge_errors": sum(p == JUDGE_FAILED for p in pred),
    }


def validate(
    cfg: JudgeConfig,
    set_path: str | Path = DEFAULT_PATH,
    cache_dir: Optional[str | Path] = "results/.cache/judge",  # paid backends only
    repeats: int = 1,
    max_dollars: float = 5.0,
    backend: Optional[Backend] = None,
    on_estimate=None,
) -> dict:
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    rows = load(set_path)
    backend = backend or make_backend(cfg)
    if not backend.paid and repeats > 1:
        log.info("the %s backend is deterministic: judging each item once, not %d times", cfg.backend, repeats)
        repeats = 1
    base = validation_items(rows)
    items = [dataclasses.replace(it, repeat=r) for r in range(repeats) for it in base]
    est = estimate_items(cfg, items, str(set_path), cache_dir if backend.paid else None)
    if on_estimate is not None:
        on_estimate(est)
    if est["dollars_online"] > max_dollars:
        raise ValidationRefused(
            f"estimated ${est['dollars_online']:.2f} for {est['calls']} calls is above --max-dollars {max_dollars}"
        )

    t0 = time.time()
    tally = Tally()
    cache = JudgeCache(cache_dir) if backend.paid else None
    try:
        outcomes = asyncio.run(judge_items(cfg, items, backend, cache, tally))
    finally:
        if cache is not None:
            cache.close()
    by_key = {(o.item.problem_id, o.item.repeat): o for o in outcomes}
    judged = [[row_of(cfg, by_key[r["id"], k]) for k in range(repeats)] for r in rows]
    ledger = make_ledger(cfg, "validation", Path(set_path).stem, outcomes,
                         [row for per_item in judged for row in per_item], tally, time.time() - t0, backend.coverage)  # fmt: skip

    truth = [r["label"] for r in rows]
    truth_correct = [r["label"] == NO_ERROR for r in rows]
    first = [label_of(j[0]) for j in judged]
    report = {
        "set": str(set_path),
        "backend": cfg.backend,
        "judge_model": ledger["judge_model"],
        "temperature": cfg.temperature,
        "repeats": repeats,
        "coverage": list(backend.coverage),
        "estimate": est,
        "overall": agreement_with_truth(truth, first, truth_correct, [j[0]["is_correct"] for j in judged]),
        "math_verify_is_correct_agreement": sum(it.verify_correct is c for it, c in zip(base, truth_correct)) / len(rows),
        "by_answer_style": {},
        "confusion": confusion(truth, first, list(ALL_LABELS)),
        "per_label": per_label(truth, first, list(ALL_LABELS)),
        "cost": {k: ledger[k] for k in ("calls_this_run", "cache_hits", "tokens_in_this_run", "tokens_out_this_run",
                                        "dollars_this_run", "dollars_total", "api_failures")},  # fmt: skip
        "ledger": ledger,
        "items": [{"id": r["id"], "label": r["label"], "judged": [label_of(j) for j in per_item]}
                  for r, per_item in zip(rows, judged)],  # fmt: skip
    }
    for style in sorted({r["answer_style"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["answer_style"] == style]
        report["by_answer_style"][style] = agreement_with_truth(
            [truth[i] for i in idx], [first[i] for i in idx], [truth_correct[i] for i in idx],
            [judged[i][0]["is_correct"] for i in idx])  # fmt: skip
    if repeats > 1:
        ratings = [[label_of(j) for j in per_item] for per_item in judged]
        stability = repeat_agreement(ratings)
        kappas = [cohen_kappa(truth, [r[k] for r in ratings]) for k in range(repeats)]
        stability["cohen_kappa_per_repeat"] = {"min": min(kappas), "mean": sum(kappas) / repeats, "max": max(kappas)}
        report["repeat_stability"] = stability
    return report


def _pct(x: Optional[float]) -> str:
    return "   -" if x is None else f"{100 * x:4.0f}"


def format_report(rep: dict) -> str:
    o = rep["overall"]
    lines = [
        f"judge validation: backend={rep['backend']} model={rep['judge_model']} temperature={rep['temperature']} "
        f"repeats={rep['repeats']}, {o['items']} items of {rep['set']}",
    ]
    for note in rep["coverage"]:
        lines.append(f"  the {rep['backend']} backend detects {note}")
    columns = list(next(iter(rep["confusion"].values())))
    lines.append("  confusion matrix (rows: injected category, columns: the judge's label):")
    lines.append("    " + f"{'':>5}" + "".join(f"{SHORT.get(c, c)[:5]:>6}" for c in columns))
    for t, row in rep["confusion"].items():
        lines.append("    " + f"{SHORT[t]:>5}" + "".join(f"{row[c]:>6}" for c in columns))
    lines.append("  per category:      precision  recall  F1 (%)  support")
    for lab, m in rep["per_label"].items():
        lines.append(f"    {lab:<28}{_pct(m['precision'])}  {_pct(m['recall'])}  {_pct(m['f1'])}  {m['support']:>5}")
    for name, a in [("all", o), *rep["by_answer_style"].items()]:
        lines.append(f"  {name}: {a['items']} items, accuracy {100 * a['accuracy']:.1f} %, Cohen's kappa "
                     f"{a['cohen_kappa']:.3f} (groups A/B/C/None: {a['cohen_kappa_groups']:.3f}), is_correct agreement "
                     f"{100 * a['is_correct_agreement']:.1f} %, judge errors {a['judge_errors']}")  # fmt: skip
    mv = rep["math_verify_is_correct_agreement"]
    lines.append(f"  math-verify's is_correct agrees with the labels on {100 * mv:.1f} % of the items")
    if "repeat_stability" in rep:
        s = rep["repeat_stability"]
        k = s["cohen_kappa_per_repeat"]
        lines.append(f"  repeat stability ({s['repeats']} judgements per item): the most common label gets "
                     f"{100 * s['mean_modal_share']:.1f} % of them on average, {100 * s['unanimous_share']:.1f} % of items "
                     f"always get the same label, Fleiss' kappa {s['fleiss_kappa']:.3f}; kappa vs truth per repeat "
                     f"{k['min']:.3f}..{k['max']:.3f} (mean {k['mean']:.3f})")  # fmt: skip
    c = rep["cost"]
    lines.append(f"  cost: {c['calls_this_run']} calls this run ({c['cache_hits']} cache hits), {c['tokens_in_this_run']} in / "
                 f"{c['tokens_out_this_run']} out tokens, ${c['dollars_this_run']:.4f} this run, "
                 f"${c['dollars_total']:.4f} for all answers behind it; {c['api_failures']} API failures")  # fmt: skip
    return "\n".join(lines)


def format_markdown(rep: dict) -> str:
    """The report's tables in Markdown (``tables/judge_validation.md`` of the DAG)."""
    o = rep["overall"]
    out = [f"**The judge against known labels**: backend `{rep['backend']}` (`{rep['judge_model']}`), {o['items']} "
           f"validation items, Cohen's kappa **{o['cohen_kappa']:.3f}** (groups {o['cohen_kappa_groups']:.3f}), "
           f"accuracy {100 * o['accuracy']:.1f} %, is_correct agreement {100 * o['is_correct_agreement']:.1f} %, "
           f"judge errors {o['judge_errors']}.", ""]  # fmt: skip
    for note in rep["coverage"]:
        out.append(f"The `{rep['backend']}` backend detects {note}.")
    if "repeat_stability" in rep:
        s = rep["repeat_stability"]
        out.append(f"Judged {s['repeats']} times per item: the same label throughout for {100 * s['unanimous_share']:.1f} % "
                   f"of the items, Fleiss' kappa {s['fleiss_kappa']:.3f}.")  # fmt: skip
    out += ["", "| injected \\ judged | " + " | ".join(SHORT.get(c, c) for c in next(iter(rep["confusion"].values()))) + " |",
            "|:--|" + "--:|" * len(next(iter(rep["confusion"].values())))]  # fmt: skip
    for t, row in rep["confusion"].items():
        out.append(f"| {t} | " + " | ".join(str(v) for v in row.values()) + " |")
    out += ["", "| category | precision % | recall % | F1 % | items |", "|:--|--:|--:|--:|--:|"]
    for lab, m in rep["per_label"].items():
        cells = [_pct(m[k]).strip() for k in ("precision", "recall", "f1")]
        out.append(f"| {lab} | {' | '.join(cells)} | {m['support']} |")
    c = rep["cost"]
    out += ["", f"Cost: {c['calls_this_run']} calls this run ({c['cache_hits']} cache hits), "
                f"${c['dollars_total']:.4f} for all answers behind it."]  # fmt: skip
    return "\n".join(out) + "\n"


__all__ = ["ValidationRefused", "format_markdown", "format_report", "validate", "validation_items"]
