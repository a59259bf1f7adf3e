"""The vote stage: sample files + eval set -> per-problem votes, accuracy curves, breakdown.

    python -m recall2reason.vote --cfg '{"workers": 0, "timeout_s": 5, "bootstrap": 1000, "seed": 0}' \\
        --eval results/data/eval/gsm8k.jsonl --n 64 \\
        --samples results/samples/M/gsm8k/part-0.jsonl [part-1.jsonl ...] \\
        --out-problems results/vote/M/gsm8k.problems.jsonl \\
        --out-curves results/vote/M/gsm8k.curves.csv \\
        --out-breakdown results/vote/M/gsm8k.breakdown.csv
"""

from __future__ import annotations

import csv
import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from recall2reason.common import ConfigError, InputFileError, atomic_write, from_dict, jsonl_lines, load_cfg_arg, write_jsonl
from recall2reason.common import formats
from recall2reason.common.cli import setup_logging, stage_parser
from recall2reason.vote.cluster import score_problem
from recall2reason.vote.estimators import bootstrap_ci
from recall2reason.vote.extract import Stats

log = logging.getLogger("recall2reason.vote")

EVAL_KEYS = ("id", "gold", "answer_style")
SAMPLE_KEYS = ("problem_id", "sample_idx", "text")
METRICS = ("maj_exact", "maj_first", "pass_k")


@dataclass(frozen=True)
class VoteConfig:
    workers: int = 0  # processes for math-verify; 0: all cores, 1: in this process
    timeout_s: float = 5  # per math-verify call (signal.alarm, rounded up to whole seconds)
    bootstrap: int = 1000  # resamples of problems for 95 % intervals; 0: none (lo = hi = mean)
    seed: int = 0  # bootstrap RNG

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"vote.workers must be >= 0, got {self.workers}")
        if self.timeout_s <= 0:
            raise ConfigError(f"vote.timeout_s must be > 0, got {self.timeout_s}")
        if self.bootstrap < 0:
            raise ConfigError(f"vote.bootstrap must be >= 0, got {self.bootstrap}")


class VoteInputError(InputFileError):
    """An eval or sample file is malformed or incomplete; the message names the file."""



# ---------------------------------------------------------------------------- inputs


def load_eval(path: str | os.PathLike) -> list[dict]:
    rows, seen = [], set()
    for lineno, row in jsonl_lines(path, formats.EVAL_SET):
        at = f"{path}:{lineno}"
        missing = [k for k in EVAL_KEYS if k not in row]
        if missing:
            raise VoteInputError(f"{at}: row lacks key(s) {missing}; expected {formats.EVAL_SET}")
        if row["answer_style"] not in ("gsm8k", "math"):
            raise VoteInputError(f"{at} (id {row['id']!r}): answer_style must be 'gsm8k' or 'math', got {row['answer_style']!r}")
        if not isinstance(row["gold"], str):
            raise VoteInputError(f"{at} (id {row['id']!r}): gold must be a string")
        if row["id"] in seen:
            raise VoteInputError(f"{at}: duplicate problem id {row['id']!r}")
        seen.add(row["id"])
        rows.append(row)
    if not rows:
        raise VoteInputError(f"{path}: no problems in the eval set (empty file?)")
    return rows


def load_samples(paths: Sequence[str | os.PathLike], problem_ids: Sequence[Any], n: int) -> dict[Any, list[str]]:
    """texts[problem_id][sample_idx] from all part files; every problem must have 0..n-1 once."""
    known = set(problem_ids)
    texts: dict[Any, list[str | None]] = {pid: [None] * n for pid in problem_ids}
    where: dict[tuple[Any, int], str] = {}
    for path in paths:
        for lineno, row in jsonl_lines(path, formats.SAMPLES):
            at = f"{path}:{lineno}"
            missing = [k for k in SAMPLE_KEYS if k not in row]
            if missing:
                raise VoteInputError(f"{at}: row lacks key(s) {missing}; expected {formats.SAMPLES}")
            pid, idx = row["problem_id"], row["sample_idx"]
            if pid not in known:
                raise VoteInputError(f"{at}: problem_id {pid!r} is not in the eval set")
            if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < n:
                raise VoteInputError(f"{at}: sample_idx {idx!r} is not an integer in [0, {n})")
            if not isinstance(row["text"], str):
                raise VoteInputError(f"{at}: text must be a string")
            if (pid, idx) in where:
                raise VoteInputError(f"duplicate sample (problem_id {pid!r}, sample_idx {idx}) in {where[pid, idx]} and {at}")
            where[pid, idx] = at
            texts[pid][idx] = row["text"]
    incomplete = {pid: [i for i, t in enumerate(ts) if t is None] for pid, ts in texts.items()}
    incomplete = {pid: idx for pid, idx in incomplete.items() if idx}
    if incomplete:
        examples = "; ".join(
            f"{pid!r}: {len(idx)} missing (e.g. {idx[:5]})" for pid, idx in list(incomplete.items())[:5]
        )
        raise VoteInputError(
            f"{len(incomplete)} of {len(texts)} problems lack samples (expected sample_idx 0..{n - 1} "
            f"for every problem across the part file(s) {', '.join(map(str, paths))}): {examples}"
        )
    return texts  # type: ignore[return-value]


# ---------------------------------------------------------------------------- scoring


def _init_worker() -> None:
    # math-verify logs the whole text on a parse timeout; we count timeouts instead.
    logging.getLogger("math_verify").setLevel(logging.ERROR)


def score_all(tasks: list[dict], workers: int) -> Iterator[dict]:
    """score_problem over tasks in order; a process pool unless workers == 1."""
    if workers == 1:
        _init_worker()
        yield from map(score_problem, tasks)
        return
    # spawn: fresh interpreters, no forked locks/threads; each worker's main thread runs
    # math-verify, so its signal.alarm timeouts work.
    with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(score_problem, tasks, chunksize=1)


def resolve_workers(workers: int, threads: int | None = None) -> int:
    """vote.workers, or for 0 the job's threads (``--threads``), else every core this process may use."""
    if workers:
        return workers
    if threads:
        return threads
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------- outputs


def _fmt(x: float) -> str:
    return f"{x:.6f}"


def write_curves(path: str | os.PathLike, curves: dict[str, np.ndarray], n_boot: int, seed: int) -> dict:
    """curves.csv: mean and bootstrap interval over problems for every k; returns the table."""
    table = {}
    for m in METRICS:
        table[m] = bootstrap_ci(curves[m], n_boot, seed)
    n = curves["maj_exact"].shape[1]
    with atomic_write(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(["k"] + [f"{m}{s}" for m in METRICS for s in ("", "_lo", "_hi")])
        for k in range(1, n + 1):
            w.writerow([k] + [_fmt(v[k - 1]) for m in METRICS for v in table[m]])
    return table


def breakdown_ks(n: int) -> list[int]:
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return ks + [n]


def write_breakdown(path: str | os.PathLike, rows: list[dict], curves: dict[str, np.ndarray]) -> None:
    """breakdown.csv: accuracy per subject / level (MATH500) and overall, at k = 1, 2, 4, .., n, and
    the slice's share of completions without an answer (the same at every k)."""
    n = curves["maj_exact"].shape[1]
    no_answer = np.array([r["no_answer"] / r["n"] for r in rows])
    slices: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(len(rows), dtype=bool))]
    for by in ("subject", "level"):
        values = sorted({r.get(by) for r in rows if r.get(by) is not None}, key=str)
        for v in values:
            slices.append((by, str(v), np.array([r.get(by) == v for r in rows])))
    with atomic_write(path, newline="") as f:
        w = csv.writer(f)
        w.writerow(["by", "value", "n_problems", "k", *METRICS, "no_answer"])
        for by, value, mask in slices:
            for k in breakdown_ks(n):
                w.writerow([by, value, int(mask.sum()), k] + [_fmt(curves[m][mask, k - 1].mean()) for m in METRICS]
                           + [_fmt(no_answer[mask].mean())])  # fmt: skip


# ---------------------------------------------------------------------------- stage


def run(
    cfg: VoteConfig,
    eval_path: str | os.PathLike,
    sample_paths: Sequence[str | os.PathLike],
    n: int,
    out_problems: str | os.PathLike,
    out_curves: str | os.PathLike,
    out_breakdown: str | os.PathLike,
    threads: int | None = None,
) -> dict:
    if n < 1:
        raise VoteInputError(f"--n must be >= 1, got {n}")
    problems = load_eval(eval_path)
    texts = load_samples(sample_paths, [p["id"] for p in problems], n)
    workers = resolve_workers(cfg.workers, threads)
    log.info("scoring %d problems x %d samples with %d worker(s)", len(problems), n, workers)
    tasks = [
        {
            "id": p["id"],
            "gold": p["gold"],
            "answer_style": p["answer_style"],
            "texts": texts[p["id"]],
            "timeout_s": cfg.timeout_s,
            "subject": p.get("subject"),
            "level": p.get("level"),
        }
        for p in problems
    ]
    del texts
    rows, stats = [], Stats()
    curves = {m: np.zeros((len(problems), n)) for m in METRICS}
    t0 = time.perf_counter()
    with tqdm(total=len(problems) * n, unit="completion", unit_scale=True, desc="vote", dynamic_ncols=True) as bar:
        for i, res in enumerate(score_all(tasks, workers)):
            rows.append(res["row"])
            for m in METRICS:
                curves[m][i] = res[m]
            stats.add(Stats(**res["stats"]))
            bar.update(n)
    wall = time.perf_counter() - t0

    no_gold = [r["id"] for r in rows if r["gold_parsed"] is None]
    if no_gold:
        log.warning("gold answer did not parse for %d problem(s) (scored wrong): %s", len(no_gold), no_gold[:10])
    n_none = sum(r["no_answer"] for r in rows)
    log.info(
        "%d completions in %.1f s (%.0f/s); no answer: %d (%.1f %%: %d state no answer, %d an unreadable one); "
        "parse timeouts: %d, parse errors: %d",
        len(rows) * n, wall, len(rows) * n / max(wall, 1e-9), n_none, 100 * n_none / (len(rows) * n),
        stats.no_ending, stats.unreadable, stats.parse_timeouts, stats.parse_errors,
    )  # fmt: skip

    write_jsonl(out_problems, rows)
    table = write_curves(out_curves, curves, cfg.bootstrap, cfg.seed)
    write_breakdown(out_breakdown, rows, curves)
    summary = {m: (float(table[m][0][0]), float(table[m][0][-1])) for m in METRICS}
    log.info("accuracy at k=1 / k=%d: %s", n, ", ".join(f"{m} {a:.4f} / {b:.4f}" for m, (a, b) in summary.items()))
    return {"problems": len(rows), "completions": len(rows) * n, "wall_s": wall, **stats.__dict__}


def main(argv: Sequence[str] | None = None) -> int:
    p = stage_parser(
        "python -m recall2reason.vote",
        "Extract final answers (the last \\boxed{}, 'The answer is' or '####' ending, parsed by math-verify), "
        "cluster equal answers, and compute majority-vote (maj@k), "
        "first-k majority and pass@k curves with bootstrap intervals.",
    )
    p.add_argument("--eval", required=True, help="eval set jsonl (data/eval/<dataset>.jsonl)")
    p.add_argument("--samples", required=True, nargs="+", help="sample part files (samples/<model>/<dataset>/part-*.jsonl)")
    p.add_argument("--n", required=True, type=int, help="samples per problem (sample.n); every problem must have 0..n-1")
    p.add_argument("--out-problems", required=True, help="per-problem votes (<dataset>.problems.jsonl)")
    p.add_argument("--out-curves", required=True, help="accuracy vs k (<dataset>.curves.csv)")
    p.add_argument("--out-breakdown", required=True, help="accuracy per subject / level (<dataset>.breakdown.csv)")
    p.add_argument("--threads", type=int, default=None,
                   help="cores of this job (the rule's threads): the worker count when vote.workers is 0 (default: all cores)")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = from_dict(VoteConfig, load_cfg_arg(args.cfg), "vote")
        for path in [args.eval, *args.samples]:
            if not Path(path).is_file():
                raise VoteInputError(f"input file not found: {path}")
        run(cfg, args.eval, args.samples, args.n, args.out_problems, args.out_curves, args.out_breakdown, args.threads)
    except (ConfigError, InputFileError) as e:
        log.error("%s", e)
        return 2
    return 0
