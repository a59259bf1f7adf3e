"""Hand-made, demo-like stage outputs for the report tests (5 models, k up to 8); no tests here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from recall2reason.judge.categories import CATEGORIES, NO_ERROR

MODELS = ["transformer", "mamba50", "gla50", "gdn50", "gdn100"]
SUMMARIES = [
    {"name": "transformer", "class": "transformer", "attention_layers": [0, 1, 2, 3], "attention_pct": 100.0, "n_layers": 4},
    {"name": "mamba50", "class": "mamba", "attention_layers": [1, 3], "attention_pct": 50.0, "n_layers": 4},
    {"name": "gla50", "class": "gla", "attention_layers": [1, 3], "attention_pct": 50.0, "n_layers": 4},
    {"name": "gdn50", "class": "gdn", "attention_layers": [1, 3], "attention_pct": 50.0, "n_layers": 4},
    {"name": "gdn100", "class": "gdn", "attention_layers": [], "attention_pct": 0.0, "n_layers": 4},
]
LAYERS = {
    "transformer": ["attention"] * 4,
    "mamba50": ["mamba", "attention", "mamba", "attention"],
    "gla50": ["gla", "attention", "gla", "attention"],
    "gdn50": ["gdn", "attention", "gdn", "attention"],
    "gdn100": ["gdn"] * 4,
}
CFG = json.dumps({"datasets": {"gsm8k": "gsm8k", "math500": "math500"}, "metric": "maj_exact", "models": SUMMARIES})


def write_curves(path: Path, base: float, gain: float, kmax: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["k", "maj_exact", "maj_exact_lo", "maj_exact_hi", "maj_first", "maj_first_lo", "maj_first_hi",
            "pass_k", "pass_k_lo", "pass_k_hi"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for k in range(1, kmax + 1):
            acc = min(0.95, base + gain * np.log2(k))
            pk = min(1.0, base + 2 * gain * np.log2(k))
            w.writerow([k, acc, acc - 0.03, acc + 0.03, acc - 0.005, acc - 0.035, acc + 0.025, pk, pk - 0.03, min(1, pk + 0.03)])


def write_judge(path: Path, counts_per_idx: list[dict[str, int]], disagree_per_idx: list[int] | None = None) -> None:
    """counts_per_idx[i][label]: completions of generation index i in each label ("Error" = judge failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for idx, counts in enumerate(counts_per_idx):
        pid = 0
        flips = (disagree_per_idx or [0] * len(counts_per_idx))[idx]
        for label, n in counts.items():
            for _ in range(n):
                correct = label == NO_ERROR
                group = "Error" if label == "Error" else ("None" if correct else CATEGORIES[label])
                verify = correct if flips <= 0 else not correct
                flips -= 1
                rows.append({"problem_id": f"p{pid}", "sample_idx": idx, "is_correct": correct,
                             "error_category": "unparseable" if label == "Error" else label, "error_group": group,
                             "explanation": "", "erroneous_step_quote": "", "verify_correct": verify})
                pid += 1
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def demo_results(root: Path, dataset: str = "gsm8k", n_problems: int = 40) -> dict:
    """A results dir with curves, judge output, pretrain configs, samples + stats, eval set."""
    rng = np.random.default_rng(0)
    quality = {"transformer": 0.9, "mamba50": 0.6, "gla50": 0.55, "gdn50": 0.75, "gdn100": 0.45}
    paths: dict[str, dict] = {m: {} for m in MODELS}
    evals = root / "data" / "eval" / f"{dataset}.jsonl"
    evals.parent.mkdir(parents=True, exist_ok=True)
    with open(evals, "w") as f:
        for p in range(n_problems):
            q = f"Tom has {p} apples and buys {p + 3} more. How many apples does Tom have?"
            f.write(json.dumps({"id": f"p{p}", "question": q, "prompt": f"Question: {q}\nAnswer:", "gold": str(2 * p + 3),
                                "answer_style": "gsm8k", "reference_solution": "", "subject": None, "level": None}) + "\n")
    for m in MODELS:
        q = quality[m]
        c = root / "vote" / m / f"{dataset}.curves.csv"
        write_curves(c, 0.1 + 0.3 * q, 0.04 * q)
        per_idx = []
        for _ in range(8):
            wrong = int(n_problems * (1 - q) * 0.9)
            kv = int(wrong * (0.3 + 0.4 * (1 - q)))
            rest = wrong - kv
            counts = {"Key-Value Binding Error": kv, "Flawed Logical Synthesis": rest // 2,
                      "Calculation Error": rest - rest // 2 - 1, "Error": 1}
            counts[NO_ERROR] = n_problems - sum(counts.values())
            per_idx.append(counts)
        j = root / "judge" / m / f"{dataset}.jsonl"
        write_judge(j, per_idx, [1] * 8)
        cfg = root / "pretrain" / m / "config.json"
        cfg.parent.mkdir(parents=True, exist_ok=True)
        layers = LAYERS[m]
        cfg.write_text(json.dumps({"name": m, "model": {"d_model": 64, "n_layers": 4, "layers": layers, "vocab_size": 300,
                                                       "tie_embeddings": False},
                                   "n_params": 400_000, "n_non_embedding_params": 380_000}))
        sdir = root / "samples" / m / dataset
        sdir.mkdir(parents=True, exist_ok=True)
        parts, stats = [], []
        for part, idxs in enumerate([range(0, 4), range(4, 8)]):
            sp = sdir / f"part-{part}.jsonl"
            with open(sp, "w") as f:
                for p in range(n_problems):
                    for i in idxs:
                        f.write(json.dumps({"problem_id": f"p{p}", "sample_idx": i, "text": "x", "n_tokens": int(rng.integers(20, 120)),
                                            "finish_reason": "eos", "seed": i}) + "\n")
            st = sdir / f"part-{part}.stats.json"
            st.write_text(json.dumps({"device": "cpu", "wall_s": 10.0, "gpu_s": 2.0 + LAYERS[m].count("attention"), "new_tokens": 1000,
                                      "completions": 4 * n_problems, "tokens_per_s": 100.0}))
            parts.append(str(sp))
            stats.append(str(st))
        paths[m] = {"curves": str(c), "judge": str(j), "pretrain": str(cfg), "samples": parts, "stats": stats}
    return {"models": paths, "eval": str(evals)}


def train_tokenizer(root: Path) -> str:
    import sentencepiece as spm

    text = root / "tok.txt"
    text.write_text("\n".join(f"Question: Tom has {i} apples and buys {i + 3} more. Answer: {2 * i + 3}" for i in range(200)))
    prefix = root / "tok"
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(prefix), vocab_size=60, model_type="bpe",
                                   bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2)
    return str(prefix) + ".model"
