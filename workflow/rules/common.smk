# Config validation, the model / dataset lists, and the preflight checks that must fail before
# any GPU job starts.

import json
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The rules run `python -m recall2reason.<stage>` from the installed package (`pip install -e .`);
# this file imports it from the checkout so that even a parse with another Python finds it.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from recall2reason.common.cfg import ConfigError
from recall2reason.common.schema import config_errors
from recall2reason.pretrain.config import job_train_section, micro_batch_errors
from recall2reason.probe.config import ENGINE_KEYS, SET_KEYS, ProbeConfig
from recall2reason.study import ablation_models, all_models, expand_ablations, kernels_section, select_only

_errors = config_errors(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
if _errors:
    raise WorkflowError("config error(s):\n" + "\n".join(f"  {e}" for e in _errors))
validate(config, "../schemas/config.schema.yaml")  # fills in schema defaults

R = config["results_dir"].rstrip("/")
try:
    ALL_SPECS = all_models(config["models"])  # models.only aside
    MODEL_SPECS = {spec.name: spec for spec in select_only(ALL_SPECS, config["models"].get("only"))}
    # Appendix A.3: variants of the study's models, built only by the ablation targets (ablations.smk)
    ABLATION_SETS = expand_ablations(config["models"], config.get("ablations", {}), ALL_SPECS)
except ConfigError as e:
    raise WorkflowError(f"config error: {e}")
MODELS = list(MODEL_SPECS)
SPECS = {**ablation_models(ABLATION_SETS), **MODEL_SPECS}  # every model a job may train
_mb_errors = micro_batch_errors(config["train"], list(dict.fromkeys([s.name for s in ALL_SPECS] + list(SPECS))))
if _mb_errors:
    raise WorkflowError("config error(s):\n" + "\n".join(f"  {e}" for e in _mb_errors))
DATASETS = list(config["eval"])
try:
    ProbeConfig.from_dict(config["probe"])  # what the schema cannot say, e.g. max_value vs the largest k
except ConfigError as e:
    raise WorkflowError(f"config error: {e}")
SAMPLE_PARTS = list(range(config["sample"]["jobs"]))
COMPILE_CACHE = f"{R}/.cache/compile"  # inductor + Triton caches shared by every GPU job (common/cli.py)
# a retried job (profiles: retries) writes the same log: keep the failed attempt's as <log>.previous
KEEP_PREVIOUS_LOG = "if [ -s {log:q} ]; then mv -f {log:q} {log:q}.previous; fi; "

if not MODELS:
    raise WorkflowError("config error: models: the study has no models (check models.only / transformer / hybrid_classes)")
for role, name in config["report"]["datasets"].items():
    if name not in DATASETS:
        raise WorkflowError(f"config error: report.datasets.{role} names eval set {name!r}, not in eval: {DATASETS}")


wildcard_constraints:
    model="|".join(SPECS),
    dataset="|".join(DATASETS),
    part=r"\d+",


def cfg_json(obj) -> str:
    """A config slice as compact JSON for a rule's params (Snakemake reruns a rule when it changes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _missing_local_paths():
    """Local files the config names must exist before anything runs (paths are relative to the
    working directory, like every other path Snakemake sees)."""
    named = []
    if config["tokenizer"]["source"] == "path":
        named.append(("tokenizer.path", config["tokenizer"].get("path")))
    for name, src in config["data"]["sources"].items():
        if src.get("path"):
            named.append((f"data.sources.{name}.path", src["path"]))
    for name, ev in config["eval"].items():
        if ev.get("path"):
            named.append((f"eval.{name}.path", ev["path"]))
    return [(key, p) for key, p in named if p is None or not Path(p).exists()]


_missing = _missing_local_paths()
if _missing:
    raise WorkflowError(
        "config error: missing input file(s):\n"
        + "\n".join(f"  {key}: {p!r} does not exist" for key, p in _missing)
    )


def study_cost_line() -> str:
    """The study's cost in one line (`python -m recall2reason.plan` prints the table). It never
    fails: whatever cannot be estimated, the line says so."""
    try:
        from recall2reason.plan import plan_study, total_line

        return f"study cost (python -m recall2reason.plan for the table): {total_line(plan_study(config))}"
    except Exception as e:  # noqa: BLE001 - an estimate must not stop the plan it describes
        return f"study cost: unknown ({type(e).__name__}: {e})"


_study_cost_printed = []


def study_cost_note(wc):
    """An input function of the all target, for its side effect (as judge_preflight_warning): a dry run
    prints the study's cost once (the executor, and so workflow.dryrun, is not known while the
    Snakefile is parsed). It adds no input."""
    if workflow.dryrun and not _study_cost_printed:
        from snakemake.logging import logger

        _study_cost_printed.append(True)
        logger.info(study_cost_line())
    return []


onstart:
    # An interrupted Snakemake (TERM, kill -INT) stops its running jobs instead of waiting for them.
    from recall2reason.common.interrupt import forward_interrupts_to_jobs

    forward_interrupts_to_jobs()

    # The judge needs an API key, a reachable server and a served model; find out now, before
    # any GPU job starts. (A dry run skips onstart: judge_preflight_warning covers it.)
    from recall2reason.judge import preflight

    if any(job.rule.name == "judge" for job in workflow.dag.needrun_jobs()):
        problem = preflight(config["judge"])
        if problem:
            raise WorkflowError(f"judge preflight failed: {problem}")


_judge_preflight_warned = []


def judge_preflight_warning(wc):
    """An input function of the judge rule, for its side effect: Snakemake calls it while it
    plans, also in a dry run, which skips onstart. There it warns once what a real run would
    stop on. It adds no input."""
    if workflow.dryrun and not _judge_preflight_warned:
        from snakemake.logging import logger

        from recall2reason.judge import preflight

        _judge_preflight_warned.append(True)
        if problem := preflight(config["judge"]):
            logger.warning(f"judge preflight: {problem}\n(a real run with judge jobs to do stops on this before its first job)")
    return []


# -- input / params functions of the rules -------------------------------------------------


def pretrain_cfg(wc):
    spec = SPECS[wc.model]
    return cfg_json(
        {"name": spec.name, "model": spec.model_config(config["models"]["backend"], kernels_section(config["models"])), "train": job_train_section(spec.name, config["train"])}
    )


def sample_parts(wc):
    return expand(
        f"{R}/samples/{wc.model}/{wc.dataset}/part-{{part}}.jsonl", part=SAMPLE_PARTS
    )


def judged(dataset):
    return expand(f"{R}/judge/{{model}}/{dataset}.jsonl", model=MODELS)


def probe_summaries():
    return expand(f"{R}/probes/{{model}}.summary.csv", model=MODELS)


def curves(dataset):
    return expand(f"{R}/vote/{{model}}/{dataset}.curves.csv", model=MODELS)


def sample_files(dataset):
    return expand(f"{R}/samples/{{model}}/{dataset}/part-{{part}}.jsonl", model=MODELS, part=SAMPLE_PARTS)


def sample_stats(dataset):
    return expand(
        f"{R}/samples/{{model}}/{dataset}/part-{{part}}.stats.json", model=MODELS, part=SAMPLE_PARTS
    )


def report_out(path, caption, category):
    return report(path, caption=f"../report/{caption}.rst", category=category)


# ablations.smk: which figures have sets, and each figure job's config
ABLATION_FIGURES = {fig: sets for fig, sets in config.get("ablations", {}).get("figures", {}).items() if sets}
LOSS_SETS = [s for fig in ("fig6", "fig7") for s in ABLATION_FIGURES.get(fig, [])]


def ablation_cfg(set_names):
    return cfg_json(
        {
            "sets": [ABLATION_SETS[s].summary() for s in set_names],
            "spikes": config.get("ablations", {}).get("spikes", {}),
            "metric": config["report"]["metric"],
            "bands": config["report"]["bands"],
        }
    )


def ablation_models_of(set_names):
    return list(dict.fromkeys(v.spec.name for s in set_names for v in ABLATION_SETS[s].variants))
