"""One source of defaults per config section: the stage's dataclass.

Every config section that a stage reads through a dataclass is written in four places: the
dataclass (the defaults a stage run by hand gets), its schema section (validated, with its
defaults filled in, when the Snakefile is parsed), config.yaml (the paper study) and, for the
sample stage, the decoding ``Engine``'s keyword defaults. These tests make the copies agree:

* every key of the schema section is a field of the dataclass and vice versa (the exceptions
  are listed below, each with its reason);
* a default the schema states equals the dataclass's default (a schema may leave a default out:
  the stage then fills in the dataclass's, which is the same thing);
* config.yaml's value, where config.yaml sets the key, builds the dataclass (and so passes its
  ``__post_init__`` checks), and config.yaml's section passes the schema.

A drift (a default changed in one place only, a key added to the dataclass and not the schema)
fails here instead of silently giving a hand-run stage other numbers than the DAG's.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path

import pytest
import yaml

from recall2reason.common.cfg import from_dict, to_dict
from recall2reason.data.evalsets import EvalSetConfig
from recall2reason.data.sources import DataConfig, SourceConfig
from recall2reason.data.tokenizer import TokenizerConfig
from recall2reason.export.config import ExportConfig
from recall2reason.judge.config import JudgeConfig
from recall2reason.models.config import GDNConfig, GLAConfig, KernelConfig, MambaConfig, ModelConfig
from recall2reason.plan.config import PlanConfig
from recall2reason.pretrain.config import TrainConfig
from recall2reason.probe.config import ProbeConfig
from recall2reason.report.config import ReportConfig
from recall2reason.sample.config import SampleConfig
from recall2reason.vote.stage import VoteConfig

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ROOT / "workflow/schemas/sections"
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))

# section -> (dataclass, keys only the schema has, keys only the dataclass has); every exception
# says why it is one
DATACLASS_SECTIONS = {
    "tokenizer": (TokenizerConfig, set(), set()),
    "data": (DataConfig, set(), set()),  # data.sources.<name>: SourceConfig, below
    "train": (TrainConfig, set(), set()),
    "sample": (SampleConfig, set(), set()),
    "vote": (VoteConfig, set(), set()),  # samples per problem: sample.n, passed as --n
    "judge": (JudgeConfig, set(), set()),
    "probe": (ProbeConfig, set(), set()),
    "plan": (PlanConfig, set(), set()),
    "export": (ExportConfig, set(), set()),
    "report": (ReportConfig, set(), {
        "models",  # the study's model summaries: added by the rules (ModelSpec.summary), not config
    }),
}

# models: sub-schemas ($defs) that are the fields of a models dataclass
MODEL_DEFS = {
    ("base",): (ModelConfig, set(), {
        "layers",  # generated per model by study.expand_models (attention placement / models.extra)
        "mamba", "gla", "gdn",  # models.mixers.<class>, checked below
        "backend",  # models.backend, one key for every model
        "kernels",  # models.kernels, one section for every model: KernelConfig, below
    }),
    ("mixers", "mamba"): (MambaConfig, set(), set()),
    ("mixers", "gla"): (GLAConfig, set(), set()),
    ("mixers", "gdn"): (GDNConfig, set(), set()),
}


def _schema(section: str) -> dict:
    return yaml.safe_load((SECTIONS / f"{section}.schema.yaml").read_text(encoding="utf-8"))


def _dataclass_defaults(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = to_dict(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = to_dict(f.default_factory())
        else:
            out[f.name] = dataclasses.MISSING
    return out


def _nested_dataclass(cls, name: str):
    tp = typing.get_type_hints(cls)[name]
    return tp if dataclasses.is_dataclass(tp) else None


def _compare(cls, props: dict, where: str, schema_only=frozenset(), class_only=frozenset()) -> list[str]:
    """Key-set and default mismatches between schema ``props`` and dataclass ``cls``, recursing
    into nested objects that are nested dataclasses (judge.retry, report.correlation)."""
    problems = []
    defaults = _dataclass_defaults(cls)
    for k in sorted(set(schema_only) & set(defaults)) + sorted(set(class_only) & set(props)):
        problems.append(f"{where}.{k}: listed as an exception, but both the schema and {cls.__name__} have it")
    for k in sorted(set(props) - set(defaults) - set(schema_only)):
        problems.append(f"{where}.{k}: in the schema, not a field of {cls.__name__}")
    for k in sorted(set(defaults) - set(props) - set(class_only)):
        problems.append(f"{where}.{k}: a field of {cls.__name__}, not in the schema")
    for k in sorted(set(props) & set(defaults)):
        sub = props[k]
        nested = _nested_dataclass(cls, k)
        if nested is not None and "properties" in sub:
            problems += _compare(nested, sub["properties"], f"{where}.{k}")
            continue
        if "default" in sub and sub["default"] != defaults[k]:
            problems.append(f"{where}.{k}: schema default {sub['default']!r} != {cls.__name__} default {defaults[k]!r}")
    return problems


@pytest.mark.parametrize("section", sorted(DATACLASS_SECTIONS))
def test_schema_and_dataclass_agree(section):
    cls, schema_only, class_only = DATACLASS_SECTIONS[section]
    problems = _compare(cls, _schema(section)["properties"], section, schema_only, class_only)
    assert not problems, "\n".join(problems)


def test_name_keyed_entries_agree():
    """Sections of named entries: data.sources.<name> (SourceConfig) and eval.<name> (EvalSetConfig)."""
    entry = _schema("data")["properties"]["sources"]["additionalProperties"]["properties"]
    problems = _compare(SourceConfig, entry, "data.sources.<name>")
    problems += _compare(EvalSetConfig, _schema("eval")["additionalProperties"]["properties"], "eval.<name>")
    assert not problems, "\n".join(problems)
    for name, src in CONFIG["data"]["sources"].items():
        from_dict(SourceConfig, src, f"data.sources.{name}")
    for name, ev in CONFIG["eval"].items():
        from_dict(EvalSetConfig, ev, f"eval.{name}")


@pytest.mark.parametrize("path", sorted(MODEL_DEFS), ids=".".join)
def test_models_schema_and_dataclasses_agree(path):
    cls, schema_only, class_only = MODEL_DEFS[path]
    node = _schema("models")["$defs"]
    for p in path:
        node = node[p] if p in node else node["properties"][p]
    problems = _compare(cls, node["properties"], "models." + ".".join(path), schema_only, class_only)
    assert not problems, "\n".join(problems)


def test_kernel_choices_agree():
    """models.kernels (one section for every model) and KernelConfig; config.yaml's choices build it."""
    props = _schema("models")["properties"]["kernels"]
    problems = _compare(KernelConfig, props["properties"], "models.kernels")
    if props.get("default") != _dataclass_defaults(KernelConfig):
        problems.append(f"models.kernels: schema default {props.get('default')!r} != KernelConfig's")
    assert not problems, "\n".join(problems)
    from_dict(KernelConfig, CONFIG["models"]["kernels"], "models.kernels")


@pytest.mark.parametrize("section", sorted(DATACLASS_SECTIONS))
def test_config_yaml_values_build_the_dataclass(section):
    cls = DATACLASS_SECTIONS[section][0]
    values = dict(CONFIG.get(section) or {})
    if section == "train":  # a per-model mapping: each model's resolved number must build
        from recall2reason.pretrain.config import job_train_section

        for model in ["some_other_model", *values["micro_batch_size"]]:
            from_dict(cls, job_train_section(model, values), section)
        return
    from_dict(cls, values, section)


def test_config_yaml_models_build():
    from recall2reason.study import expand_models

    for spec in expand_models(CONFIG["models"]):
        ModelConfig.from_dict(spec.model_config(CONFIG["models"]["backend"]))


def test_engine_defaults_are_sample_configs():
    """The decoding engine's keyword defaults are SampleConfig's (a benchmark or test building an
    Engine by hand decodes as the sample stage does)."""
    from recall2reason.sample.engine import Engine

    sample = _dataclass_defaults(SampleConfig)
    renamed = {"compile_step": "compile"}  # Engine keyword -> SampleConfig field
    params = inspect.signature(Engine.__init__).parameters
    checked = 0
    for name, p in params.items():
        key = renamed.get(name, name)
        if key in sample and p.default is not inspect.Parameter.empty:
            assert p.default == sample[key], f"Engine({name}={p.default!r}) but SampleConfig.{key} = {sample[key]!r}"
            checked += 1
    assert checked >= 5


def test_key_lists_name_fields_of_their_dataclass():
    """The lists of keys that other code picks out of a section (resume / shard fingerprints, the
    probe job's engine keys) name fields of the section's dataclass."""
    from recall2reason.probe.config import ENGINE_KEYS, SET_KEYS
    from recall2reason.sample.run import _OUTPUT_KEYS

    for owner, keys, cls in [("TrainConfig.RESUME_KEYS", TrainConfig.RESUME_KEYS, TrainConfig),
                             ("sample.run._OUTPUT_KEYS", _OUTPUT_KEYS, SampleConfig),
                             ("probe.config.ENGINE_KEYS", ENGINE_KEYS, SampleConfig),
                             ("probe.config.SET_KEYS", SET_KEYS, ProbeConfig)]:
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(keys) <= fields, f"{owner}: {sorted(set(keys) - fields)} are not fields of {cls.__name__}"


def test_the_comparison_catches_a_drift():
    """The checker itself: a changed default, a key on one side only and a stale exception are reported."""

    @dataclasses.dataclass
    class Toy:
        a: int = 1
        b: int = 2

    props = {"a": {"type": "integer", "default": 3}, "c": {"type": "integer"}}
    problems = _compare(Toy, props, "toy", class_only={"a"})
    assert any("toy.a: schema default 3 != Toy default 1" in p for p in problems)
    assert any("toy.c: in the schema, not a field of Toy" in p for p in problems)
    assert any("toy.b: a field of Toy, not in the schema" in p for p in problems)
    assert any("toy.a: listed as an exception" in p for p in problems)
