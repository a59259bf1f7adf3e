"""The answer extractor measured against known truth: every gold answer, written in every ending.

Each GSM8K, MATH and MATH500 gold answer of a data folder (``../shared/data``: GSM8K's text after
``####``, MATH's last ``\\boxed{}`` of the solution, MATH500's ``answer`` field) is written after
a line of distracting arithmetic in each ending style the training mix and eval sets use, and
the completion goes through :func:`recall2reason.vote.extract.extract_answer`; so does each row's
own reference solution (style ``reference``). Each rendering either parses equal to its gold
(math-verify, gold first, as the vote stage checks answers), yields no answer, or parses to a
different value (a misread: the worst outcome).

    python -m recall2reason.vote.endings_check --data ../shared/data [--workers 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

from recall2reason.common.io import atomic_write
from recall2reason.vote.endings import last_boxed
from recall2reason.vote.extract import cut_completion, extract_answer, parse_gold, parse_text, verify_pair

PREAMBLE = "First, 3 + 4 = 7 and 2 * 5 = 10, so 10 - 7 = 3 is left.\n"

# ending style -> template; {g} is the gold as the dataset writes it
STYLES: dict[str, str] = {
    "boxed": "Thus the result is \\boxed{{{g}}}.",  # OpenMathInstruct-2
    "boxed_in_math": "The answer is $\\boxed{{{g}}}$.",  # the demo's MATH style, MATH solutions
    "answer_is_colon": "The answer is: {g}",  # MetaMathQA
    "answer_is": "The answer is {g}.",
    "answer_is_math": "The answer is ${g}$.",
    "hashes": "#### {g}",  # GSM8K
}
# GSM8K golds are numbers: also as an amount of money and with a unit word
GSM8K_STYLES: dict[str, str] = {
    "answer_is_dollar_sign": "The answer is \\${g}.",
    "answer_is_unit": "The answer is {g} dollars.",
}
TIMEOUT_S = 5


def math_verify_default(completion: str, timeout_s: float):
    """The extractor before issue 40: math-verify's own search of the whole cut completion."""
    return parse_text(cut_completion(completion), timeout_s)


EXTRACTORS = {"endings": extract_answer, "math_verify": math_verify_default}


def golds(data_dir: str | Path) -> Iterator[tuple[str, str, str, str]]:
    """(eval set, answer style, gold, reference solution) for every GSM8K, MATH and MATH500 row."""
    data = Path(data_dir)
    for split in ("train", "test"):
        for line in open(data / "gsm8k" / f"{split}.jsonl", encoding="utf-8"):
            solution = json.loads(line)["answer"]
            yield "gsm8k", "gsm8k", solution.rsplit("####", 1)[1].strip(), solution
    for split in ("train", "test"):
        for line in open(data / "math" / f"{split}.jsonl", encoding="utf-8"):
            solution = json.loads(line)["solution"]
            yield "math", "math", last_boxed(solution), solution
    for line in open(data / "math500" / "test.jsonl", encoding="utf-8"):
        row = json.loads(line)
        yield "math500", "math", row["answer"], row["solution"]


def styles_for(answer_style: str) -> dict[str, str]:
    return {**STYLES, **(GSM8K_STYLES if answer_style == "gsm8k" else {})}


def outcome(gold, pred) -> tuple[str, str | None]:
    if gold is None:
        return "gold_unparsed", None
    if pred is None:
        return "none", None
    if pred.key == gold.key or verify_pair(gold, pred, TIMEOUT_S):
        return "equal", pred.key
    return "different", pred.key


def check_gold(task: tuple[str, str, str]) -> dict[str, tuple[str, str | None]]:
    """Outcome per ending style of one gold: equal | none | different | gold_unparsed (with what was read)."""
    gold_text, answer_style, extractor = task
    gold = parse_gold(gold_text, answer_style, TIMEOUT_S)
    return {
        style: outcome(gold, EXTRACTORS[extractor](PREAMBLE + template.format(g=gold_text), TIMEOUT_S))
        for style, template in styles_for(answer_style).items()
    }


def check_reference(task: tuple[str, str, str, str]) -> tuple[str, str | None]:
    """Outcome of the dataset's own reference solution, read as a completion."""
    gold_text, answer_style, solution, extractor = task
    return outcome(parse_gold(gold_text, answer_style, TIMEOUT_S), EXTRACTORS[extractor](solution, TIMEOUT_S))


def _init_worker() -> None:
    logging.getLogger("math_verify").setLevel(logging.ERROR)


def measure(data_dir: str | Path, workers: int = 1, extractor: str = "endings") -> dict:
    """Counts per eval set and ending style (rows, not distinct golds), and the failures.

    Style ``reference`` is each row's own reference solution (GSM8K's ``#### N`` last line,
    MATH's ``\\boxed{}``, with whatever prose follows it)."""
    rows = list(golds(data_dir))
    distinct = sorted({(g, s, extractor) for _, s, g, _ in rows})
    references = [(g, s, solution, extractor) for _, s, g, solution in rows]
    if workers == 1:
        _init_worker()
        per_gold, per_reference = list(map(check_gold, distinct)), list(map(check_reference, references))
    else:
        with mp.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            per_gold = pool.map(check_gold, distinct, chunksize=16)
            per_reference = pool.map(check_reference, references, chunksize=16)
    by_gold = {task[:2]: res for task, res in zip(distinct, per_gold)}
    counts: dict[str, dict[str, Counter]] = {}
    failures: dict[str, list] = {}
    for (eval_set, answer_style, gold, _), reference in zip(rows, per_reference):
        for style, (result, key) in {**by_gold[gold, answer_style], "reference": reference}.items():
            counts.setdefault(eval_set, {}).setdefault(style, Counter())[result] += 1
            if result != "equal":
                failures.setdefault(eval_set, []).append({"gold": gold, "style": style, "outcome": result, "parsed": key})
    table = {
        e: {s: {"rows": sum(c.values()), **{k: c[k] for k in ("equal", "none", "different", "gold_unparsed")}}
            for s, c in per_style.items()}
        for e, per_style in counts.items()
    }  # fmt: skip
    return {"extractor": extractor, "rows": len(rows), "distinct_golds": len(distinct), "table": table,
            "failures": failures}  # fmt: skip


def equal_rate(table: dict, eval_set: str) -> float:
    """Share of renderings parsed equal to their gold, over those whose gold parses."""
    cells = table[eval_set].values()
    return sum(c["equal"] for c in cells) / sum(c["rows"] - c["gold_unparsed"] for c in cells)


def format_table(res: dict) -> str:
    lines = ["| eval set | ending | rows | equal | no answer | different | gold unparsed | equal % |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for e, per_style in res["table"].items():
        for s, c in per_style.items():
            lines.append(f"| {e} | {s} | {c['rows']} | {c['equal']} | {c['none']} | {c['different']} | "
                         f"{c['gold_unparsed']} | {100 * c['equal'] / (c['rows'] - c['gold_unparsed']):.2f} |")  # fmt: skip
        lines.append(f"| {e} | all | | | | | | {100 * equal_rate(res['table'], e):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recall2reason.vote.endings_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder with gsm8k/, math/, math500/ (../shared/data)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--extractor", choices=sorted(EXTRACTORS), default="endings",
                   help="endings: the vote stage's; math_verify: math-verify's own search (before issue 40)")
    p.add_argument("--json", help="write counts and every failure here")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    res = measure(args.data, args.workers, args.extractor)
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    print(format_table(res))
    print(f"{res['rows']} gold rows ({res['distinct_golds']} distinct) in {res['wall_s']} s")
    for e, fails in res["failures"].items():
        print(f"{e}: {len(fails)} renderings not equal, e.g. {fails[:5]}")
    if args.json:
        with atomic_write(args.json) as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
