"""Where the GPU time of the study's training step goes, per model (one device call; figures in benchmarks/reports/, indexed by BENCHMARKS.md).

    source benchmarks/gpu_toolkit.sh && python benchmarks/profile_gpu.py --models transformer,gla50 --out $OUT/prof

Each model's step is built as the trainer builds it (``recall2reason.pretrain.train.build_run``, from
config.yaml's ``train:`` section: torch.compile, bf16, the CUDA-graphed micro-step) at its study
micro-batch x 2048 tokens, one micro-batch per optimizer step. Per model:

  kernels_train_<model>.txt     torch.profiler kernel table of two eager steps (fwd + bwd of the compiled
                                model, clipping, AdamW), sorted by GPU time
  timeline_train_<model>.json   the graphed micro-step (pretrain/graphs.py): ms per replay between CUDA
                                events, and from a profile of two replays the kernels' busy time against
                                the replay's span (launch gaps inside the graph), kernel time by class
  profile.json                  all of it, one row per model

``--tiny`` profiles toy shapes on the CPU (a dry run of the script; CPU op times, no graph).

The sweeps this script once ran for decisions since taken (decode step and top-p sampling, the
Triton decode attention's and the q/k/v + RoPE op's launch configurations, SDPA backends, fused
vs separate projection GEMMs) are in its git history (`git show b48a713:benchmarks/profile_gpu.py`); their numbers stay in
benchmarks/reports/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "src"))  # appended: a tree on PYTHONPATH (an A/B variant) or the installed package wins

from recall2reason.common.cfg import from_dict  # noqa: E402
from recall2reason.pretrain.config import TrainConfig, job_train_section  # noqa: E402
from recall2reason.pretrain.train import build_run  # noqa: E402
from recall2reason.study import expand_models  # noqa: E402


def event_ms(fn, reps: int = 20, warmup: int = 3) -> float:
    """ms per call of ``fn`` between two CUDA events, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def kernel_table(fn, device: torch.device, path: Path, steps: int = 2, rows: int = 40) -> str:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    fn()
    sync(device)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            fn()
        sync(device)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=rows, max_name_column_width=70)
    path.write_text(table)
    return table


def kernel_class(name: str) -> str:
    n = name.lower()
    if any(k in n for k in ("gemm", "nvjet", "xmma", "cutlass", "cublas")):
        return "gemm"
    if any(k in n for k in ("cudnn", "fmha", "flash", "attn")):
        return "attention"
    if n.startswith("triton_"):
        return "inductor"
    return "other"


def graphed_timeline(graphed, inputs, targets, path: Path, reps: int = 10) -> dict:
    """The graphed micro-step: ms per replay between CUDA events, and from a profile of two
    replays the kernels' busy time against the replay's span, i.e. how much of a replay the GPU
    spends between kernels (launch gaps inside the graph)."""
    from torch.profiler import ProfilerActivity, profile

    replay_ms = event_ms(lambda: graphed(inputs, targets), reps, warmup=1)  # the first call warms up and captures
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(2):
            graphed(inputs, targets)
        torch.cuda.synchronize()
    kernels = sorted(
        (e.time_range.start, e.time_range.end, e.name)
        for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and e.time_range.end > e.time_range.start
    )
    busy, by_class, gaps = 0.0, {}, []
    last_end = kernels[0][0] if kernels else 0.0
    for s, e, name in kernels:  # us; busy = the union of kernel intervals (overlaps count once)
        if s > last_end:
            gaps.append(s - last_end)
        busy += max(0.0, e - max(s, last_end))
        last_end = max(last_end, e)
        cls = kernel_class(name)
        by_class[cls] = by_class.get(cls, 0.0) + (e - s)
    span = (kernels[-1][1] - kernels[0][0]) if kernels else 0.0
    gaps.sort()
    res = {
        "graph_failed": graphed.failed,
        "replay_ms": round(replay_ms, 3), "kernels_per_replay": len(kernels) // 2,
        "busy_ms_per_replay": round(busy / 2e3, 3), "span_ms_per_replay": round(span / 2e3, 3),
        "gap_ms_per_replay": round(sum(gaps) / 2e3, 3), "gaps_over_10us": sum(g > 10 for g in gaps) // 2,
        "median_gap_us": round(gaps[len(gaps) // 2], 2) if gaps else 0.0,
        "kernel_ms_by_class": {k: round(v / 2e3, 3) for k, v in sorted(by_class.items(), key=lambda kv: -kv[1])},
    }
    path.write_text(json.dumps(res, indent=2))
    return res


def profile_model(spec, cfg: TrainConfig, seq_len: int, device: torch.device, out: Path) -> dict:
    """Kernel table of the eager step, then (CUDA) the graphed micro-step's timeline, of one model."""
    run = build_run(cfg, spec.model_config(), device, n_micro=1)
    B = cfg.micro_batch_size
    x = torch.randint(0, run.model.cfg.vocab_size, (B, seq_len + 1), device=device)
    inputs, targets = x[:, :-1].contiguous(), x[:, 1:].contiguous()
    res = {"model": spec.name, "backend": run.model.backend, "micro_batch": B, "seq_len": seq_len,
           "compiled": cfg.compile, "compile_scope": cfg.compile_scope, "n_params": run.model.num_params()}
    # eager first: its zero_grad(set_to_none) leaves no .grad buffers for the graph to find
    eager = dataclasses.replace(run, graphed=None)
    t0 = time.perf_counter()
    for _ in range(2):
        eager.step([(inputs, targets)], 1e-4)
    sync(device)
    res["warmup_s"] = round(time.perf_counter() - t0, 2)
    table = kernel_table(lambda: eager.step([(inputs, targets)], 1e-4), device, out / f"kernels_train_{spec.name}.txt")
    print("\n".join(table.splitlines()[:30]), flush=True)
    if device.type == "cuda":
        res["eager_step_ms"] = round(event_ms(lambda: eager.step([(inputs, targets)], 1e-4), reps=5, warmup=1), 3)
        if run.graphed is not None:
            res["graphed"] = graphed_timeline(run.graphed, inputs, targets, out / f"timeline_train_{spec.name}.json")
            run.graphed.zero_grads()
            res["graphed_step_ms"] = round(event_ms(lambda: run.step([(inputs, targets)], 1e-4), reps=5, warmup=1), 3)
        res["peak_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="transformer,gla50,gdn50,mamba50", help="comma-separated models of config.yaml")
    p.add_argument("--micro-batch", type=int, default=None, help="sequences per micro-step (default: the model's train.micro_batch_size)")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--tiny", action="store_true", help="toy shapes on the CPU: a dry run of this script")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    study = yaml.safe_load((REPO / "config.yaml").read_text())
    models_cfg, train_cfg = study["models"], study["train"]
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    overrides = {}
    if args.tiny:
        models_cfg["base"].update(d_model=64, n_layers=4, n_heads=4, n_kv_heads=4, vocab_size=512)
        models_cfg["attention_layers"] = {"50": [1, 3], "75": [3], "83": [3], "100": []}
        args.seq_len, args.micro_batch = 64, 2
        overrides = {"precision": "fp32", "compile": False}
    specs = {s.name: s for s in expand_models(models_cfg)}
    wanted = [m for m in args.models.split(",") if m]
    if unknown := [m for m in wanted if m not in specs]:
        p.error(f"unknown model(s) {unknown}; known: {list(specs)}")
    dev_name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device {dev_name}, torch {torch.__version__}", flush=True)
    result = {"device": dev_name, "torch": torch.__version__, "train": []}
    for name in wanted:
        train = job_train_section(name, train_cfg)
        cfg = from_dict(TrainConfig, {**train, **overrides, **({"micro_batch_size": args.micro_batch} if args.micro_batch else {})})
        try:
            res = profile_model(specs[name], cfg, args.seq_len, device, args.out)
        except Exception as e:  # a kernel / compiler failure of one model must not stop the others
            res = {"model": name, "error": f"{type(e).__name__}: {str(e)[:300]}"}
        finally:
            torch._dynamo.reset()
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
        print(f"[train {name}] " + json.dumps(res), flush=True)
        result["train"].append(res)
    (args.out / "profile.json").write_text(json.dumps(result, indent=2))
    return 0 if all("error" not in r for r in result["train"]) else 1


if __name__ == "__main__":
    sys.exit(main())
