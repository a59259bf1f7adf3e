"""The study's cost from its config: tokens, GPU-hours per stage and model, judge calls and dollars.

GPU stages: ``pretrain`` (every model trains the same tokens), ``sample`` (problems x ``sample.n``
x the completion length, per model) and ``probe`` (probes x ``probe.max_new_tokens``, at the
sampler's rate). Compile / autotune warm-up (seconds to two minutes a job, e.g.
benchmarks/reports/2026-12-07-pretrain-gla100-study-batch.md) is not counted. The judge's calls
and dollars come from ``judge.estimate``. Whatever cannot be known yet (an eval set still on the
Hub, a model shape without a measured figure) is listed as unknown, and the totals then say they are
partial.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from recall2reason.common import ConfigError, formats, from_dict, read_jsonl
from recall2reason.common.schema import config_errors
from recall2reason.plan.config import PAPER_TOKENS_PER_EPOCH, PlanConfig
from recall2reason.plan.table import PlanError, Table, anchor, default_table, gpu_kind, resolve
from recall2reason.study import ModelSpec, all_models, expand_models

SCHEMA = Path("workflow/schemas/config.schema.yaml")


def load_study_config(configfiles: list[str | Path] = (), base: str | Path = "config.yaml",
                      root: str | Path = ".") -> dict:
    """config.yaml with ``--configfile`` overlays merged left to right and checked as the DAG checks
    it (workflow/rules/common.smk): schema errors with their dotted keys, then the schema's defaults."""
    from snakemake.utils import update_config, validate

    root = Path(root)
    config: dict = {}
    for path in [root / base, *map(Path, configfiles)]:
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist"
                              + (" (run from the repository root, or pass --base)" if path == root / base else ""))
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        update_config(config, loaded)
    errors = config_errors(config, root / SCHEMA)
    if errors:
        raise ConfigError("config error(s):\n" + "\n".join(f"  {e}" for e in errors))
    validate(config, str((root / SCHEMA).resolve()))  # fills in the schema's defaults
    from recall2reason.pretrain.config import micro_batch_errors

    names = [s.name for s in all_models(config["models"])]
    if mb := micro_batch_errors(config["train"], names):
        raise ConfigError("config error(s):\n" + "\n".join(f"  {e}" for e in mb))
    return config


# -------------------------------------------------------------------------------- tokens


def _is_paper_data(data: dict) -> bool:
    """The paper's two sources, whole, 1:1 (App. B): the only mixture whose size we know untokenized."""
    src = data["sources"]
    fmts = sorted(s.get("format") for s in src.values())
    return (fmts == ["metamathqa", "openmathinstruct2"] and all(s.get("n_docs") is None for s in src.values())
            and all(s.get("split", "train") == "train" for s in src.values())
            and len({float(s.get("weight", 1.0)) for s in src.values()}) == 1)


def pretrain_tokens(config: dict, plan: PlanConfig, root: Path) -> tuple[int | None, str]:
    """Tokens every model trains on, and where the number comes from (pretrain.train.plan's
    arithmetic: whole global batches of whole sequences)."""
    train, data = config["train"], config["data"]
    G, T = int(train["global_batch_tokens"]), int(data["seq_len"])
    if train.get("max_steps"):
        return int(train["max_steps"]) * G, f"train.max_steps {train['max_steps']:,} x train.global_batch_tokens {G:,}"
    manifest = root / config["results_dir"] / "data/train/manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text(encoding="utf-8"))
        per_epoch, epochs = sum(int(s["n_tokens"]) for s in m["shards"]), float(m.get("epochs", 1))
        how = f"the data manifest ({manifest}): {per_epoch:,} tokens x {epochs:g} epochs"
    elif plan.tokens_per_epoch:
        per_epoch, epochs = plan.tokens_per_epoch, float(data["epochs"])
        how = f"plan.tokens_per_epoch {per_epoch:,.0f} x data.epochs {epochs:g}"
    elif _is_paper_data(data):
        per_epoch, epochs = PAPER_TOKENS_PER_EPOCH, float(data["epochs"])
        how = (f"the paper's {per_epoch / 1e9:.3f} B tokens per epoch (App. B: 37.1 B in 4 epochs) x data.epochs "
               f"{epochs:g}, until `tokenize` writes the manifest")
    else:
        return None, ("unknown: the data sources are not the paper's and not tokenized yet (set plan.tokens_per_epoch, "
                      "e.g. from `python -m recall2reason.data plan`, or train.max_steps)")
    steps = math.floor(((int(per_epoch) - 1) // T) * epochs / (G // T))
    return steps * G, f"{how}: {steps:,} steps of {G:,}"


def eval_rows(config: dict, root: Path) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """The problems of each eval set: built from a local file or the synthetic generator as the
    eval_set rule builds them, read from the rule's output for a Hub set, else unknown (reason)."""
    from recall2reason.data.evalsets import EvalSetConfig, build_eval_rows

    rows, unknown = {}, {}
    for name, ev in config["eval"].items():
        ecfg = from_dict(EvalSetConfig, ev, f"eval.{name}")
        built = root / config["results_dir"] / f"data/eval/{name}.jsonl"
        if ecfg.path or ecfg.format.startswith("synthetic"):
            rows[name] = build_eval_rows(name, ecfg)
        elif built.is_file():
            rows[name] = list(read_jsonl(built, formats.EVAL_SET))
        else:
            unknown[name] = (f"eval.{name} comes from the Hub ({ecfg.hub_id}) and is not built yet: "
                             f"set eval.{name}.path to a local copy, or build {built}")
    return rows, unknown


def probe_count(config: dict) -> int:
    from recall2reason.probe.config import ProbeConfig

    p = ProbeConfig.from_dict(config["probe"])
    return len(p.kinds) * len(p.ks) * len(p.distances) * p.per_cell


# -------------------------------------------------------------------------------- shapes


def shape_mismatch(spec: ModelSpec, config: dict, table: Table) -> str | None:
    """Why the table's figures do not apply to this model's shape (None: they do)."""
    diffs = []
    if int(config["data"]["seq_len"]) != int(table.shape["seq_len"]):
        diffs.append(f"data.seq_len {config['data']['seq_len']} (measured {table.shape['seq_len']})")
    for k, v in table.shape["base"].items():
        if spec.base.get(k) != v:
            diffs.append(f"{k} {spec.base.get(k)} (measured {v})")
    for cls, settings in spec.mixers.items():
        for k, v in table.shape["mixers"].get(cls, {}).items():
            if settings.get(k) != v:
                diffs.append(f"{cls}.{k} {settings.get(k)} (measured {v})")
    return ("no measured figure for this shape: " + ", ".join(diffs)) if diffs else None


# -------------------------------------------------------------------------------- the plan


def plan_study(config: dict, plan: PlanConfig | None = None, table: Table | None = None,
               root: str | Path = ".") -> dict:
    """Every number of the estimate, as a dict (``format_plan`` prints it). ``config`` is the merged,
    validated study config (``load_study_config`` or Snakemake's)."""
    from recall2reason.judge.config import JudgeConfig
    from recall2reason.judge.estimate import estimate_sets

    plan = plan or PlanConfig.from_dict(config.get("plan"))
    table = table or default_table()
    root = Path(root)
    gpu = gpu_kind(plan.gpu)
    specs = expand_models(config["models"])
    completion = plan.completion_tokens or int(config["sample"]["max_new_tokens"])
    completion_how = (f"plan.completion_tokens {completion:,}" if plan.completion_tokens else
                      f"sample.max_new_tokens {completion:,}: every completion at the cap, an upper bound")
    train_tokens, train_how = pretrain_tokens(config, plan, root)
    sets, unknown_sets = eval_rows(config, root)
    n = int(config["sample"]["n"])
    sample_tokens = sum(len(r) for r in sets.values()) * n * completion if sets else None
    probes = probe_count(config)
    probe_tokens = probes * int(config["probe"]["max_new_tokens"])

    def anchor_how(stage: str) -> str:
        try:
            return anchor(table, "pretrain" if stage == "pretrain" else "sample", plan.gpu).how
        except PlanError as e:
            return str(e)

    def stage_rows(stage: str, tokens: int | None) -> list[dict]:
        out = []
        for spec in specs:
            row = {"model": spec.name, "tokens": tokens, "refs": []}
            why = shape_mismatch(spec, config, table)
            if why is None:
                try:
                    rate = resolve(table, "pretrain" if stage == "pretrain" else "sample", spec.name, plan.gpu,
                                   spec.mixer_class, 100.0 - spec.attention_pct)
                    row.update(tokens_per_s=rate.tokens_per_s, kind=rate.kind, how=rate.how, flagged=rate.flagged,
                               refs=[r.ref for r in rate.rows])
                except PlanError as e:
                    why = str(e)
            if why is not None:
                row.update(tokens_per_s=None, kind="unknown", how=why, flagged=True)
            row["gpu_hours"] = (tokens / row["tokens_per_s"] / 3600.0
                                if tokens is not None and row["tokens_per_s"] else None)
            out.append(row)
        return out

    stages = {
        "pretrain": {"tokens_per_model": train_tokens, "tokens_how": train_how, "models": stage_rows("pretrain", train_tokens),
                     "transformer": anchor_how("pretrain")},
        "sample": {"tokens_per_model": sample_tokens, "models": stage_rows("sample", sample_tokens),
                   "transformer": anchor_how("sample"),
                   "tokens_how": f"{sum(len(r) for r in sets.values()):,} problems ("
                                 + ", ".join(f"{k} {len(v):,}" for k, v in sets.items())
                                 + f") x sample.n {n} x {completion_how}",
                   "unknown_sets": unknown_sets},
        "probe": {"tokens_per_model": probe_tokens, "models": stage_rows("probe", probe_tokens),
                  "transformer": anchor_how("probe"),
                  "tokens_how": f"{probes:,} probes per model x probe.max_new_tokens {config['probe']['max_new_tokens']} "
                                "(every answer at the cap), at the sampler's rate"},
    }
    jcfg = from_dict(JudgeConfig, config["judge"], "judge")
    judge = estimate_sets(jcfg, list(sets.items()), len(specs), completion)
    unknown = [f"sample, judge: {why}" for why in unknown_sets.values()]
    for stage, s in stages.items():
        missing = [r for r in s["models"] if r["tokens_per_s"] is None]
        if s["tokens_per_model"] is None and stage != "sample":  # sample: the eval sets above say why
            unknown.append(f"{stage}: tokens {s['tokens_how']}")
        if missing:
            why = missing[0]["how"]
            said = any(why in u for u in unknown)
            unknown.append(f"{stage}: no rate for {', '.join(r['model'] for r in missing)} ({'as above' if said else why})")
    # a stage without a single known figure is None, not 0
    by_stage = {stage: (sum(r["gpu_hours"] or 0.0 for r in s["models"])
                        if any(r["gpu_hours"] is not None for r in s["models"]) else None) for stage, s in stages.items()}
    # rates that exist but are not a current measurement of that model on that GPU kind
    flagged = {stage: [r["model"] for r in s["models"] if r["flagged"] and r["tokens_per_s"]]
               for stage, s in stages.items() if stage != "probe"}
    return {
        "gpu": plan.gpu, "gpu_name": gpu.name, "models": [s.name for s in specs], "completion_tokens": completion,
        "stages": stages, "judge": judge,
        "total": {"gpu_hours": sum(v or 0.0 for v in by_stage.values()), "by_stage": by_stage,
                  "dollars_online": judge["dollars_online"], "dollars_batch": judge["dollars_batch"],
                  "judge_complete": not unknown_sets or jcfg.backend == "rules",
                  "complete": not unknown, "unknown": unknown},
        "flagged": flagged,
        "figures": [r.describe() for r in table.rows
                    if any(r.ref in m["refs"] for s in stages.values() for m in s["models"])],
    }


# -------------------------------------------------------------------------------- output


def _tok(n: float | None) -> str:
    if n is None:
        return "unknown"
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n:,.0f}"


def format_plan(p: dict) -> str:
    t = p["total"]
    lines = [f"The study's cost on {p['gpu']} ({p['gpu_name']}), {len(p['models'])} models, from the measured "
             "throughputs [n] listed below. A rate that is not a current measurement of that model on that GPU "
             "kind is marked: STALE (predates a change), RATIO (the model's ratio to the Transformer, carried over), "
             "SIBLING (a model never measured: its class's nearest measured share), SCALED (another GPU kind, "
             "by datasheet peaks).", ""]
    for stage, s in p["stages"].items():
        lines.append(f"{stage}: {_tok(s['tokens_per_model'])} tokens per model ({s['tokens_how']})")
        if stage != "probe":
            lines.append(f"  the Transformer on {p['gpu']}: {s['transformer']}")
        lines.append(f"  {'model':<16}{'tokens':>10}{'tok/s':>11}{'GPU-h':>9}  figure")
        for r in s["models"]:
            rate = f"{r['tokens_per_s']:,.0f}" if r["tokens_per_s"] else "-"
            hours = f"{r['gpu_hours']:.2f}" if r["gpu_hours"] is not None else "-"
            how = "the sample stage's rate" if stage == "probe" and r["tokens_per_s"] else r["how"]
            lines.append(f"  {r['model']:<16}{_tok(r['tokens']):>10}{rate:>11}{hours:>9}  {how}")
        for why in s.get("unknown_sets", {}).values():
            lines.append(f"  not counted: {why}")
        v = t["by_stage"][stage]
        lines.append(f"  {stage} total: {'unknown' if v is None else f'{v:.1f}'} GPU-hours")
        lines.append("")
    lines.append("figures (src/recall2reason/plan/throughputs.yaml):")
    lines.extend(f"  {f}" for f in p["figures"] or ["(none applies)"])
    lines.append("")
    j = p["judge"]
    lines.append(f"judge: backend {j['backend']} ({j['judge_model']}), first_k {j['first_k']} of every problem: "
                 f"{j['calls']:,} calls, ~{j['tokens_in']:,} tokens in, ~{j['tokens_out']:,} out; "
                 f"${j['dollars_online']:.2f} online, ${j['dollars_batch']:.2f} with the Batch API ({j['note']}; "
                 f"completions of {p['completion_tokens']:,} tokens)")
    lines.append("")
    lines.append("total: " + total_line(p, with_unknown=False))
    for why in t["unknown"]:
        lines.append(f"  unknown: {why}")
    return "\n".join(lines)


def total_line(p: dict, with_unknown: bool = True) -> str:
    """The plan in one line (what `snakemake -n` prints)."""
    t = p["total"]
    parts = ", ".join(f"{k} {'unknown' if v is None else f'{v:.1f}'}" for k, v in t["by_stage"].items())
    marks = "; ".join(f"{len(v)} of {len(p['models'])} {k} rates stale or estimated" for k, v in p["flagged"].items() if v)
    judge = f"${t['dollars_online']:.2f} (${t['dollars_batch']:.2f} batch)"
    if not t["judge_complete"]:
        judge = f"at least {judge}" if p["judge"]["calls"] else "$ unknown"
    return (f"{'' if t['complete'] else 'at least '}{t['gpu_hours']:.1f} {p['gpu']} GPU-hours ({parts}) + "
            f"judge {judge}"
            + (f"; {marks}" if marks else "") + "".join(f"; unknown: {u}" for u in t["unknown"] if with_unknown))
