"""New tokens/s of the sample engine at the paper's settings, next to HF generate and mamba-ssm.

    python benchmarks/sample_throughput.py                      # GPU: the paper's models, ~3 min
    python benchmarks/sample_throughput.py --tiny --device cpu  # CPU dry run of the logic at tiny shapes

Random weights (throughput does not depend on them); every completion is forced to the full
``--new-tokens`` (EOS ignored) so every model generates the same token count. Per model: an
engine with ``--batch`` slots decodes ``--rounds`` x batch completions (``--rounds`` x batch / n
prompts of ``--prompt-len`` random tokens, n samples each) after a warm-up (graph capture).
Baselines on the same GPU in the same run: HF ``generate`` on the Transformer's weights mapped into
``LlamaForCausalLM`` (checked logit-equal first), and mamba-ssm ``generate(cg=True)`` on a
Mamba1 + GatedMLP model of Mamba100's shape.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "src"))  # appended: a tree on PYTHONPATH (an A/B variant) or the installed package wins

from decode_roofline import decode_step_bytes, hbm_bandwidth  # noqa: E402
from recall2reason.models import build_model  # noqa: E402
from recall2reason.sample.engine import Engine, Request  # noqa: E402
from recall2reason.study import expand_models  # noqa: E402

PAPER_MODELS = 13
PAPER_PROBLEMS = 1319 + 500  # GSM8K test + MATH500
PAPER_N = 64


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def model_configs(tiny: bool) -> dict[str, dict]:
    models_cfg = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    if tiny:
        models_cfg["base"].update(d_model=64, n_heads=4, n_kv_heads=4, vocab_size=512)
    return {s.name: s.model_config() for s in expand_models(models_cfg)}


def engine_opts(args) -> dict:
    return {"compile_step": args.compile_step, "sampling_kernel": args.sampling_kernel}


def bench_engine(model, args, dev, attention_kernel: bool = True) -> dict:
    V = model.cfg.vocab_size
    g = torch.Generator().manual_seed(0)
    n_prompts = max(1, args.rounds * args.batch // args.n)
    prompts = [torch.randint(3, V, (args.prompt_len,), generator=g).tolist() for _ in range(n_prompts)]
    reqs = [Request((p, i), prompts[p], seed=p * 1000 + i) for p in range(n_prompts) for i in range(args.n)]
    eng = Engine(model, batch_size=args.batch, max_len=args.prompt_len + args.new_tokens, max_new_tokens=args.new_tokens,
                 eos_id=2, temperature=args.temperature, top_p=args.top_p, ignore_eos=True,
                 cuda_graph=not args.no_graph, sync_every=args.sync_every, attention_kernel=attention_kernel,
                 **engine_opts(args))
    t0 = time.perf_counter()
    eng.warmup(prompt_len=args.prompt_len)
    t_warm = time.perf_counter() - t0
    sync(dev)
    t0 = time.perf_counter()
    tokens = sum(c.n_generated for c in eng.generate(reqs))
    sync(dev)
    secs = time.perf_counter() - t0
    assert tokens == len(reqs) * args.new_tokens
    res = {"tokens": tokens, "completions": len(reqs), "secs": secs, "tok_s": tokens / secs,
           "decode_attention": eng.decode_attention, "kernels": model.kernels_used(),
           "steps": eng.steps_run, "warmup_s": t_warm, "step_compiled": eng.step_compiled,
           # where the wall time went: filling slots (prefill), stepping (incl. waiting), harvesting
           **{f"{k}_s": round(v, 3) for k, v in eng.phase_s.items()},
           "ms_per_step": round(eng.phase_s["step"] / max(eng.steps_run, 1) * 1e3, 3)}
    # the memory roofline (benchmarks/decode_roofline.py) at the mean context of a row's life
    need = decode_step_bytes(model, args.batch, args.prompt_len + args.new_tokens / 2, eng.dtype)
    res["step_bytes"] = {k: round(v) for k, v in need.items()}
    if dev.type == "cuda":
        res["peak_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
        try:
            res["roofline_ms"] = round(need["total"] / hbm_bandwidth(torch.cuda.get_device_name(dev)) * 1e3, 3)
            res["vs_roofline"] = round(res["ms_per_step"] / res["roofline_ms"], 2)
        except KeyError as e:
            print(f"no roofline: {e}", flush=True)
    del eng
    return res


@torch.inference_mode()
def check_decode_attention(dev) -> float:
    """Triton decode attention vs the masked reference at the paper's shapes (bf16 cache)."""
    from recall2reason.models.ops.decode_attention import decode_attention, decode_attention_reference

    g = torch.Generator(device=dev).manual_seed(0)
    B, H, L, D = 64, 12, 1152, 64
    q = torch.randn(B, H, D, device=dev, generator=g).bfloat16()
    k = torch.randn(B, H, L, D, device=dev, generator=g).bfloat16()
    v = torch.randn(B, H, L, D, device=dev, generator=g).bfloat16()
    pos = torch.randint(0, L, (B,), device=dev, generator=g)
    pos[:3] = torch.tensor([0, L - 1, 128], device=dev)
    got = decode_attention(q, k, v, pos).float()
    want = decode_attention_reference(q, k, v, pos).float()
    return (got - want).abs().max().item()


def check_repro(model, args) -> bool:
    """Same completions when the same requests come in another order (other batch neighbours,
    other slots), at the benchmark's batch shape, EOS on: the reproducibility claim on this device."""
    g = torch.Generator().manual_seed(1)
    V = model.cfg.vocab_size
    prompts = [torch.randint(3, V, (int(n),), generator=g).tolist() for n in torch.randint(8, 64, (6,), generator=g)]
    reqs = [Request((p, i), prompts[p], seed=7 * p + i) for p in range(6) for i in range(8)]
    outs = []
    for order in (reqs, reqs[::-1]):
        eng = Engine(model, batch_size=16, max_len=64 + 96, max_new_tokens=96, eos_id=2, temperature=args.temperature,
                     top_p=args.top_p, cuda_graph=not args.no_graph, sync_every=args.sync_every,
                     **{**engine_opts(args), "compile_step": False})  # compiling twice more would double the run
        outs.append({c.key: c.tokens for c in eng.generate(order)})
        del eng
    return outs[0] == outs[1]


def to_llama(model):
    """Our Transformer's weights in a LlamaForCausalLM (same RMSNorm, RoPE rotate-half, SwiGLU)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = model.cfg
    lc = LlamaConfig(vocab_size=c.vocab_size, hidden_size=c.d_model, intermediate_size=c.mlp_hidden,
                     num_hidden_layers=c.n_layers, num_attention_heads=c.n_heads, num_key_value_heads=c.n_kv_heads,
                     max_position_embeddings=4096, rms_norm_eps=c.norm_eps, rope_theta=c.rope_theta,
                     tie_word_embeddings=False, attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
                     pad_token_id=0)
    sd = {"model.embed_tokens.weight": model.embed.weight, "model.norm.weight": model.final_norm.weight,
          "lm_head.weight": model.lm_head.weight}
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        value, gate = b.mlp.ff_proj.weight.chunk(2, dim=0)  # our SwiGLU: ff_proj -> (value, gate)
        sd.update({p + "input_layernorm.weight": b.mixer_norm.weight, p + "post_attention_layernorm.weight": b.mlp_norm.weight,
                   p + "self_attn.q_proj.weight": b.mixer.q_proj.weight, p + "self_attn.k_proj.weight": b.mixer.k_proj.weight,
                   p + "self_attn.v_proj.weight": b.mixer.v_proj.weight, p + "self_attn.o_proj.weight": b.mixer.o_proj.weight,
                   p + "mlp.gate_proj.weight": gate, p + "mlp.up_proj.weight": value, p + "mlp.down_proj.weight": b.mlp.ff_out.weight})
    llama = LlamaForCausalLM(lc).to(model.lm_head.weight.device, model.lm_head.weight.dtype).eval()
    missing, unexpected = llama.load_state_dict({k: v.detach().clone() for k, v in sd.items()}, strict=False)
    assert not unexpected and not [k for k in missing if "rotary" not in k], (missing, unexpected)
    return llama


@torch.inference_mode()
def bench_hf(model, args, dev) -> dict:
    llama = to_llama(model)
    ids = torch.randint(3, model.cfg.vocab_size, (1, 64), device=dev)
    ref = model(ids).float()
    diff = (llama(ids).logits.float() - ref).abs().max().item() / ref.abs().max().item()
    B = args.hf_batch
    x = torch.randint(3, model.cfg.vocab_size, (B, args.prompt_len), device=dev)
    kw = dict(do_sample=True, temperature=args.temperature, top_p=args.top_p, top_k=0, pad_token_id=0,
              attention_mask=torch.ones_like(x))
    llama.generate(x[:, :16], max_new_tokens=8, min_new_tokens=8, **kw)  # warm-up
    sync(dev)
    t0 = time.perf_counter()
    out = llama.generate(x, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, max_time=args.hf_max_time, **kw)
    sync(dev)
    secs = time.perf_counter() - t0
    new = out.shape[1] - args.prompt_len
    del llama
    return {"tokens": B * new, "secs": secs, "tok_s": B * new / secs, "new_per_row": new, "batch": B,
            "logit_rel_diff": diff}


@torch.inference_mode()
def bench_mamba_ssm(cfg: dict, args, dev) -> dict:
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel

    m = cfg["mamba"]
    mc = MambaConfig(d_model=cfg["d_model"], d_intermediate=cfg["mlp_ratio"] * cfg["d_model"] // 2, n_layer=cfg["n_layers"],
                     vocab_size=cfg["vocab_size"], rms_norm=True, residual_in_fp32=True, fused_add_norm=True,
                     pad_vocab_size_multiple=8, tie_embeddings=False,
                     ssm_cfg={"layer": "Mamba1", "d_state": m["d_state"], "d_conv": m["d_conv"], "expand": m["expand"],
                              "dt_rank": m["dt_rank"]})
    model = MambaLMHeadModel(mc, device=dev, dtype=torch.bfloat16).eval()
    B = args.batch
    x = torch.randint(3, cfg["vocab_size"], (B, args.prompt_len), device=dev)
    kw = dict(max_length=args.prompt_len + args.new_tokens, cg=True, temperature=args.temperature, top_p=args.top_p, top_k=0)
    model.generate(x, **kw)  # captures the graph for this (batch, max_length)
    sync(dev)
    t0 = time.perf_counter()
    out = model.generate(x, **kw)
    sync(dev)
    secs = time.perf_counter() - t0
    seqs = out if torch.is_tensor(out) else out.sequences
    new = seqs.shape[1] - args.prompt_len
    del model
    return {"tokens": B * new, "secs": secs, "tok_s": B * new / secs, "batch": B, "new_per_row": new}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["transformer", "mamba50", "gla50", "gdn50", "mamba100", "gdn100"])
    p.add_argument("--batch", type=int, default=512, help="engine slots (config sample.batch_size)")
    p.add_argument("--rounds", type=int, default=2, help="completions = rounds x batch")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=1024)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.9)
    p.add_argument("--sync-every", type=int, default=4)
    p.add_argument("--no-graph", action="store_true")
    p.add_argument("--compile-step", action="store_true", help="torch.compile the decode step (config sample.compile)")
    p.add_argument("--sampling-kernel", action="store_true", help="Triton top-p instead of the sort (config sample.sampling_kernel)")
    p.add_argument("--attn-compare", action="store_true", help="also run the Transformer with masked SDPA decode attention")
    p.add_argument("--hf", action="store_true", help="HF generate on the Transformer's weights")
    p.add_argument("--hf-batch", type=int, default=256)
    p.add_argument("--hf-max-time", type=float, default=30.0, help="cap HF's timed generate (seconds)")
    p.add_argument("--mamba-ssm", action="store_true", help="mamba-ssm generate(cg=True) at Mamba100's shape")
    p.add_argument("--tiny", action="store_true", help="tiny shapes (CPU dry run)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--backend", default="auto")
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    dev = torch.device(args.device)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    cfgs = model_configs(args.tiny)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}; batch {args.batch}, {args.rounds * args.batch} completions/model, "
          f"prompt {args.prompt_len} + {args.new_tokens} new, T {args.temperature}, top-p {args.top_p}", flush=True)
    results: dict[str, dict] = {}
    if dev.type == "cuda":
        try:
            err = check_decode_attention(dev)
            print(f"decode attention kernel vs reference (bf16, 64 x 12 heads x 1152): max abs diff {err:.2e}", flush=True)
            results["decode_attention_check"] = {"max_abs_diff": err}
        except Exception as e:
            traceback.print_exc()
            results["decode_attention_check"] = {"error": repr(e)}
    for m in args.models:
        torch.manual_seed(0)
        try:
            model = build_model({**cfgs[m], "backend": args.backend}).to(dev, dtype).eval()
            r = bench_engine(model, args, dev)
            r["backend"] = model.backend
            r["repro_ok"] = check_repro(model, args)
            results[m] = r
            print(f"{m:12s} {r['tok_s']:>10,.0f} new tok/s  ({r['tokens']} tokens in {r['secs']:.1f} s, "
                  f"warm-up {r['warmup_s']:.1f} s, backend {model.backend}, reorder-reproducible {r['repro_ok']}; "
                  f"fill {r['fill_s']} s, {r['ms_per_step']} ms per step, harvest {r['harvest_s']} s, compiled step {r['step_compiled']}; "
                  f"memory roofline {r.get('roofline_ms', '-')} ms, {r.get('vs_roofline', '-')}x of it)", flush=True)
            if m == "transformer" and args.attn_compare:
                r2 = bench_engine(model, args, dev, attention_kernel=False)
                results["transformer[sdpa]"] = r2
                print(f"{'transformer[sdpa]':12s} {r2['tok_s']:>10,.0f} new tok/s  (masked SDPA over the whole cache)", flush=True)
            if m == "transformer" and args.hf:
                try:
                    h = bench_hf(model, args, dev)
                    results["hf_generate"] = h
                    print(f"{'HF generate':12s} {h['tok_s']:>10,.0f} new tok/s  (batch {h['batch']}, {h['new_per_row']} new "
                          f"tokens per row in {h['secs']:.1f} s; logits rel. diff vs ours {h['logit_rel_diff']:.1e})", flush=True)
                except Exception as e:  # keep the other measurements
                    traceback.print_exc()
                    results["hf_generate"] = {"error": repr(e)}
            del model
        except Exception as e:
            traceback.print_exc()
            results[m] = {"error": repr(e)}
        if dev.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        torch._dynamo.reset()
        if args.json:  # after every model: a run stopped by a time limit keeps what it measured
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    if args.mamba_ssm:
        try:
            r = bench_mamba_ssm(cfgs["mamba100"], args, dev)
            results["mamba_ssm_generate"] = r
            print(f"{'mamba-ssm cg':12s} {r['tok_s']:>10,.0f} new tok/s  (batch {r['batch']}, {r['new_per_row']} new tokens)", flush=True)
        except Exception as e:
            traceback.print_exc()
            results["mamba_ssm_generate"] = {"error": repr(e)}

    print("\n| model | new tok/s | s | completions | note |\n|---|---|---|---|---|")
    for m, r in results.items():
        if "error" in r:
            print(f"| {m} | - | - | - | failed: {r['error'][:80]} |")
        elif "tok_s" in r:
            print(f"| {m} | {r['tok_s']:,.0f} | {r['secs']:.1f} | {r.get('completions', '-')} | peak {r.get('peak_gib', 0):.1f} GiB, "
                  f"reproducible {r.get('repro_ok', '-')} |")
    tr, hf = results.get("transformer", {}), results.get("hf_generate", {})
    if "tok_s" in tr and "tok_s" in hf:
        print(f"\nTransformer engine / HF generate: {tr['tok_s'] / hf['tok_s']:.1f}x")
    mb, ms = results.get("mamba100", {}), results.get("mamba_ssm_generate", {})
    if "tok_s" in mb and "tok_s" in ms:
        print(f"Mamba100 engine / mamba-ssm generate(cg=True): {mb['tok_s'] / ms['tok_s']:.2f}x")
    # projection: the 13 paper models, each completion at the full 1024 tokens (an upper bound:
    # EOS ends most completions earlier); unmeasured models take the rate of their class's 50 %
    # hybrid (75 / 83 % hybrids and GLA100 have fewer attention layers, so this is pessimistic)
    rates = {m: r["tok_s"] for m, r in results.items() if "tok_s" in r and m in cfgs}
    if rates:
        per_model = PAPER_PROBLEMS * PAPER_N * 1024
        hours = 0.0
        for m in cfgs:
            if m in rates:
                rate = rates[m]
            else:
                cls50 = m.rstrip("0123456789") + "50"
                rate = rates.get(cls50, min(rates.values()))
            hours += per_model / rate / 3600
        print(f"\nProjected GPU-hours for the paper's sampling ({PAPER_MODELS} models x {PAPER_PROBLEMS} problems x {PAPER_N} "
              f"samples x 1024 tokens = {PAPER_MODELS * per_model / 1e9:.2f} G tokens, upper bound): {hours:.1f} h on {name}")
        results["projected_gpu_hours_upper_bound"] = hours
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
