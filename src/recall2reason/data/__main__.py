"""``python -m recall2reason.data <subcommand>``: tokenizer, token shards, eval sets, contamination.

    tokenizer      --cfg <tokenizer section> [--data-cfg <data section>] --out data/tokenizer.model
    tokenize       --cfg <data section> --tokenizer data/tokenizer.model --out data/train/manifest.json
                   [--state-dir results/.state/data/train] [--workers N]
    plan           --cfg <data section> (--tokens NAME=N ... | --tokenizer data/tokenizer.model)
    eval           --cfg <one entry of the eval section> --name gsm8k --out data/eval/gsm8k.jsonl
    contamination  --cfg <data section> --eval data/eval/a.jsonl [...] --out data/train/contamination.csv
"""

from __future__ import annotations

import argparse
import itertools
import sys

from recall2reason.common import ConfigError, from_dict, load_cfg_arg, write_jsonl
from recall2reason.common.cli import setup_logging, stage_parser


def main(argv: list[str] | None = None) -> int:
    p = stage_parser("python -m recall2reason.data", "Data stage: tokenizer, token shards, eval sets, contamination report.")
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cfg", default=argparse.SUPPRESS, help="this subcommand's config slice (JSON or @file)")
    common.add_argument("--log-level", default=argparse.SUPPRESS)

    s = sub.add_parser("tokenizer", parents=[common], help="copy / download / train the SentencePiece model")
    s.add_argument("--data-cfg", default="", help="data section (JSON or @file); needed for tokenizer.source 'train'")
    s.add_argument("--out", required=True, help="where tokenizer.model goes")

    s = sub.add_parser("tokenize", parents=[common], help="encode + mix + pack the training sources into shards")
    s.add_argument("--tokenizer", required=True, help="tokenizer.model")
    s.add_argument("--out", required=True, help="manifest.json; shards are written next to it")
    s.add_argument("--state-dir", default=None, help="resumable state (default: <out dir>/.state)")
    s.add_argument("--workers", type=int, default=0, help="encoding processes (0: all cores)")
    s.add_argument("--keep-cache", action="store_true", help="keep the per-source token cache after success")

    s = sub.add_parser("plan", parents=[common], help="print the mixing arithmetic (dry run, writes nothing)")
    s.add_argument("--tokens", nargs="*", default=[], metavar="NAME=N", help="unique tokens per source, e.g. openmathinstruct2=4.64e9")
    s.add_argument("--tokenizer", default=None, help="count the tokens by encoding the sources with this model instead")
    s.add_argument("--workers", type=int, default=0)

    s = sub.add_parser("eval", parents=[common], help="build one eval set as jsonl")
    s.add_argument("--name", required=True, help="eval set name (ids and error messages)")
    s.add_argument("--out", required=True, help="data/eval/<name>.jsonl")

    s = sub.add_parser("contamination", parents=[common], help="13-gram overlap of eval problems with the training sources")
    s.add_argument("--eval", nargs="+", required=True, help="eval jsonl files (data/eval/<name>.jsonl)")
    s.add_argument("--out", required=True, help="CSV (next to the manifest)")
    s.add_argument("--ngram", type=int, default=13)
    s.add_argument("--workers", type=int, default=0)

    args = p.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return _run(args)
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args) -> int:
    import os

    from recall2reason.data.sources import DataConfig

    cfg = load_cfg_arg(args.cfg)
    workers = getattr(args, "workers", 0) or os.cpu_count() or 1
    if args.cmd == "tokenizer":
        from recall2reason.data.tokenizer import TokenizerConfig, fetch_tokenizer

        tcfg = from_dict(TokenizerConfig, cfg, "tokenizer")
        corpus = None
        if tcfg.source == "train":
            dcfg = from_dict(DataConfig, load_cfg_arg(args.data_cfg), "data")
            corpus = _corpus(dcfg)
        fetch_tokenizer(tcfg, args.out, corpus)
    elif args.cmd == "tokenize":
        from recall2reason.data.pack import tokenize_mixture

        tokenize_mixture(from_dict(DataConfig, cfg, "data"), args.tokenizer, args.out, args.state_dir, workers, args.keep_cache)
    elif args.cmd == "plan":
        from recall2reason.data.pack import format_plan, plan_mixture

        dcfg = from_dict(DataConfig, cfg, "data")
        tokens = _parse_tokens(args.tokens, dcfg) if args.tokens else _count_tokens(dcfg, args.tokenizer, workers)
        print(format_plan(plan_mixture(tokens, {s: c.weight for s, c in dcfg.sources.items()}, dcfg.epochs)))
    elif args.cmd == "eval":
        from recall2reason.data.evalsets import EvalSetConfig, build_eval_rows

        rows = build_eval_rows(args.name, from_dict(EvalSetConfig, cfg, f"eval.{args.name}"))
        write_jsonl(args.out, rows)
    elif args.cmd == "contamination":
        from recall2reason.data.contamination import contamination_report

        contamination_report(from_dict(DataConfig, cfg, "data"), args.eval, args.out, args.ngram, workers)
    return 0


def _corpus(dcfg):
    """Document texts of every source, interleaved, for training a demo tokenizer."""
    from recall2reason.data.sources import document_text, iter_records, parse_record

    def texts(name, src):
        for r in iter_records(name, src, dcfg.seed):
            yield document_text(src.format, parse_record(r), f"data.sources.{name}")

    its = [texts(n, s) for n, s in dcfg.sources.items()]
    for group in itertools.zip_longest(*its):
        yield from (t for t in group if t is not None)


def _parse_tokens(items: list[str], dcfg) -> dict[str, int]:
    out = {}
    for it in items:
        name, _, val = it.partition("=")
        if name not in dcfg.sources or not val:
            raise ConfigError(f"--tokens {it!r}: expected NAME=N with NAME one of {sorted(dcfg.sources)}")
        out[name] = int(float(val))
    missing = set(dcfg.sources) - set(out)
    if missing:
        raise ConfigError(f"--tokens: no count for source(s) {sorted(missing)}")
    return out


def _count_tokens(dcfg, tokenizer: str | None, workers: int) -> dict[str, int]:
    if not tokenizer:
        raise ConfigError("plan needs --tokens NAME=N ... or --tokenizer to count them")
    from tqdm import tqdm

    from recall2reason.data.pack import BATCH_DOCS, _batches, _bounded_map, _encode_batch
    from recall2reason.data.sources import iter_records

    out = {}
    for name, src in dcfg.sources.items():
        n = 0
        with tqdm(desc=f"count {name}", unit="tok", unit_scale=True) as bar:
            recs = _batches(iter_records(name, src, dcfg.seed, raw=True), BATCH_DOCS)
            for (toks, _), _k in _bounded_map(_encode_batch, recs, workers, (tokenizer, src.format, f"data.sources.{name}")):
                n += len(toks)
                bar.update(len(toks))
        out[name] = n
    return out


if __name__ == "__main__":
    sys.exit(main())
