"""``python -m recall2reason.report``: one invocation per table or figure.

    table --which table1|table7 --judge J... --out-csv --out-md --out-tex
    extraction --problems V... --out-csv --out-md    (completions without an answer)
    figure fig2|fig4   --curves C... --out-pdf --out-png
    figure fig3|fig9   --judge J...  --out-pdf --out-png
    figure fig5        --curves C... --model-configs P... --samples PART.jsonl... --eval E --tokenizer T
                       --out-pdf --out-png
    figure gpu_seconds --curves C... --sample-stats PART.stats.json... [--dataset gsm8k] --out-pdf --out-png
    figure recall      --probes S...  --out-pdf --out-png
    figure recall_vs_reasoning --probes S... --judge J... --curves C... --out-pdf --out-png
    table --which recall --probes S... --judge J... --curves C... --out-csv --out-md --out-tex --out-correlation
    ablation fig6|fig7 --metrics M... --out-pdf --out-png     (training loss per variant, spikes marked)
    ablation spikes    --metrics M... --out-csv --out-md      (loss spikes per variant)
    ablation fig8      --curves C...  --out-pdf --out-png     (GSM8K maj@N per variant)

Each file's model is read from its path, as laid out in docs/design.md
(``judge/<model>/..``, ``vote/<model>/..``, ``pretrain/<model>/config.json``,
``samples/<model>/<dataset>/part-*``, ``probes/<model>.summary.csv``); ``--names`` instead names the models of ``--judge`` /
``--curves`` one by one. Models are drawn in the paper's order (``models`` in --cfg) whatever the
argument order; a model with no file is simply absent. --cfg carries ``config["report"]`` plus
``models``: the study's ``ModelSpec.summary()`` list.
"""

from __future__ import annotations

import argparse
import sys

from recall2reason.common.cfg import ConfigError
from recall2reason.common.cli import setup_logging, stage_parser
from recall2reason.common.io import InputFileError



def build_parser():
    p = stage_parser("python -m recall2reason.report", "Tables and figures of the paper from the stage outputs.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp):
        # SUPPRESS: a --cfg given before the subcommand is kept when none is given after it
        sp.add_argument("--cfg", default=argparse.SUPPRESS, help="report config slice + models (inline JSON or @file)")
        sp.add_argument("--names", nargs="+", help="model of each --judge/--curves file (default: from its path)")

    t = sub.add_parser("table", help="Table 1 (GSM8K) or Table 7 (MATH500): judge error categories; "
                       "recall: probe accuracy vs GSM8K errors and majority vote")
    common(t)
    t.add_argument("--which", choices=("table1", "table7", "recall"), required=True)
    t.add_argument("--judge", nargs="+", required=True, help="judge/<model>/<dataset>.jsonl per model")
    t.add_argument("--probes", nargs="+", help="recall: probes/<model>.summary.csv per model")
    t.add_argument("--curves", nargs="+", help="recall: vote/<model>/<dataset>.curves.csv per model (GSM8K)")
    t.add_argument("--out-csv")
    t.add_argument("--out-md")
    t.add_argument("--out-tex")
    t.add_argument("--out-correlation", help="recall: the rank correlations as CSV")

    x = sub.add_parser("extraction", help="completions without an answer per model and eval set")
    x.add_argument("--cfg", default=argparse.SUPPRESS, help="report config slice + models (inline JSON or @file)")
    x.add_argument("--problems", nargs="+", required=True, help="vote/<model>/<dataset>.problems.jsonl files")
    x.add_argument("--out-csv")
    x.add_argument("--out-md")

    f = sub.add_parser("figure", help="one figure (PDF + PNG)")
    figs = f.add_subparsers(dest="figure", required=True)
    out = {}
    for name, help_ in (
        ("fig2", "GSM8K accuracy vs N under majority voting, a panel per class"),
        ("fig4", "MATH500 accuracy vs N under majority voting, a panel per class"),
        ("fig3", "GSM8K: total and Key-Value Binding errors vs attention share"),
        ("fig9", "MATH500: total and Key-Value Binding errors vs attention share"),
        ("fig5", "GSM8K accuracy vs inference FLOPs (FLOP model: recall2reason.report.flops)"),
        ("gpu_seconds", "accuracy vs measured sampling GPU-seconds per problem"),
        ("recall", "recall-probe accuracy vs bindings k, a row per probe kind, a panel per class"),
        ("recall_vs_reasoning", "across models: recall accuracy vs GSM8K KV-binding error share and majority vote"),
    ):
        sp = figs.add_parser(name, help=help_, description=help_)
        common(sp)
        sp.add_argument("--out-pdf")
        sp.add_argument("--out-png")
        out[name] = sp
    for name in ("fig2", "fig4", "fig5", "gpu_seconds"):
        out[name].add_argument("--curves", nargs="+", required=True, help="vote/<model>/<dataset>.curves.csv per model")
    for name in ("fig3", "fig9", "recall_vs_reasoning"):
        out[name].add_argument("--judge", nargs="+", required=True, help="judge/<model>/<dataset>.jsonl per model")
    for name in ("recall", "recall_vs_reasoning"):
        out[name].add_argument("--probes", nargs="+", required=True, help="probes/<model>.summary.csv per model")
    out["recall_vs_reasoning"].add_argument("--curves", nargs="+", required=True,
                                            help="vote/<model>/<dataset>.curves.csv per model (GSM8K)")
    out["fig5"].add_argument("--model-configs", nargs="+", required=True, help="pretrain/<model>/config.json files")
    out["fig5"].add_argument("--samples", nargs="+", action="extend", required=True,
                             help="samples/<model>/<dataset>/part-*.jsonl files (generated-token counts)")
    out["fig5"].add_argument("--eval", required=True, help="data/eval/<dataset>.jsonl (prompts)")
    out["fig5"].add_argument("--tokenizer", required=True, help="data/tokenizer.model (to count prompt tokens)")
    out["gpu_seconds"].add_argument("--sample-stats", nargs="+", action="extend", required=True,
                                    help="samples/<model>/<dataset>/part-*.stats.json files")
    out["gpu_seconds"].add_argument("--dataset", choices=("gsm8k", "math500"), default="gsm8k")
    a = sub.add_parser("ablation", help="Appendix A.3: loss curves (fig6, fig7), the spike table, GSM8K accuracy (fig8); "
                       "--cfg: the sets drawn (recall2reason.report.ablations)")
    a.add_argument("which", choices=("fig6", "fig7", "fig8", "spikes"))
    a.add_argument("--cfg", default=argparse.SUPPRESS, help="sets + spike rule + metric (inline JSON or @file)")
    a.add_argument("--metrics", nargs="+", help="fig6 / fig7 / spikes: pretrain/<model>/metrics.jsonl per model")
    a.add_argument("--curves", nargs="+", help="fig8: vote/<model>/<dataset>.curves.csv per model (GSM8K)")
    a.add_argument("--out-pdf")
    a.add_argument("--out-png")
    a.add_argument("--out-csv")
    a.add_argument("--out-md")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = setup_logging(args.log_level)
    try:
        from recall2reason.report import run  # matplotlib is imported only when work is done

        if args.command == "table":
            run.table(args)
        elif args.command == "extraction":
            run.extraction(args)
        elif args.command == "ablation":
            run.ablation(args)
        else:
            run.figure(args)
    except (InputFileError, ConfigError) as e:
        log.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
