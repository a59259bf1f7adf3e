"""CLI of the judge stage: ``run`` (judge one model x eval set), ``estimate`` (before spending) and
``validate`` (a backend measured on completions with known error categories)."""

from __future__ import annotations

import argparse
import json
import sys

from recall2reason.common import ConfigError, InputFileError, from_dict, load_cfg_arg
from recall2reason.common.cli import setup_logging, stage_parser
from recall2reason.judge.config import JudgeConfig


def main(argv: list[str] | None = None) -> int:
    p = stage_parser("python -m recall2reason.judge", __doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="judge the first judge.first_k completions of every problem")
    r.add_argument("--model-name", required=True, help="the studied model (for the ledger), e.g. transformer")
    r.add_argument("--dataset", required=True, help="eval set name, e.g. gsm8k")
    r.add_argument("--eval", required=True, help="data/eval/<dataset>.jsonl")
    r.add_argument("--samples", required=True, nargs="+", help="samples/<model>/<dataset>/part-*.jsonl")
    r.add_argument("--vote", required=True, help="vote/<model>/<dataset>.problems.jsonl (math-verify results)")
    r.add_argument("--cache", required=True, help="cache directory of paid answers, e.g. results/.cache/judge")
    r.add_argument("--out", required=True, help="judge/<model>/<dataset>.jsonl")
    r.add_argument("--ledger", required=True, help="judge/<model>/<dataset>.ledger.json")

    e = sub.add_parser("estimate", help="print expected calls, tokens and dollars; spends nothing")
    e.add_argument("--eval", required=True, nargs="+", help="data/eval/<dataset>.jsonl files")
    e.add_argument("--models", type=int, default=1, help="number of studied models (default 1)")
    e.add_argument("--completion-tokens", type=int, default=300, help="assumed completion length without --samples")
    e.add_argument("--samples", nargs="+", help="real completions of one model (one --eval only)")
    e.add_argument("--vote", help="vote problems.jsonl matching --samples")
    e.add_argument("--cache", help="cache directory: answers in it are not counted")
    e.add_argument("--json", action="store_true", help="print JSON instead of text")

    v = sub.add_parser("validate", help="measure a backend on the validation set (known labels): kappa, confusion, cost")
    v.add_argument("--set", default=None, help="validation items jsonl (default: the committed judge/data/validation_v1.jsonl)")
    v.add_argument("--cache", default="results/.cache/judge", help="cache directory of paid answers (default: the study's)")
    v.add_argument("--repeats", type=int, default=1, help="judge every item N times and report label agreement")
    v.add_argument("--max-dollars", type=float, default=5.0, help="refuse to run above this estimated cost (default 5)")
    v.add_argument("--json", help="write the full report (and every item's labels) here")
    v.add_argument("--ledger", help="write the calls / tokens / dollars ledger here")
    v.add_argument("--md", help="write the confusion matrix and per-category figures as Markdown here")

    for sp in (r, e, v):  # accept the shared options after the subcommand too
        sp.add_argument("--cfg", default=argparse.SUPPRESS, help="the judge: section as JSON or @file")
        sp.add_argument("--log-level", default=argparse.SUPPRESS)
    args = p.parse_args(argv)
    setup_logging(args.log_level or "INFO")
    try:
        cfg = from_dict(JudgeConfig, load_cfg_arg(args.cfg or ""), "judge")
    except (ConfigError, json.JSONDecodeError, OSError) as err:
        print(f"error: --cfg: {err}", file=sys.stderr)
        return 2

    try:
        if args.cmd == "estimate":
            from recall2reason.judge.estimate import estimate, format_estimate

            est = estimate(cfg, args.eval, args.models, args.completion_tokens, args.samples, args.vote, args.cache)
            print(json.dumps(est, indent=2) if args.json else format_estimate(est))
            return 0

        from recall2reason.judge import preflight
        from recall2reason.judge.run import run

        if (problem := preflight(load_cfg_arg(args.cfg or ""))) is not None:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if args.cmd == "validate":
            return validate_cli(cfg, args)
        run(
            cfg,
            model_name=args.model_name,
            dataset=args.dataset,
            eval_path=args.eval,
            sample_paths=args.samples,
            vote_path=args.vote,
            cache_dir=args.cache,
            out_path=args.out,
            ledger_path=args.ledger,
        )
    except (InputFileError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def validate_cli(cfg: JudgeConfig, args: argparse.Namespace) -> int:
    from recall2reason.common import write_json
    from recall2reason.judge.estimate import format_estimate
    from recall2reason.common import atomic_write
    from recall2reason.judge.validate import ValidationRefused, format_markdown, format_report, validate
    from recall2reason.judge.validation_set import DEFAULT_PATH

    try:
        report = validate(cfg, args.set or DEFAULT_PATH, args.cache, args.repeats, args.max_dollars,
                          on_estimate=lambda est: print(format_estimate(est), flush=True))  # fmt: skip
    except (ValidationRefused, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        write_json(args.json, report)
    if args.ledger:
        write_json(args.ledger, report["ledger"])
    if args.md:
        with atomic_write(args.md) as f:
            f.write(format_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
