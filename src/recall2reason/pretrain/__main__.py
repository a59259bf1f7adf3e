"""python -m recall2reason.pretrain --cfg '{"name", "model", "train"}' --data MANIFEST --tokenizer MODEL
--out-dir DIR --state-dir DIR

Trains one model. Writes ``DIR/model.safetensors``, ``DIR/config.json`` and ``DIR/metrics.jsonl``
(the declared outputs); resumable state lives in ``--state-dir``. With more than one visible GPU
it re-launches itself under torchrun (see ``pretrain/distributed.py``).
"""

from __future__ import annotations

import sys

from recall2reason.common.cfg import ConfigError, load_cfg_arg
from recall2reason.common.cli import add_compile_cache_arg, setup_logging, stage_parser, use_compile_cache
from recall2reason.common.io import InputFileError


def build_parser():
    p = stage_parser("python -m recall2reason.pretrain", "Pretrain one model of the study (paper Section 3.3).")
    p.add_argument("--data", required=True, help="token manifest of the data stage (results/data/train/manifest.json)")
    p.add_argument("--tokenizer", required=True, help="tokenizer.model the shards must have been made with")
    p.add_argument("--out-dir", required=True, help="final checkpoint dir: model.safetensors, config.json, metrics.jsonl")
    p.add_argument("--state-dir", required=True, help="resumable state (results/.state/pretrain/<model>), kept across retries")
    p.add_argument("--nproc", type=int, default=None,
                   help="data-parallel processes (default: number of visible GPUs; >1 re-launches under torchrun)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    add_compile_cache_arg(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    log = setup_logging(args.log_level)
    use_compile_cache(args.compile_cache)  # before a torchrun relaunch: the ranks inherit it
    from recall2reason.pretrain.config import PretrainJob

    try:
        job = PretrainJob.from_dict(load_cfg_arg(args.cfg))
    except ConfigError as e:
        log.error("%s", e)
        return 2

    from recall2reason.pretrain import distributed

    if not distributed.under_torchrun():
        n = args.nproc if args.nproc is not None else (distributed.visible_gpus() if args.device != "cpu" else 1)
        if n > 1:
            distributed.relaunch_with_torchrun(n, argv)  # does not return

    from recall2reason.data.shards import TokenizerMismatchError
    from recall2reason.pretrain.checkpoint import ResumeMismatchError
    from recall2reason.pretrain.train import PretrainError, train

    dist = distributed.init_distributed(args.device)
    try:
        train(job, args.data, args.tokenizer, args.out_dir, args.state_dir, dist)
    except (ConfigError, InputFileError, PretrainError, TokenizerMismatchError, ResumeMismatchError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    finally:
        dist.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
