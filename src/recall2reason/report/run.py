"""Glue between the CLI and the pure table/figure code: read inputs, compute, write outputs."""

from __future__ import annotations

import argparse
import logging

import numpy as np

from recall2reason.common import formats
from recall2reason.probe.config import KINDS
from recall2reason.report import recall
from recall2reason.report.config import load_report_cfg
from recall2reason.report.flops import FlopModel
from recall2reason.report.inputs import InputError, exists, grouped, per_model, read_curves, read_json_file, read_rows
from recall2reason.report.style import save_figure
from recall2reason.report.tables import count_errors, write_table

log = logging.getLogger("recall2reason.report")
DATASET_LABEL = {"gsm8k": "GSM8K", "math500": "MATH500"}


def table(args: argparse.Namespace) -> None:
    if not (args.out_csv or args.out_md or args.out_tex):
        raise InputError("table: give at least one of --out-csv, --out-md, --out-tex")
    if args.which == "recall":
        return recall_table(args)
    files = per_model(args.judge, "judge", args.names)
    models = load_report_cfg(getattr(args, "cfg", "")).lookup(list(files))
    counts = {n: count_errors(exists(p)) for n, p in files.items()}
    write_table(args.which, models, counts, args.out_csv, args.out_md, args.out_tex)
    log.info("%s: %d models -> %s", args.which, len(models), ", ".join(filter(None, (args.out_csv, args.out_md, args.out_tex))))


def extraction(args: argparse.Namespace) -> None:
    from recall2reason.report.extraction import read_all, write_extraction_table

    if not (args.out_csv or args.out_md):
        raise InputError("extraction: give --out-csv and/or --out-md")
    counts = read_all(args.problems)
    models = load_report_cfg(getattr(args, "cfg", "")).lookup(sorted({m for m, _ in counts}))
    write_extraction_table(models, counts, args.out_csv, args.out_md)
    for (m, d), c in sorted(counts.items()):
        log.info("%s/%s: %d of %d completions without an answer (%.1f %%)", m, d, c.no_answer, c.completions,
                 c.pct(c.no_answer))


def figure(args: argparse.Namespace) -> None:
    from recall2reason.report import figures  # pyplot import happens here

    if not (args.out_pdf or args.out_png):
        raise InputError(f"{args.figure}: give --out-pdf and/or --out-png")
    cfg = load_report_cfg(getattr(args, "cfg", ""))
    name = args.figure
    if name in ("recall", "recall_vs_reasoning"):
        return recall_figure(args, cfg)
    files = per_model(args.judge, "judge", args.names) if name in ("fig3", "fig9") else per_model(args.curves, "curves", args.names)
    models = cfg.lookup(list(files))
    if name in ("fig3", "fig9"):
        counts = {n: count_errors(exists(p)) for n, p in files.items()}
        fig = figures.error_figure(models, counts, "GSM8K" if name == "fig3" else "MATH500")
    else:
        curves = {n: read_curves(exists(p)) for n, p in files.items()}
        metric = cfg.metric
        if name in ("fig2", "fig4"):
            label = "GSM8K" if name == "fig2" else "MATH500"
            fig = figures.scaling_figure(models, curves, metric, cfg.bands, f"{label} accuracy (%)")
        elif name == "fig5":
            per_sample = flops_per_sample(args, list(files))
            fig = figures.scaling_figure(
                models, curves, metric, cfg.bands, "GSM8K accuracy (%)", x_per_sample=per_sample,
                xlabel="Inference FLOPs per problem",
            )
        else:  # gpu_seconds
            per_sample, what = seconds_per_sample(args, list(files))
            fig = figures.scaling_figure(
                models, curves, metric, cfg.bands, f"{DATASET_LABEL[args.dataset]} accuracy (%)",
                x_per_sample=per_sample, xlabel=f"Sampling {what} per problem",
            )
    save_figure(fig, args.out_pdf, args.out_png)
    log.info("%s: %d models -> %s", name, len(models), ", ".join(filter(None, (args.out_pdf, args.out_png))))


def prompt_tokens(eval_path: str, tokenizer_path: str) -> dict:
    """Prompt length in tokens per problem id, with the study's tokenizer, plus the one token the
    sampler feeds before every prompt (sample.prompt_prefix)."""
    from recall2reason.data.tokenizer import load_tokenizer

    sp = load_tokenizer(exists(tokenizer_path))
    out = {}
    for i, row in read_rows(exists(eval_path), formats.EVAL_SET):
        if "id" not in row or "prompt" not in row:
            raise InputError(f"{eval_path}:{i}: row lacks id or prompt")
        out[row["id"]] = len(sp.encode(row["prompt"])) + 1
    return out


def _need(models: list[str], have: dict, arg: str) -> None:
    missing = [m for m in models if m not in have]
    if missing:
        raise InputError(f"--{arg} has no file for model(s) {missing} (files: {sorted(have)})")


def flops_per_sample(args: argparse.Namespace, models: list[str]) -> dict[str, float]:
    """Mean inference FLOPs of one sampled completion per model (see report.flops)."""
    configs = per_model(args.model_configs, "model-configs")
    samples = grouped(args.samples, depth=2)
    _need(models, configs, "model-configs")
    _need(models, samples, "samples")
    plen = prompt_tokens(args.eval, args.tokenizer)
    out = {}
    for name in models:
        cfg_path, parts = configs[name], samples[name]
        fm = FlopModel.from_pretrain_config(read_json_file(exists(cfg_path), "pretrain config", ["model"]), cfg_path)
        p, t = [], []
        for part in parts:
            for i, row in read_rows(exists(part), formats.SAMPLES):
                try:
                    p.append(plen[row["problem_id"]])
                    t.append(int(row["n_tokens"]))
                except KeyError as e:
                    raise InputError(f"{part}:{i}: problem not in {args.eval} or key missing: {e.args[0]!r}") from None
        if not t:
            raise InputError(f"{name}: the sample parts {parts} hold no completions")
        out[name] = float(np.mean(fm.completion_flops(p, t)))
        log.info("fig5: %s: N=%.3g, %d attention layers, %.3g FLOPs per completion (mean of %d)",
                 name, fm.matmul_params, fm.n_attention_layers, out[name], len(t))
    return out


def seconds_per_sample(args: argparse.Namespace, models: list[str]) -> tuple[dict[str, float], str]:
    """Measured sampling seconds per completion per model: sum of gpu_s / sum of completions.

    Falls back to wall-clock seconds for every model when any part lacks gpu_s (a CPU run)."""
    files = grouped(args.sample_stats, depth=2)
    _need(models, files, "sample-stats")
    stats = {n: [read_json_file(exists(s), "sampling stats", ["wall_s", "completions"]) for s in files[n]] for n in models}
    use_gpu = all(isinstance(s.get("gpu_s"), (int, float)) and s["gpu_s"] > 0 for ss in stats.values() for s in ss)
    key, what = ("gpu_s", "GPU-seconds") if use_gpu else ("wall_s", "wall-clock seconds")
    if not use_gpu:
        log.warning("gpu_seconds: some sampling stats lack gpu_s; plotting wall-clock seconds instead")
    out = {}
    for n, ss in stats.items():
        done = sum(int(s["completions"]) for s in ss)
        if done <= 0:
            raise InputError(f"{n}: sampling stats report no completions")
        out[n] = sum(float(s[key]) for s in ss) / done
    return out, what


# -- recall probes ---------------------------------------------------------------------------


def probe_summaries(args: argparse.Namespace, cfg) -> tuple[list, dict[str, list[dict]]]:
    """The models of --probes in the paper's order, and each one's probe summary."""
    files = per_model(args.probes, "probes", [recall.probe_model(p) for p in args.probes])
    return cfg.lookup(list(files)), {n: recall.read_probe_summary(p) for n, p in files.items()}


def recall_inputs(args: argparse.Namespace, cfg) -> tuple[list[recall.RecallPoint], list[dict], str]:
    """One point per model (probes, judge, curves), the rank correlations, the maj@N label."""
    models, summaries = probe_summaries(args, cfg)
    names = [m.name for m in models]
    judge = per_model(args.judge, "judge", args.names)
    curve_files = per_model(args.curves or [], "curves", args.names)
    _need(names, judge, "judge")
    _need(names, curve_files, "curves")
    counts = {n: count_errors(exists(judge[n])) for n in names}
    curves = {n: read_curves(exists(curve_files[n])) for n in names}
    maj = {n: float(df[cfg.metric].iloc[-1]) for n, df in curves.items()}
    n_max = sorted({int(df["k"].iloc[-1]) for df in curves.values()})
    points = recall.recall_points(models, summaries, counts, maj)
    corr = recall.correlations(points, cfg.correlation.bootstrap, cfg.correlation.seed)
    return points, corr, f"maj@{'/'.join(map(str, n_max))}"


def recall_table(args: argparse.Namespace) -> None:
    if not args.probes or not args.curves:
        raise InputError("table --which recall needs --probes and --curves (and --judge)")
    cfg = load_report_cfg(getattr(args, "cfg", ""))
    points, corr, maj_label = recall_inputs(args, cfg)
    recall.write_recall_table(points, corr, maj_label, args.out_csv, args.out_md, args.out_tex, args.out_correlation)
    for c in corr:
        log.info("recall vs %s: %s", c["target"], recall.describe(c))


def recall_figure(args: argparse.Namespace, cfg) -> None:
    from recall2reason.report import figures

    if args.figure == "recall":
        models, summaries = probe_summaries(args, cfg)
        kinds = [k for k in KINDS if any(r["kind"] == k for rows in summaries.values() for r in rows)]
        fig = figures.recall_figure(models, summaries, kinds)
    else:
        points, corr, maj_label = recall_inputs(args, cfg)
        models = [p.model for p in points]
        fig = figures.recall_correlation_figure(points, corr, maj_label)
    save_figure(fig, args.out_pdf, args.out_png)
    log.info("%s: %d models -> %s", args.figure, len(models), ", ".join(filter(None, (args.out_pdf, args.out_png))))


def ablation(args: argparse.Namespace) -> None:
    """Figures 6-8 and the spike table from the sets in --cfg (recall2reason.report.ablations)."""
    from recall2reason.report import ablations as ab

    cfg = ab.AblationReportConfig.load(getattr(args, "cfg", ""))
    wanted = cfg.models()
    if args.which == "fig8":
        files = per_model(args.curves or [], "curves")
    else:
        files = per_model(args.metrics or [], "metrics")
    missing = [m for m in wanted if m not in files]
    if missing:
        raise InputError(f"ablation {args.which}: no {'--curves' if args.which == 'fig8' else '--metrics'} file for "
                         f"model(s) {missing}")
    if args.which == "spikes":
        if not (args.out_csv or args.out_md):
            raise InputError("ablation spikes: give --out-csv and/or --out-md")
        losses = {m: ab.read_losses(exists(files[m])) for m in wanted}
        rows = ab.spike_rows(cfg.sets, losses, cfg.spikes)
        ab.write_spike_table(rows, cfg.spikes, args.out_csv, args.out_md)
        log.info("spikes: %d variants, %d spikes", len(rows), sum(r["spikes"] for r in rows))
        return
    if not (args.out_pdf or args.out_png):
        raise InputError(f"ablation {args.which}: give --out-pdf and/or --out-png")
    if args.which == "fig8":
        fig = ab.accuracy_figure(cfg.sets, {m: read_curves(exists(files[m])) for m in wanted}, cfg.metric, cfg.bands)
    else:
        fig = ab.loss_figure(cfg.sets, {m: ab.read_losses(exists(files[m])) for m in wanted}, cfg.spikes)
    save_figure(fig, args.out_pdf, args.out_png)
    log.info("%s: %d sets, %d models", args.which, len(cfg.sets), len(wanted))
