"""Snapshot of a GPU smoke study run (configs/gpu-smoke.yaml) for the repository.

    python benchmarks/gpu_smoke_summary.py results/gpu-smoke docs/gpu-smoke [--note "device, commit, command"]

Copies the run's small outputs (tables, figures, accuracy curves, training metrics, sampler stats)
into the snapshot folder and writes ``summary.md``: wall time and fixed costs per job (from the
rules' ``benchmark:`` files and the stage logs), per-model training and sampling figures, accuracy,
no-answer rates, and a few completions per model.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import statistics
from datetime import datetime
from pathlib import Path

FIRST_STEP = re.compile(r"first step done ([\d.]+) s after start")
CAPTURE = re.compile(r"CUDA graph: captured the micro-step .*?: ([\d.]+) s\)")
FIRST_COMPLETION = re.compile(r"first completion after ([\d.]+) s")
ENGINE_BUILT = re.compile(r"engine built in ([\d.]+) s")
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", re.M)


def job_times(results: Path) -> list[dict]:
    """One row per job: rule, wildcards, wall s, max RSS MiB, CPU s (Snakemake's benchmark files)."""
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rel = tsv.relative_to(results / "benchmarks").with_suffix("")
        with open(tsv) as f:
            rec = list(csv.DictReader(f, delimiter="\t"))[-1]
        rows.append({"stage": rel.parts[0], "job": "/".join(rel.parts[1:]), "wall_s": float(rec["s"]),
                     "max_rss_mib": float(rec["max_rss"]) if rec["max_rss"] not in ("", "NA") else None,
                     "cpu_s": float(rec["cpu_time"]) if rec.get("cpu_time") not in (None, "", "NA") else None})
    return rows


def _grep(path: Path, pattern: re.Pattern) -> float | None:
    if not path.exists():
        return None
    m = pattern.search(path.read_text(errors="replace"))
    return float(m.group(1)) if m else None


def dag_wall(snakemake_log: Path | None) -> tuple[str, str, float] | None:
    """(first, last timestamp, seconds) of a Snakemake log."""
    if snakemake_log is None or not snakemake_log.exists():
        return None
    stamps = [datetime.strptime(" ".join(s.split()), "%a %b %d %H:%M:%S %Y") for s in STAMP.findall(snakemake_log.read_text())]
    if not stamps:
        return None
    return str(stamps[0]), str(stamps[-1]), (stamps[-1] - stamps[0]).total_seconds()


def model_rows(results: Path, models: list[str], datasets: list[str]) -> list[dict]:
    rows = []
    for m in models:
        meta = json.loads((results / f"pretrain/{m}/config.json").read_text())
        metrics = [json.loads(line) for line in (results / f"pretrain/{m}/metrics.jsonl").read_text().splitlines()]
        tok_s = [r["tokens_per_s"] for r in metrics[1:]] or [metrics[-1]["tokens_per_s"]]
        row = {"model": m, "params_M": meta["n_params"] / 1e6, "backend": meta["backend"], "steps": meta["steps"],
               "loss_first": metrics[0]["loss"], "loss_last": metrics[-1]["loss"], "train_tok_s": statistics.median(tok_s),
               "train_s": meta["train_wall_s"],
               "first_step_s": _grep(results / f"logs/pretrain/{m}.log", FIRST_STEP),
               "capture_s": _grep(results / f"logs/pretrain/{m}.log", CAPTURE)}
        for ds in datasets:
            stats = json.loads((results / f"samples/{m}/{ds}/part-0.stats.json").read_text())
            log = results / f"logs/sample/{m}/{ds}/part-0.log"
            with open(results / f"vote/{m}/{ds}.curves.csv") as f:
                curve = list(csv.DictReader(f))
            problems = [json.loads(line) for line in (results / f"vote/{m}/{ds}.problems.jsonl").read_text().splitlines()]
            n_completions = sum(len(p["answers"]) for p in problems)
            row |= {f"{ds}_sample_tok_s": stats["tokens_per_s"], f"{ds}_sample_wall_s": stats["wall_s"],
                    f"{ds}_first_completion_s": _grep(log, FIRST_COMPLETION),
                    f"{ds}_maj1": float(curve[0]["maj_exact"]), f"{ds}_maj_n": float(curve[-1]["maj_exact"]),
                    f"{ds}_pass_n": float(curve[-1]["pass_k"]),
                    f"{ds}_no_answer": sum(p["no_answer"] for p in problems) / max(n_completions, 1)}
        rows.append(row)
    return rows


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(v)


def md_table(rows: list[dict], cols: list[str]) -> str:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def examples(results: Path, models: list[str], dataset: str, n_problems: int = 2) -> str:
    """Sample 0 of the first problems of each model, as the vote stage read it."""
    out = []
    for m in models:
        problems = [json.loads(line) for line in (results / f"vote/{m}/{dataset}.problems.jsonl").read_text().splitlines()]
        with open(results / f"samples/{m}/{dataset}/part-0.jsonl") as f:
            texts = {}
            for line in f:
                r = json.loads(line)
                if r["sample_idx"] == 0:
                    texts[r["problem_id"]] = r["text"]
                if len(texts) >= n_problems:
                    break
        for p in problems[:n_problems]:
            text = texts.get(p["id"], "")[:600].replace("```", "'''")
            out.append(f"**{m}**, `{p['id']}` (gold `{p['gold']}`, answer read: `{p['answers'][0]}`, "
                       f"{'correct' if p['correct'][0] else 'wrong'}):\n\n```\n{text}\n```\n")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--snakemake-log", type=Path, default=None, help="the run's .snakemake/log/*.snakemake.log")
    ap.add_argument("--note", default="", help="device, date, commit and command, printed at the top")
    args = ap.parse_args()
    res, out = args.results, args.out
    out.mkdir(parents=True, exist_ok=True)
    models = sorted(p.name for p in (res / "pretrain").iterdir() if (p / "config.json").exists())
    datasets = sorted(p.stem.split(".")[0] for p in (res / f"vote/{models[0]}").glob("*.curves.csv"))

    for sub in ("tables", "figures"):
        shutil.copytree(res / sub, out / sub, dirs_exist_ok=True)
    for m in models:
        (out / "models" / m).mkdir(parents=True, exist_ok=True)
        for rel in ("metrics.jsonl", "config.json"):
            shutil.copy(res / f"pretrain/{m}/{rel}", out / "models" / m / rel)
        for ds in datasets:
            shutil.copy(res / f"vote/{m}/{ds}.curves.csv", out / "models" / m / f"{ds}.curves.csv")
            shutil.copy(res / f"samples/{m}/{ds}/part-0.stats.json", out / "models" / m / f"{ds}.sample_stats.json")

    jobs = job_times(res)
    with open(out / "job_times.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(jobs[0]))
        w.writeheader()
        w.writerows(jobs)
    per_stage = {}
    for j in jobs:
        per_stage.setdefault(j["stage"], []).append(j["wall_s"])
    stage_rows = [{"stage": s, "jobs": len(v), "sum_s": sum(v), "median_s": statistics.median(v), "max_s": max(v)}
                  for s, v in per_stage.items()]
    rows = model_rows(res, models, datasets)
    wall = dag_wall(args.snakemake_log)

    lines = ["# GPU smoke study: snapshot of one run", ""]
    if args.note:
        lines += [args.note, ""]
    if wall:
        lines += [f"DAG wall time: **{wall[2] / 60:.1f} min** ({wall[0]} to {wall[1]}, Snakemake's log).", ""]
    lines += ["## Jobs per stage (wall seconds, Snakemake `benchmark:` files)", "",
              md_table(stage_rows, ["stage", "jobs", "sum_s", "median_s", "max_s"]), "",
              "## Models", "",
              "Training: median tokens/s of the logged intervals; `first_step_s`: from the process start to the end "
              "of the first step (model build, torch.compile, kernel autotuning, CUDA-graph capture); "
              "`capture_s`: the warm-up micro-steps and the capture alone.", "",
              md_table(rows, ["model", "params_M", "backend", "steps", "loss_first", "loss_last", "train_tok_s",
                              "train_s", "first_step_s", "capture_s"]), ""]
    for ds in datasets:
        lines += [f"Sampling and accuracy, {ds} (`first_completion_s`: process start to the first finished "
                  f"completion, i.e. load, compile, capture, first prefills; `no_answer`: share of completions "
                  f"with no extractable answer):", "",
                  md_table(rows, ["model", f"{ds}_sample_tok_s", f"{ds}_sample_wall_s", f"{ds}_first_completion_s",
                                  f"{ds}_maj1", f"{ds}_maj_n", f"{ds}_pass_n", f"{ds}_no_answer"]), ""]
    lines += ["## Tables", ""]
    for t in sorted((out / "tables").glob("*.md")):
        lines += [f"### {t.stem}", "", t.read_text().strip(), ""]
    lines += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in sorted((out / "figures").glob("*.png"))]
    lines += ["", "## Completions (sample 0 of the first GSM8K problems)", "", examples(res, models, datasets[0])]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/summary.md ({len(models)} models, {len(jobs)} jobs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
