"""Throughput of the vote stage: completions scored per second per core, with realistic texts.

Completions are built from real solutions in ../shared/data, in the two styles our models are
trained to write: MATH solutions (LaTeX, final ``\\boxed{}``, like OpenMathInstruct-2) and GSM8K
solutions rewritten MetaMathQA-style (calculator annotations removed, ending "The answer is: N").
Each problem gets n samples spread over many answers (the right one, plausible wrong ones with
Zipf-like counts, 25 % a long tail of answers no other sample shares, 10 % no answer at all), and 40 % of them run on past their answer into
a new "Question: ... Answer: ..." up to ~1024 tokens, as length-capped samples do. The whole
stage (load, cut, parse, cluster, verify, curves, bootstrap, write) runs through
``recall2reason.vote.stage.run``.

    python benchmarks/vote_throughput.py --problems 40 --n 64 --workers 1
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

from recall2reason.vote.stage import VoteConfig, run

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TARGET_COMPLETIONS = 1_500_000
TARGET_CORES = 16


def gsm8k_style(answer: str) -> tuple[str, str]:
    body, gold = answer.split("####")
    body = re.sub(r"<<[^>]*>>", "", body).strip()
    return f" {body}\nThe answer is: {gold.strip()}", gold.strip()


def math_style(solution: str, gold: str) -> tuple[str, str]:
    return f" {solution.strip()}", gold


def with_answer(text: str, gold: str, wrong: str) -> str:
    """Replace the final answer (last occurrence of gold) by a wrong one."""
    i = text.rfind(gold)
    return text if i == -1 else text[:i] + wrong + text[i + len(gold):]


def tail_answer(rng: random.Random, style: str) -> str:
    a, b = rng.randint(1, 400), rng.randint(2, 60)
    if style == "gsm8k":
        return rng.choice([str(a * b), f"{a}.{b}", str(-a)])
    return rng.choice([f"\\frac{{{a}}}{{{b}}}", f"{a}\\sqrt{{{b}}}", f"{a}.{b}", f"\\frac{{{a}\\pi}}{{{b}}}",
                       f"x^2+{a}x+{b}", f"({a}, {b})"])


def make_problem(rng: random.Random, text: str, gold: str, style: str, n: int, filler: list[str]) -> list[str]:
    wrongs = [str(rng.randint(2, 999)) for _ in range(4)] if style == "gsm8k" else [
        "\\frac{1}{2}", "\\sqrt{2}", str(rng.randint(2, 99)), "2\\pi"]
    answers = [gold, *wrongs]
    weights = [rng.uniform(0.2, 0.6)] + [1 / (i + 1) for i in range(len(wrongs))]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.1:  # no answer: cut off mid-derivation
            t = text[: len(text) // 3]
        elif r < 0.35:  # the long tail: an answer no other sample shares
            t = with_answer(text, gold, tail_answer(rng, style))
        else:
            a = rng.choices(answers, weights)[0]
            t = with_answer(text, gold, a)
        if rng.random() < 0.4:  # ran on past its answer until max_new_tokens (~4 chars/token)
            t = t + "\n\nQuestion: " + rng.choice(filler)
            t = t[:4000]
        out.append(t)
    return out


def build(tmp: Path, problems: int, n: int, seed: int) -> list[tuple[str, Path, Path]]:
    rng = random.Random(seed)
    gsm = [json.loads(line) for line in open(DATA / "gsm8k" / "train.jsonl")]
    mth = [json.loads(line) for line in open(DATA / "math500" / "test.jsonl")]
    filler = [f"{r['question']}\nAnswer: {gsm8k_style(r['answer'])[0]}" * 3 for r in gsm[:200]]
    sets = []
    for style, rows in (("gsm8k", rng.sample(gsm, problems)), ("math", rng.sample(mth, problems))):
        evals, samples = [], []
        for i, r in enumerate(rows):
            text, gold = gsm8k_style(r["answer"]) if style == "gsm8k" else math_style(r["solution"], r["answer"])
            evals.append({"id": i, "question": "", "prompt": "", "gold": gold, "answer_style": style,
                          "reference_solution": "", "subject": r.get("subject"), "level": r.get("level")})
            for j, t in enumerate(make_problem(rng, text, gold, style, n, filler)):
                samples.append({"problem_id": i, "sample_idx": j, "text": t, "n_tokens": len(t) // 4,
                                "finish_reason": "length" if "Question:" in t else "eos", "seed": j})
        ev, sp = tmp / f"{style}.eval.jsonl", tmp / f"{style}.part-0.jsonl"
        ev.write_text("".join(json.dumps(x) + "\n" for x in evals))
        sp.write_text("".join(json.dumps(x) + "\n" for x in samples))
        sets.append((style, ev, sp))
    return sets


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the pool's workers): the machine is
    shared, so per-core throughput is completions per CPU second, not per wall second."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", type=int, default=40, help="problems per style")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--workers", type=int, nargs="+", default=[1])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sets = build(tmp, args.problems, args.n, args.seed)
        chars = {style: sum(len(json.loads(x)["text"]) for x in open(sp)) / (args.problems * args.n)
                 for style, _, sp in sets}
        print("| style | workers | completions | mean chars | wall s | CPU s | completions/s (wall) | completions per CPU s |")
        print("|---|---|---|---|---|---|---|---|")
        rates = {}
        for workers in args.workers:
            for style, ev, sp in sets:
                cfg = VoteConfig(workers=workers, timeout_s=5, bootstrap=1000, seed=0)
                t0, c0 = time.perf_counter(), cpu_seconds()
                res = run(cfg, ev, [sp], args.n, tmp / "o.jsonl", tmp / "o.csv", tmp / "b.csv")
                wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
                rates[style, workers] = res["completions"] / cpu
                print(f"| {style} | {workers} | {res['completions']} | {chars[style]:.0f} | {wall:.1f} | {cpu:.1f} | "
                      f"{res['completions'] / wall:.0f} | {res['completions'] / cpu:.0f} |", flush=True)
        for style in ("gsm8k", "math"):
            per_core = min(rates[style, w] for w in args.workers)
            minutes = TARGET_COMPLETIONS / (per_core * TARGET_CORES) / 60
            print(f"projected {TARGET_COMPLETIONS:,} {style}-style completions on {TARGET_CORES} cores: "
                  f"{minutes:.1f} min (from {per_core:.0f} completions per CPU second)")
        # the study's mix: every model samples GSM8K (1319 problems) and MATH500 (500)
        share = {"gsm8k": 1319 / 1819, "math": 500 / 1819}
        cpu_s = sum(TARGET_COMPLETIONS * share[st] / min(rates[st, w] for w in args.workers) for st in share)
        print(f"projected study mix (1319 GSM8K : 500 MATH500) on {TARGET_CORES} cores: "
              f"{cpu_s / TARGET_CORES / 60:.1f} min")


if __name__ == "__main__":
    main()
