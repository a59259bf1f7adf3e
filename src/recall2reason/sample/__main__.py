"""python -m recall2reason.sample --cfg '<sample section as JSON>' --model-dir ... --part K ..."""

from __future__ import annotations

from recall2reason.common import ConfigError, InputFileError, load_cfg_arg
from recall2reason.common.cli import add_compile_cache_arg, setup_logging, stage_parser, use_compile_cache


def main(argv: list[str] | None = None) -> int:
    p = stage_parser("python -m recall2reason.sample", "Sample completions for one (model, eval set, part).")
    p.add_argument("--model-dir", required=True, help="results/pretrain/<model> (model.safetensors + config.json)")
    p.add_argument("--tokenizer", required=True, help="results/data/tokenizer.model")
    p.add_argument("--eval", required=True, help="results/data/eval/<dataset>.jsonl")
    p.add_argument("--part", type=int, default=0, help="0-based part of sample.jobs (a contiguous block of sample indices)")
    p.add_argument("--out", required=True, help="results/samples/<model>/<dataset>/part-K.jsonl")
    p.add_argument("--stats", required=True, help="results/samples/<model>/<dataset>/part-K.stats.json")
    p.add_argument("--state-dir", required=True, help="resumable shards, e.g. results/.state/sample/<model>/<dataset>/part-K")
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    add_compile_cache_arg(p)
    args = p.parse_args(argv)
    log = setup_logging(args.log_level)
    use_compile_cache(args.compile_cache)

    from recall2reason.sample.config import SampleConfig
    from recall2reason.sample.run import run_sample

    try:
        cfg = SampleConfig.from_dict(load_cfg_arg(args.cfg))
        cfg.part_indices(args.part)  # --part within 0..jobs-1
    except ConfigError as e:
        p.error(str(e))
    try:
        run_sample(
            cfg, model_dir=args.model_dir, tokenizer=args.tokenizer, eval_path=args.eval, part=args.part,
            out=args.out, stats=args.stats, state_dir=args.state_dir, device=args.device, progress=not args.no_progress,
        )
    except (InputFileError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
