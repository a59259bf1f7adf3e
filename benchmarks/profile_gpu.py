"""Where the GPU time goes: kernel tables of one decode step and one training micro-step, and the
timing of candidate speed-ups side by side (one device call; figures in benchmarks/reports/, indexed by BENCHMARKS.md).

    source benchmarks/gpu_toolkit.sh && python benchmarks/profile_gpu.py --sample --train --out $OUT

--sample   per model and batch: ms per graphed decode step with rows spread over the context
           (pos uniform in [128, 1088)), split into model.step / sampling (sort-based and Triton)
           / argmax, the same step under torch.compile, and the CUDA kernels of three eager steps
--train    a model's (--train-model) kernels of one eager fwd+bwd micro-step, the graphed micro-step's
           replay time against its kernels' busy time (launch gaps inside the graph), and tok/s + MFU of the stage's
           step at micro-batch 16 and 32 through benchmarks/train_throughput.py
--attn-sweep  the Triton decode attention's launch configurations (keys per program, warps) at
           the Transformer's decode shape: ms per graphed call of one layer, and the HBM bandwidth
           its K/V reads reach
--sdpa-sweep  the training attention (causal SDPA, micro-batch 16 x 12 heads x 2048 x 64, bf16)
           forward + backward with each fused backend forced (flash, cuDNN, efficient): ms,
           TFLOP/s, and the difference of output and dq from flash (torch 2.11 already picks cuDNN
           on Hopper for this shape: 2026-12-03-pretrain-1-attention-kernel)
--gemm-sweep  the GEMMs of one block's input projections at micro-batch 32 x 2048 (bf16): forward,
           input-gradient and weight-gradient GEMM of q, k, v (768 -> 768 each) and of the
           small gate projections, separate vs fused into one (layers.base.project): ms, TFLOP/s;
           then the step's other GEMMs (o_proj, ff_out, the LM head of one loss chunk) alone
--qkv-sweep  attention's q / k / v projection with RoPE at micro-batch 32 x 2048 (bf16), forward +
           backward under torch.compile: three GEMMs with RoPE left to inductor vs one GEMM + the
           Triton split-and-rotate op (models/ops/qkv_rope.py, the default) at each launch configuration
--nucleus-sweep  the Triton top-p kernel's launch configurations (block size, warps) on
           flat (random-weight model) and peaked (trained-model-like) logits: ms per graphed call
           and tokens that differ from the default configuration and from the sort reference
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "src"))  # appended: a tree on PYTHONPATH (an A/B variant) or the installed package wins
sys.path.insert(0, str(REPO / "benchmarks"))

from recall2reason.models import build_model  # noqa: E402
from recall2reason.sample.engine import Engine  # noqa: E402
from recall2reason.sample.sampling import sample_next  # noqa: E402
from recall2reason.study import expand_models  # noqa: E402


def specs() -> dict:
    return {s.name: s for s in expand_models(yaml.safe_load((REPO / "config.yaml").read_text())["models"])}


def graphed_ms(fn, reps: int = 30) -> float:
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return event_ms(g.replay, reps, warmup=1)


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


def kernel_table(fn, path: Path, steps: int = 3, rows: int = 40) -> str:
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=70)
    path.write_text(table)
    return table


def spread_rows(eng: Engine, prompt_len: int, gen: torch.Generator) -> None:
    """Every row alive at its own position in [prompt_len, max_len - 64): the decode state of a
    batch in mid-generation (cache contents are random; timing does not depend on them)."""
    B, dev = eng.B, eng.device
    pos = torch.randint(prompt_len, eng.max_len - 64, (B,), generator=gen).to(dev)
    eng.pos.copy_(pos)
    eng.ngen.copy_(pos - prompt_len + 1)
    eng.alive.fill_(True)
    eng.tok.copy_(torch.randint(3, 32000, (B,), generator=gen).to(dev))
    for st in eng.states:
        for t in st.values():
            t.normal_()


def nucleus_variants() -> dict:
    """The sampling functions to time: the sort-based reference and, if present, the Triton kernel."""
    out = {"sort": sample_next}
    try:
        from recall2reason.sample.nucleus_triton import sample_next_triton

        out["triton"] = sample_next_triton
    except ImportError:
        pass
    return out


@torch.inference_mode()
def profile_sample(name: str, spec, args, out: Path) -> list[dict]:
    model = build_model(spec.model_config()).to("cuda", torch.bfloat16).eval()
    P, N = 128, 1024
    rows = []
    for B in args.batches:
        for compile_step in ([False, True] if args.compile_step else [False]):
            res = {"model": name, "backend": model.backend, "batch": B, "compile_requested": compile_step}
            gen = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            eng = Engine(model, batch_size=B, max_len=P + N, max_new_tokens=N, eos_id=2, temperature=0.8, top_p=0.9,
                         ignore_eos=True, cuda_graph=True, compile_step=compile_step, sampling_kernel=True)
            eng.warmup(prompt_len=P)
            res["warmup_s"] = time.perf_counter() - t0
            res["compiled"] = eng.step_compiled  # False if compiling failed and the eager step was captured
            spread_rows(eng, P, gen)
            snap = [t.clone() for t in (eng.pos, eng.ngen, eng.tok)]

            def reset():
                for t, v in zip((eng.pos, eng.ngen, eng.tok), snap):
                    t.copy_(v)

            try:
                res["step_ms"] = graphed_ms(eng._step_fn)
                reset()
                if not compile_step:
                    res["model_step_ms"] = graphed_ms(lambda: model.step(eng.tok, eng.states, eng.pos))
                    reset()
                    logits = torch.randn(B, model.cfg.vocab_size, device="cuda", dtype=torch.bfloat16)
                    for label, fn in nucleus_variants().items():
                        res[f"sampling_{label}_ms"] = graphed_ms(lambda: fn(logits, eng.keys, eng.ngen, 0.8, 0.9))
                    res["argmax_ms"] = graphed_ms(lambda: logits.argmax(-1))
                    res["softmax_ms"] = graphed_ms(lambda: torch.softmax(logits.float() / 0.8, -1))
                    if B == args.batches[0]:
                        table = kernel_table(eng._step, out / f"kernels_sample_{name}.txt")
                        print("\n".join(table.splitlines()[:24]), flush=True)
                        reset()
                elif B == args.batches[0]:
                    table = kernel_table(eng._step_fn, out / f"kernels_sample_{name}_compiled.txt")
                    print("\n".join(table.splitlines()[:30]), flush=True)
                    reset()
                res["tok_s_at_step_ms"] = B / res["step_ms"] * 1e3
            except Exception as e:  # report, do not stop the other measurements
                res["error"] = f"{type(e).__name__}: {str(e)[:300]}"
            print(f"[sample {name}] " + json.dumps(res), flush=True)
            rows.append(res)
            del eng
            torch._dynamo.reset()
            torch.cuda.empty_cache()
    del model
    return rows


NUCLEUS_CONFIGS = [  # the first is the baseline the others are compared with
    {"BLOCK": 2048, "num_warps": 8},  # the default (sample/nucleus_triton.py CONFIG)
    *({"BLOCK": b, "num_warps": w} for b in (1024, 2048, 4096, 8192) for w in (4, 8, 16) if (b, w) != (2048, 8)),
]


@torch.inference_mode()
def nucleus_sweep(args) -> list[dict]:
    from recall2reason.sample.nucleus_triton import sample_next_triton

    rows = []
    gen = torch.Generator(device="cuda").manual_seed(0)
    for B in args.batches:
        keys = torch.arange(B, device="cuda") * 7919 + 1
        steps = torch.full((B,), 5, device="cuda")
        for kind, scale in (("flat", 1.0), ("peaked", 6.0)):
            logits = (torch.randn(B, 32000, device="cuda", generator=gen) * scale).bfloat16()
            ref = sample_next(logits, keys, steps, 0.8, 0.9)
            ref_ms = graphed_ms(lambda: sample_next(logits, keys, steps, 0.8, 0.9))
            base = None
            for cfg in NUCLEUS_CONFIGS:
                res = {"batch": B, "logits": kind, **cfg, "sort_ms": round(ref_ms, 4)}
                try:
                    got = sample_next_triton(logits, keys, steps, 0.8, 0.9, config=cfg)
                    base = got if base is None else base
                    res["ms"] = round(graphed_ms(lambda: sample_next_triton(logits, keys, steps, 0.8, 0.9, config=cfg)), 4)
                    res["differs_from_sort"] = int((got != ref).sum())
                    res["differs_from_first"] = int((got != base).sum())
                    res["in_range"] = bool(((got >= 0) & (got < 32000)).all())
                except Exception as e:  # a configuration may not compile (registers, shared memory)
                    res["error"] = f"{type(e).__name__}: {str(e)[:200]}"
                print("[nucleus] " + json.dumps(res), flush=True)
                rows.append(res)
            res = {"batch": B, "logits": kind, "softmax_ms": round(graphed_ms(lambda: torch.softmax(logits.float() / 0.8, -1)), 4)}
            print("[nucleus] " + json.dumps(res), flush=True)
            rows.append(res)
    return rows


ATTN_CONFIGS = [  # one block per chunk (the first default), then chunks read in pipelined blocks
    *({"SPLIT": sp, "BLOCK": sp, "num_warps": w, "num_stages": 1} for sp, w in ((128, 2), (128, 4), (256, 4))),
    *({"SPLIT": sp, "BLOCK": bl, "num_warps": w, "num_stages": st}
      for sp in (256, 512) for bl in (32, 64) for st in (2, 3, 4) for w in (1, 2)),
]


@torch.inference_mode()
def attn_sweep(args) -> list[dict]:
    from recall2reason.models.ops.decode_attention import decode_attention, decode_attention_reference

    H, D, P, N = 12, 64, 128, 1024
    gen = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    for B in args.batches:
        q = torch.randn(B, H, D, device="cuda", generator=gen).bfloat16()
        k, v = (torch.randn(B, H, P + N, D, device="cuda", generator=gen).bfloat16() for _ in range(2))
        pos = torch.randint(P, P + N, (B,), device="cuda", generator=gen)  # mid-generation rows
        gbytes = float((pos + 1).sum()) * H * D * 2 * 2 / 1e9  # K and V, bf16
        ref = decode_attention_reference(q, k, v, pos).float()
        for cfg in ATTN_CONFIGS:
            res = {"batch": B, **cfg, "gbytes": round(gbytes, 3)}
            try:
                err = (decode_attention(q, k, v, pos, config=cfg).float() - ref).abs().max().item()
                ms = graphed_ms(lambda: decode_attention(q, k, v, pos, config=cfg), reps=50)
                res.update(ms=round(ms, 4), tb_s=round(gbytes / ms, 3), max_err=err)
            except Exception as e:
                res["error"] = f"{type(e).__name__}: {str(e)[:200]}"
            print("[attn] " + json.dumps(res), flush=True)
            rows.append(res)
    return rows


def sdpa_sweep(args) -> list[dict]:
    """Causal SDPA forward + backward of one training attention layer (micro-batch 16, 12 heads x
    2048 x 64, bf16) with each fused backend; output and dq compared with flash."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    B, H, T, D = 16, 12, 2048, 64
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(B, H, T, D, device="cuda", generator=gen).bfloat16().requires_grad_() for _ in range(3))
    dy = torch.randn(B, H, T, D, device="cuda", generator=gen).bfloat16()
    rows, ref = [], None
    for name in ("FLASH_ATTENTION", "CUDNN_ATTENTION", "EFFICIENT_ATTENTION"):
        backend = getattr(SDPBackend, name)
        res = {"backend": name}

        def fwd_bwd():
            with sdpa_kernel([backend]):
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            dq, = torch.autograd.grad(y, q, dy)
            return y, dq

        try:
            y, dq = fwd_bwd()
            if ref is None:
                ref = (y.float(), dq.float())
            res["out_rel_diff_vs_flash"] = ((y.float() - ref[0]).norm() / ref[0].norm()).item()
            res["dq_rel_diff_vs_flash"] = ((dq.float() - ref[1]).norm() / ref[1].norm()).item()
            ms = event_ms(fwd_bwd)
            flops = 4 * B * H * T * T * D / 2 * 3.5  # causal: fwd 2 matmuls, bwd 5 -> 3.5x the fwd
            res.update(ms_fwd_bwd=round(ms, 4), tflops=round(flops / ms / 1e9, 1))
        except Exception as e:
            res["error"] = f"{type(e).__name__}: {str(e)[:200]}"
        print("[sdpa] " + json.dumps(res), flush=True)
        rows.append(res)
    return rows


def gemm_sweep(args) -> list[dict]:
    """Forward (x W^T), input-gradient (g W) and weight-gradient (g^T x) GEMMs of a block's input
    projections at 32 x 2048 tokens, bf16: each width separately vs the widths fused into one."""
    N, d = 32 * 2048, 768
    groups = {"attention q,k,v": [768, 768, 768], "gla q,k,v,gk_low": [768, 768, 768, 16],
              "gdn q,k,v,a,b": [768, 768, 768, 12, 12], "swiglu value,gate": [3072, 3072]}
    x = torch.randn(N, d, device="cuda", dtype=torch.bfloat16)
    rows = []
    for name, widths in groups.items():
        ws = [torch.randn(w, d, device="cuda", dtype=torch.bfloat16) for w in widths]
        gs = [torch.randn(N, w, device="cuda", dtype=torch.bfloat16) for w in widths]
        wf, gf = torch.cat(ws), torch.cat(gs, dim=1)
        flops = 2 * N * d * sum(widths)
        for kind, sep, fused in (
            ("forward", lambda: [x @ w.t() for w in ws], lambda: x @ wf.t()),
            ("input grad", lambda: functools.reduce(torch.add, [g @ w for g, w in zip(gs, ws)]), lambda: gf @ wf),
            ("weight grad", lambda: [g.t() @ x for g in gs], lambda: gf.t() @ x),
        ):
            ms_sep, ms_fused = event_ms(sep), event_ms(fused)
            res = {"group": name, "gemm": kind, "ms_separate": round(ms_sep, 4), "ms_fused": round(ms_fused, 4),
                   "tflops_separate": round(flops / ms_sep / 1e9, 1), "tflops_fused": round(flops / ms_fused / 1e9, 1)}
            print("[gemm] " + json.dumps(res), flush=True)
            rows.append(res)
    # the step's other GEMMs, one weight each: (in features, out features, tokens)
    singles = {"attention o_proj": (768, 768, N), "swiglu ff_out": (3072, 768, N),
               "lm head, one 32768-token loss chunk": (768, 32000, 32768)}
    for name, (k_in, k_out, n) in singles.items():
        a = torch.randn(n, k_in, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(k_out, k_in, device="cuda", dtype=torch.bfloat16)
        g = torch.randn(n, k_out, device="cuda", dtype=torch.bfloat16)
        flops = 2 * n * k_in * k_out
        for kind, fn in (("forward", lambda: a @ w.t()), ("input grad", lambda: g @ w), ("weight grad", lambda: g.t() @ a)):
            ms = event_ms(fn)
            res = {"group": name, "gemm": kind, "ms": round(ms, 4), "tflops": round(flops / ms / 1e9, 1)}
            print("[gemm] " + json.dumps(res), flush=True)
            rows.append(res)
        del a, w, g
    return rows


def qkv_sweep(args) -> list[dict]:
    """ms per forward + backward of attention's q / k / v with RoPE (Attention._qkv, both forms) at
    32 x 2048 tokens, d 768, 12 heads of 64, bf16, compiled; the packed form at each launch config."""
    from recall2reason.models.config import ModelConfig
    from recall2reason.models.layers.attention import Attention
    from recall2reason.models.ops import qkv_rope as op

    cfg = ModelConfig.from_dict(dict(d_model=768, n_layers=1, n_heads=12, n_kv_heads=12, vocab_size=32000, max_seq_len=2048,
                                     layers=["attention"], backend="kernels", mamba={"dt_rank": None}))
    layer = Attention(cfg, 0, "kernels").cuda().to(torch.bfloat16)
    x = torch.randn(32, 2048, 768, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    # incoming gradients laid out as SDPA's backward returns them (like q: (B, T, heads, hd) memory
    # seen as (B, heads, T, hd)); contiguous (B, heads, T, hd) ones would add a copy to the packed op
    grads = [torch.randn(32, 2048, 12, 64, device="cuda", dtype=torch.bfloat16).transpose(1, 2) for _ in range(3)]
    default, rows = dict(op.DEFAULT_CONFIG), []

    def fwd_bwd(fn):
        torch.autograd.backward(fn(x), grads)

    def fwd(fn):
        with torch.no_grad():
            fn(x)

    variants = [("separate", None)] + [("packed", {"BLOCK_T": b, "num_warps": w}) for b in (16, 32, 64) for w in (1, 2, 4)]
    for form, config in variants:
        layer.qkv_projection = form
        op.DEFAULT_CONFIG = config or default  # read at launch: the compiled graph calls the op as it is
        fn = torch.compile(layer._qkv)
        res = {"form": form, "config": config, "ms_fwd_bwd": round(event_ms(lambda: fwd_bwd(fn)), 4),
               "ms_fwd_no_grad": round(event_ms(lambda: fwd(fn)), 4)}
        print("[qkv] " + json.dumps(res), flush=True)
        rows.append(res)
    op.DEFAULT_CONFIG = default
    return rows


def kernel_class(name: str) -> str:
    n = name.lower()
    if any(k in n for k in ("gemm", "nvjet", "xmma", "cutlass", "cublas")):
        return "gemm"
    if any(k in n for k in ("cudnn", "fmha", "flash", "attn")):
        return "attention"
    if n.startswith("triton_"):
        return "inductor"
    return "other"


def graphed_timeline(lm, model, x, path: Path, reps: int = 10) -> dict:
    """The trainer's graphed micro-step (pretrain/graphs.py): ms per replay between CUDA events, and
    from a profile of two replays the kernels' busy time against the replay's span, i.e. how much
    of a replay the GPU spends between kernels (launch gaps inside the graph)."""
    from torch.profiler import ProfilerActivity, profile

    from recall2reason.pretrain.graphs import GraphedMicroStep

    step = GraphedMicroStep(lm, list(model.parameters()), n_micro=1, bf16=True)
    inputs, targets = x[:, :-1].contiguous(), x[:, 1:].contiguous()
    replay_ms = event_ms(lambda: step(inputs, targets), reps, warmup=1)  # the first call warms up and captures
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(2):
            step(inputs, targets)
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
        "replay_ms": round(replay_ms, 3), "kernels_per_replay": len(kernels) // 2,
        "busy_ms_per_replay": round(busy / 2e3, 3), "span_ms_per_replay": round(span / 2e3, 3),
        "gap_ms_per_replay": round(sum(gaps) / 2e3, 3), "gaps_over_10us": sum(g > 10 for g in gaps) // 2,
        "median_gap_us": round(gaps[len(gaps) // 2], 2) if gaps else 0.0,
        "kernel_ms_by_class": {k: round(v / 2e3, 3) for k, v in sorted(by_class.items(), key=lambda kv: -kv[1])},
    }
    path.write_text(json.dumps(res, indent=2))
    model.zero_grad(set_to_none=True)
    return res


def profile_train(args, out: Path) -> list[dict]:
    import train_throughput as tt
    from recall2reason.pretrain.config import TrainConfig
    from recall2reason.pretrain.schedule import build_optimizer
    from recall2reason.pretrain.train import LossModule, compile_model

    spec = specs()[args.train_model]
    torch.backends.cuda.matmul.allow_tf32 = True
    # kernel table of one micro-step (compiled blocks, bf16 autocast)
    cfg = TrainConfig(micro_batch_size=16)
    model = build_model(spec.model_config()).cuda()
    build_optimizer(model, cfg, torch.device("cuda"))
    compile_model(model, cfg.compile_scope)
    lm = LossModule(model, cfg)
    x = torch.randint(0, 32000, (16, 2049), device="cuda")

    def micro():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = lm(x[:, :-1], x[:, 1:])
        loss.backward()

    for _ in range(2):
        micro()
    table = kernel_table(micro, out / f"kernels_train_{args.train_model}.txt", steps=2)
    print("\n".join(table.splitlines()[:30]), flush=True)
    model.zero_grad(set_to_none=True)
    timeline = graphed_timeline(lm, model, x, out / f"timeline_train_{args.train_model}.json")
    print("[train] graphed micro-step: " + json.dumps(timeline), flush=True)
    del model, lm
    torch.cuda.empty_cache()
    torch._dynamo.reset()

    results = []
    for mb, accum in args.train_batches:
        a = argparse.Namespace(micro_batch=mb, accum=accum, seq_len=2048, steps=6, warmup=2, precision="bf16", backend="auto",
                               compile_mode=None, compile_scope=cfg.compile_scope, loss_chunk=TrainConfig.loss_chunk_tokens)
        try:
            r = tt.bench_one(spec, a, torch.device("cuda"), compile=True, graphs=True)  # the trainer's default
        except Exception as e:
            r = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        finally:
            torch._dynamo.reset()
            torch.cuda.empty_cache()
        r["variant"] = f"micro-batch {mb} x accum {accum}, CUDA graph"
        print(f"[train] {r['variant']}: " + json.dumps({k: r.get(k) for k in ('tokens_per_s', 'mfu', 'peak_mem_gib', 'warmup_s', 'error')}), flush=True)
        results.append(r)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", action="store_true")
    p.add_argument("--train", action="store_true")
    p.add_argument("--nucleus-sweep", action="store_true")
    p.add_argument("--attn-sweep", action="store_true")
    p.add_argument("--sdpa-sweep", action="store_true", help="training SDPA fwd+bwd per backend (flash, cuDNN, efficient)")
    p.add_argument("--gemm-sweep", action="store_true", help="a block's input-projection GEMMs, separate vs fused; o_proj, ff_out, LM head")
    p.add_argument("--qkv-sweep", action="store_true", help="attention's q / k / v + RoPE: separate vs packed, per launch config")
    p.add_argument("--sample-models", default="transformer")
    p.add_argument("--batches", type=lambda v: [int(b) for b in v.split(",")], default=[256])
    p.add_argument("--train-model", default="transformer", help="the model whose micro-step --train profiles")
    p.add_argument("--train-batches", default=[(16, 4), (32, 2)], help="micro-batch x accum variants --train times, e.g. 16x4,32x2 ('' for none)",
                   type=lambda v: [tuple(int(n) for n in b.split("x")) for b in v.split(",") if b])
    p.add_argument("--compile-step", action="store_true", help="also time the decode step under torch.compile")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    result = {"device": torch.cuda.get_device_name(), "sample": [], "train": [], "nucleus": [], "attn": [], "sdpa": [], "gemm": [], "qkv": []}
    if args.sdpa_sweep:
        result["sdpa"] = sdpa_sweep(args)
    if args.gemm_sweep:
        result["gemm"] = gemm_sweep(args)
    if args.qkv_sweep:
        result["qkv"] = qkv_sweep(args)
    if args.attn_sweep:
        result["attn"] = attn_sweep(args)
    if args.nucleus_sweep:
        result["nucleus"] = nucleus_sweep(args)
    if args.sample:
        sp = specs()
        for name in args.sample_models.split(","):
            try:
                result["sample"] += profile_sample(name, sp[name], args, args.out)
            except Exception as e:
                print(f"[sample {name}] FAILED {type(e).__name__}: {e}", flush=True)
    if args.train:
        result["train"] = profile_train(args, args.out)
    (args.out / "profile.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
