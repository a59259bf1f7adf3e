"""Tiny judge-stage inputs (eval set, sample parts, vote problems) written to a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

QUESTION = "Janet's ducks lay 16 eggs per day. She eats 3 for breakfast and uses 4 for baking. She sells the remainder at $2 each. How much does she make?"
REFERENCE = "She has 16 - 3 - 4 = 9 eggs left. She makes 9 * 2 = 18 dollars.\n#### 18"


def write_inputs(root: Path, completions: dict[str, list[str]], correct: dict[str, list[bool]] | None = None):
    """completions: problem id -> texts of sample 0.. ; returns the paths the stage reads."""
    root.mkdir(parents=True, exist_ok=True)
    eval_path, part, vote = root / "eval.jsonl", root / "part-0.jsonl", root / "vote.problems.jsonl"
    with open(eval_path, "w") as f:
        for pid in completions:
            f.write(json.dumps({"id": pid, "question": f"{QUESTION} ({pid})", "prompt": "", "gold": "18",
                                "answer_style": "gsm8k", "reference_solution": REFERENCE,
                                "subject": None, "level": None}) + "\n")  # fmt: skip
    with open(part, "w") as f:
        for pid, texts in completions.items():
            for i, t in enumerate(texts):
                f.write(json.dumps({"problem_id": pid, "sample_idx": i, "text": t, "n_tokens": 5,
                                    "finish_reason": "eos", "seed": 0}) + "\n")  # fmt: skip
    with open(vote, "w") as f:
        for pid, texts in completions.items():
            ok = (correct or {}).get(pid) or [("[[cat:" not in t) for t in texts]
            f.write(json.dumps({"id": pid, "gold": "18", "n": len(texts), "answers": ["18" if c else "7" for c in ok],
                                "correct": ok, "groups": [], "subject": None, "level": None}) + "\n")  # fmt: skip
    return {"eval_path": eval_path, "sample_paths": [part], "vote_path": vote}


def judge_cli(cfg: dict, inputs: dict, out_dir: Path) -> list[str]:
    """The `python -m recall2reason.judge run` command line the Snakemake rule would run on ``inputs``."""
    import sys

    return [sys.executable, "-m", "recall2reason.judge", "run", "--cfg", json.dumps(cfg),
            "--model-name", "m", "--dataset", "gsm8k", "--eval", str(inputs["eval_path"]),
            "--samples", *map(str, inputs["sample_paths"]), "--vote", str(inputs["vote_path"]),
            "--cache", str(out_dir / "cache"), "--out", str(out_dir / "out.jsonl"),
            "--ledger", str(out_dir / "out.ledger.json")]  # fmt: skip
