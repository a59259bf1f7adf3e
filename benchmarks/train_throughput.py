"""Training throughput, MFU and peak memory of the study's models at the paper's shapes.

Runs the pretrain stage's own step, built as the trainer builds it (``recall2reason.pretrain.train.build_run``
and ``TrainRun.step``: bf16 autocast, torch.compile (``train.compile_scope``), the CUDA-graphed micro-step,
fused LM-head cross-entropy, fused AdamW, grad clipping, gradient accumulation) on random tokens, one
model at a time:

    source .gpu/setup.sh && python benchmarks/train_throughput.py \
        --models transformer,gla50,gdn50,mamba50,gdn100 --steps 10   # the study's batch: config.yaml's micro-batch of each model

Per model: compile / warm-up steps (untimed), then ``--steps`` optimizer steps timed between two
``cuda.synchronize()``. tokens/s counts every trained token; MFU uses the FLOP convention of
``recall2reason.pretrain.flops`` (6 N + 12 d T per attention layer) over the device's dense bf16
datasheet peak. Peak memory is ``torch.cuda.max_memory_allocated`` over warm-up and timing. A model
whose compiled step fails is re-run eagerly and marked so. At the end: tokens/s relative to the
Transformer and the projected GPU-hours of the paper study (37.1 B tokens per model), using each
model's own figure or, for models not measured, that of the nearest measured model of its class.
``--tiny`` runs the same logic at toy shapes on the CPU (a dry run of the script, no figures).
"""

from __future__ import annotations

import argparse
import ast
import gc
import itertools
import json
import sys
import time
import traceback
from pathlib import Path

import torch
import torch._inductor.config
from torch._inductor import metrics as inductor_metrics

from recall2reason.models.config import GLA_TRAIN_KERNELS, SHORT_CONV_FORMS, KernelConfig
from recall2reason.pretrain.config import TrainConfig, job_train_section
from recall2reason.pretrain.flops import model_flops_per_token, peak_flops
from recall2reason.pretrain.train import build_run
from recall2reason.study import expand_models

ROOT = Path(__file__).resolve().parents[1]


def has_short_conv(spec) -> bool:
    """Whether the model runs ops.conv's short conv (GLA, GDN; Mamba runs mamba-ssm's own)."""
    return bool({"gla", "gdn"} & set(spec.layer_types))


def bench_one(spec, args, device, compile: bool, graphs: bool = False,
              residual: str = TrainConfig.residual_dtype, scope: str | None = None,
              short_conv: str | None = None, gla_train: str | None = None) -> dict:
    scope = scope or args.compile_scope
    # the model config's kernels section (models.kernels); None: KernelConfig's default
    kernels = {k: v for k, v in (("short_conv", short_conv), ("gla_train", gla_train)) if v is not None}
    cfg = TrainConfig(micro_batch_size=args.micro_batch, precision=args.precision, compile=compile, compile_scope=scope,
                      cuda_graphs=graphs, loss_chunk_tokens=args.loss_chunk, residual_dtype=residual, seed=0)
    inductor_metrics.reset()
    run = build_run(cfg, spec.model_config(args.backend, kernels), device, args.accum, compile_mode=args.compile_mode)
    model, graphed = run.model, run.graphed
    used = model.kernels_used()  # "auto" resolved; "reference" / "-" where it does not apply
    V, T, B = model.cfg.vocab_size, args.seq_len, args.micro_batch
    data = torch.randint(0, V, (args.accum, B, T + 1), device=device)
    micro = [(data[i, :, :-1], data[i, :, 1:]) for i in range(args.accum)]

    def step():
        return run.step(micro, 1e-4)

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(args.warmup):
        loss, gn = step()
    sync()
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.steps):
        loss, gn = step()
    sync()
    dt = time.perf_counter() - t0
    tokens = args.steps * args.accum * B * T
    tok_s = tokens / dt
    fpt = model_flops_per_token(model, T)
    peak = peak_flops(device)
    out = {
        "model": spec.name, "backend": model.backend, "short_conv": used["short_conv"], "gla_train": used["gla_train"], "kernels": model.cfg.kernels.__dict__.copy(), "residual_dtype": residual, "compiled": compile, "compile_mode": args.compile_mode, "compile_scope": scope if compile else None,
        "cuda_graphs": graphed is not None and graphed.failed is None, "graph_error": graphed.failed if graphed else None,
        "micro_batch": B, "accum": args.accum, "loss_chunk_tokens": args.loss_chunk,
        "seq_len": T, "n_params": model.num_params(), "n_non_embedding": model.num_params(non_embedding=True),
        "flops_per_token": fpt, "tokens_per_s": tok_s, "step_s": dt / args.steps, "warmup_s": warm_s,
        "mfu": tok_s * fpt / peak if peak else None, "loss": float(loss), "grad_norm": float(gn),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
        # how many RMSNorm-backward-like row + column reduction pairs inductor fused into one kernel
        # (counted at code generation, so 0 when every graph came from inductor's cache)
        "mix_order_fused": getattr(inductor_metrics, "codegen_mix_order_reduction", None),
    }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="transformer,gla50,gdn50,mamba50,gdn100")
    p.add_argument("--micro-batch", type=int, default=None, help="sequences per micro-step (default: the model's in config.yaml train.micro_batch_size)")
    p.add_argument("--accum", type=int, default=None, help="micro-batches per optimizer step (default: config.yaml's global batch, "
                   "train.global_batch_tokens, on one GPU: 524,288 tokens = 8 x 32 x 2048 or 4 x 64 x 2048)")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--loss-chunk", type=int, default=TrainConfig.loss_chunk_tokens, help="tokens per LM-head + cross-entropy chunk (train.loss_chunk_tokens)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode of the blocks, e.g. max-autotune-no-cudagraphs")
    p.add_argument("--compile-scope", default=TrainConfig.compile_scope, choices=["model", "blocks", "both"],
                   help="train.compile_scope: model = one graph over all blocks; blocks = each block on its own; both: one run each")
    p.add_argument("--inductor", action="append", default=[], metavar="KEY=VALUE",
                   help="set torch._inductor.config KEY (dotted, e.g. triton.enable_pdl=True) before compiling; repeatable")
    p.add_argument("--cuda-graphs", default="on", choices=["on", "off", "both"],
                   help="replay each micro-step from a CUDA graph (the trainer's default on one GPU); both: measure each way")
    p.add_argument("--backend", default="auto")
    p.add_argument("--short-conv", default=KernelConfig.short_conv,
                   help=f"GLA / GDN short-conv forms to time (models.kernels.short_conv), comma-separated, of {SHORT_CONV_FORMS}")
    p.add_argument("--gla-train", default=KernelConfig.gla_train,
                   help=f"GLA training kernels to time (models.kernels.gla_train), comma-separated, of {GLA_TRAIN_KERNELS}")
    p.add_argument("--residual", default=TrainConfig.residual_dtype, choices=["compute", "fp32", "both"],
                   help="train.residual_dtype: the residual stream in the matmul dtype (bf16) or fp32; both: one run each")
    p.add_argument("--budget-s", type=float, default=1e9, help="start no new model after this many seconds")
    p.add_argument("--study-tokens", type=float, default=37.1e9, help="tokens per model in the paper study")
    p.add_argument("--tiny", action="store_true", help="toy shapes on the CPU: a dry run of this script")
    p.add_argument("--out", default=None, help="also write the results as JSON here")
    p.add_argument("--models-json", default=None, help="the models section as JSON (instead of config.yaml; for hosts without PyYAML)")
    args = p.parse_args()

    def load_study_cfg() -> tuple[dict, dict]:
        """config.yaml's models and train sections; with --models-json, those models and TrainConfig's batch."""
        if args.models_json:
            return json.loads(Path(args.models_json).read_text()), {}
        import yaml

        cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
        return cfg["models"], cfg["train"]

    def study_batch(name: str) -> argparse.Namespace:
        """args with this model's micro-batch and accumulation: the given ones, else the study's."""
        train = job_train_section(name, train_cfg)
        mb = args.micro_batch or train.get("micro_batch_size", TrainConfig.micro_batch_size)
        accum = args.accum or max(1, train.get("global_batch_tokens", TrainConfig.global_batch_tokens) // (mb * args.seq_len))
        return argparse.Namespace(**{**vars(args), "micro_batch": mb, "accum": accum})

    models_cfg, train_cfg = load_study_cfg()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    if args.tiny:
        models_cfg["base"].update(d_model=64, n_layers=4, n_heads=4, n_kv_heads=4, vocab_size=512)
        models_cfg["attention_layers"] = {"50": [1, 3], "75": [3], "83": [3], "100": []}
        args.seq_len, args.micro_batch, args.accum, args.steps, args.warmup = 64, 2, 2, 2, 1
        args.precision = "fp32"
    for kv in args.inductor:  # an unknown key fails here, before any model is built
        key, sep, value = kv.partition("=")
        if not sep:
            p.error(f"--inductor {kv!r}: expected KEY=VALUE")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass  # a bare string, e.g. a path
        try:
            setattr(torch._inductor.config, key, value)
        except AttributeError as e:
            p.error(f"--inductor {kv!r}: {e}")
        print(f"inductor: {key} = {getattr(torch._inductor.config, key)!r}", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    specs = {s.name: s for s in expand_models(models_cfg)}
    wanted = [m for m in args.models.split(",") if m]
    unknown = [m for m in wanted if m not in specs]
    if unknown:
        p.error(f"unknown model(s) {unknown}; known: {list(specs)}")
    dev_name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device {dev_name}, torch {torch.__version__}, peak {peak_flops(device)} FLOP/s, "
          f"micro-batch {args.micro_batch or 'per model'} x {args.seq_len}, accum {args.accum or 'to the study batch'}, "
          f"{args.steps} timed steps", flush=True)

    t_start = time.perf_counter()
    results, failures = [], {}
    graph_modes = {"on": [True], "off": [False], "both": [True, False]}[args.cuda_graphs]
    residual_modes = ["fp32", "compute"] if args.residual == "both" else [args.residual]
    conv_modes = args.short_conv.split(",")
    if unknown_forms := set(conv_modes) - set(SHORT_CONV_FORMS):
        p.error(f"--short-conv: unknown form(s) {sorted(unknown_forms)}; known: {SHORT_CONV_FORMS}")
    gla_modes = args.gla_train.split(",")
    if unknown_gla := set(gla_modes) - set(GLA_TRAIN_KERNELS):
        p.error(f"--gla-train: unknown kernel(s) {sorted(unknown_gla)}; known: {GLA_TRAIN_KERNELS}")
    scope_modes = ["blocks", "model"] if args.compile_scope == "both" and not args.no_compile else [args.compile_scope]
    for name in wanted:
        if time.perf_counter() - t_start > args.budget_s:
            failures[name] = "skipped: time budget"
            print(f"{name}: skipped (time budget)", flush=True)
            continue
        for graphs, residual, scope, form, gla in itertools.product(
                graph_modes, residual_modes, scope_modes,
                conv_modes if has_short_conv(specs[name]) else conv_modes[:1],
                gla_modes if specs[name].mixer_class == "gla" else gla_modes[:1]):
            for compile in ([False] if args.no_compile else [True, False]):
                try:
                    r = bench_one(specs[name], study_batch(name), device, compile, graphs, residual, scope, form, gla)
                    results.append(r)
                    print(json.dumps(r), flush=True)
                    break
                except Exception as e:  # a kernel / compiler failure of one model must not stop the others
                    failures[name] = f"{'compiled' if compile else 'eager'}: {type(e).__name__}: {str(e)[:300]}"
                    print(f"{name} ({'compiled' if compile else 'eager'}) FAILED: {failures[name]}", flush=True)
                    traceback.print_exc(limit=3)
                finally:
                    gc.collect()
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    torch._dynamo.reset()

    # ---- table ------------------------------------------------------------------------------------
    by = {}  # model -> its fastest measured variant (for the projection below)
    for r in results:
        if r["model"] not in by or r["tokens_per_s"] > by[r["model"]]["tokens_per_s"]:
            by[r["model"]] = r
    def variant(r):
        return r["cuda_graphs"], r["residual_dtype"], r["compile_scope"]

    base = {variant(r): r for r in results if r["model"] == "transformer"}
    print(f"\n| model | backend | short conv | GLA train | residual | compiled | CUDA graph | micro-batch x accum | params (M) | tok/s | vs Transformer | MFU | peak mem (GiB) | GPU-h for {args.study_tokens / 1e9:.1f} B tokens |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        b = base.get(variant(r))  # the Transformer measured the same way
        rel = f"{r['tokens_per_s'] / b['tokens_per_s']:.2f}x" if b else "n/a"
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "n/a"
        graph = "yes" if r["cuda_graphs"] else ("failed" if r["graph_error"] else "no")
        print(f"| {r['model']} | {r['backend']} | {r['short_conv']} | {r['gla_train']} | {r['residual_dtype']} | {r['compile_scope'] or 'no'} | {graph} | {r['micro_batch']} x {r['accum']} | {r['n_params'] / 1e6:.1f} | {r['tokens_per_s']:,.0f} | "
              f"{rel} | {mfu} | {mem} | {args.study_tokens / r['tokens_per_s'] / 3600:.1f} |")
        if r["graph_error"]:
            print(f"|   graph capture failed: {r['graph_error'][:200]} |")
    for name, why in failures.items():
        if name not in by:
            print(f"| {name} | not measured: {why} |")

    # ---- projected GPU-hours of the study (every model of config.yaml) -----------------------------
    # Attention layers are the same in every model, so seconds per token are close to linear in the
    # attention share within a class: interpolate between this class's measured models and the
    # Transformer (100 % attention); models measured themselves use their own figure.
    total_h, lines = 0.0, []
    for s in expand_models(load_study_cfg()[0]):  # afresh: --tiny shrank models_cfg
        if s.name in by:
            spt, how = 1.0 / by[s.name]["tokens_per_s"], "measured"
        else:
            pts = sorted({specs[n].attention_pct: 1.0 / r["tokens_per_s"] for n, r in by.items()
                          if n in specs and specs[n].mixer_class in (s.mixer_class, "transformer")}.items())
            if len(pts) < 2 or all(specs[n].mixer_class == "transformer" for n in by if n in specs and specs[n].mixer_class in (s.mixer_class, "transformer")):
                lines.append(f"  {s.name:<14} not projected (no measured {s.mixer_class} model)")
                continue
            x = min(max(s.attention_pct, pts[0][0]), pts[-1][0])  # no extrapolation: clamp to the measured range
            lo = max([pt for pt in pts if pt[0] <= x], default=pts[0], key=lambda pt: pt[0])
            hi = min([pt for pt in pts if pt[0] > x], default=pts[-1], key=lambda pt: pt[0])
            if lo[0] == hi[0]:
                lo, hi = pts[-2], pts[-1]
            spt = lo[1] + (hi[1] - lo[1]) * (x - lo[0]) / (hi[0] - lo[0])
            how = f"interpolated in attention share between {lo[0]:.0f} % and {hi[0]:.0f} % measured"
        h = args.study_tokens * spt / 3600
        total_h += h
        lines.append(f"  {s.name:<14} {h:8.1f} GPU-h  ({how})")
    print(f"\nprojected GPU-hours of the paper study on this device ({args.study_tokens / 1e9:.1f} B tokens per model, 1 GPU):")
    print("\n".join(lines))
    print(f"  {'total':<14} {total_h:8.1f} GPU-h (pretraining only)")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": dev_name, "args": vars(args), "results": results,
                                              "failures": failures, "study_gpu_hours": total_h}, indent=2))
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
