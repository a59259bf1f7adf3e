"""python -m recall2reason.probe set|run ...: write the probe set, or run it through one model.

    set --cfg '<probe section>' --out results/probes/probe_set.jsonl
    run --cfg '{"probe": {...}, "sample": {<engine keys>}, "vote": {"timeout_s": 5}}' --model-dir results/pretrain/M
        --tokenizer results/data/tokenizer.model --probes results/probes/probe_set.jsonl
        --out results/probes/M.jsonl --summary results/probes/M.summary.csv

``run`` decodes greedily with the sample stage's engine: its ``sample`` keys set the engine
(prompt_prefix, dtype, cuda_graph, ...); temperature, top_p, batch size and token limit are the
probe stage's own. ``vote.timeout_s`` bounds each math-verify call of the answer extractor.
"""

from __future__ import annotations

import argparse
import sys

from recall2reason.common import ConfigError, from_dict, load_cfg_arg
from recall2reason.common.cli import add_compile_cache_arg, setup_logging, stage_parser, use_compile_cache


def build_parser() -> argparse.ArgumentParser:
    p = stage_parser("python -m recall2reason.probe", "Recall probes: generate the probe set, or decode and score it.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("set", help="write the seeded probe set")
    s.add_argument("--cfg", default=argparse.SUPPRESS, help="the probe section (inline JSON or @file)")
    s.add_argument("--out", required=True, help="results/probes/probe_set.jsonl")
    r = sub.add_parser("run", help="greedy answers of one model to every probe, scored")
    r.add_argument("--cfg", default=argparse.SUPPRESS, help='{"probe": ..., "sample": ..., "vote": ...} (inline JSON or @file)')
    r.add_argument("--model-dir", required=True, help="results/pretrain/<model> (model.safetensors + config.json)")
    r.add_argument("--tokenizer", required=True, help="results/data/tokenizer.model")
    r.add_argument("--probes", required=True, help="results/probes/probe_set.jsonl")
    r.add_argument("--out", required=True, help="results/probes/<model>.jsonl")
    r.add_argument("--summary", required=True, help="results/probes/<model>.summary.csv")
    r.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    r.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    add_compile_cache_arg(r)
    return p


def job_configs(d: dict):
    """The three configs of a ``run`` job: the probe section, the engine, the extractor."""
    from recall2reason.probe.config import ProbeConfig
    from recall2reason.sample.config import SampleConfig
    from recall2reason.vote.stage import VoteConfig

    unknown = sorted(set(d) - {"probe", "sample", "vote"})
    if unknown:
        raise ConfigError(f"unknown --cfg key(s) {unknown}; known: probe, sample, vote")
    probe = ProbeConfig.from_dict(d.get("probe"))
    greedy = {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_new_tokens": probe.max_new_tokens, "batch_size": probe.batch_size}
    engine = SampleConfig.from_dict({**(d.get("sample") or {}), **greedy})
    vote = from_dict(VoteConfig, d.get("vote"), "vote")
    return probe, engine, vote


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    log = setup_logging(args.log_level)
    use_compile_cache(getattr(args, "compile_cache", None))

    from recall2reason.probe.config import ProbeConfig
    from recall2reason.probe.run import ProbeInputError, run_probes, write_probe_set

    try:
        cfg = load_cfg_arg(getattr(args, "cfg", ""))
        if args.command == "set":
            write_probe_set(ProbeConfig.from_dict(cfg), args.out)
        else:
            probe, engine, vote = job_configs(cfg)
            run_probes(probe, engine, vote.timeout_s, model_dir=args.model_dir, tokenizer=args.tokenizer,
                       probes_path=args.probes, out=args.out, summary=args.summary, device=args.device,
                       progress=not args.no_progress)
    except (ConfigError, ProbeInputError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
