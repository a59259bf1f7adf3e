"""models.extra.<name>.layers: a model given by every layer's mixer (any interleaving of Mamba,
GLA, GDN and attention layers), from the config through the study's model list to a built model
and a planned DAG."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from conftest import snakemake
from recall2reason.common.cfg import ConfigError
from recall2reason.common.schema import config_errors
from recall2reason.study import MIXED, expand_ablations, expand_models

REPO = Path(__file__).resolve().parents[1]
LAYERS = ["mamba", "gdn", "mamba", "gdn", "mamba", "attention", "gdn", "mamba", "gdn", "mamba", "gdn", "attention"]


def study_models() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["models"]


def with_extra(extra: dict, models: dict | None = None) -> dict:
    mc = copy.deepcopy(models or study_models())
    mc["extra"] = extra
    return mc


def test_layer_list_gives_every_layer_its_mixer():
    mc = with_extra({"mamba_gdn83": {"layers": LAYERS, "mixers": {"gdn": {"use_gate": True}}}})
    spec = {s.name: s for s in expand_models(mc)}["mamba_gdn83"]
    assert spec.layer_types == LAYERS
    assert spec.mixer_class == MIXED and spec.attention_layers == (5, 11)
    assert round(spec.attention_pct, 1) == 16.7
    cfg = spec.model_config("reference")
    assert cfg["layers"] == LAYERS
    # the study's settings of each class present, overridden where the model says so; no gla entry
    assert cfg["mamba"] == mc["mixers"]["mamba"] and "gla" not in cfg
    assert cfg["gdn"] == {**mc["mixers"]["gdn"], "use_gate": True}
    # the study's own 13 models are unchanged by the extra
    assert [s.name for s in expand_models(mc)][:13] == [s.name for s in expand_models(study_models())]


def test_one_class_list_keeps_its_class():
    spec = expand_models(with_extra({"gdn_first_last": {"layers": ["attention"] + ["gdn"] * 10 + ["attention"]}}))[-1]
    assert spec.mixer_class == "gdn" and spec.attention_layers == (0, 11)
    spec = expand_models(with_extra({"attn12": {"layers": ["attention"] * 12}}))[-1]
    assert spec.mixer_class == "transformer" and spec.attention_pct == 100.0


def test_the_cpu_twin_builds_and_runs_the_listed_mixers():
    """A small twin of the config's model (reference backend, CPU): each block's mixer is the listed one."""
    from recall2reason.models import ModelConfig, build_model

    layers = ["mamba", "gdn", "attention", "gla"]
    mc = with_extra({"mix4": {"layers": layers}})
    mc["base"].update(d_model=32, n_layers=4, n_heads=4, n_kv_heads=4, vocab_size=64, max_seq_len=64)
    mc["mixers"]["mamba"]["dt_rank"] = None
    mc.update(transformer=False, hybrid_classes=[], only=["mix4"])
    (spec,) = expand_models(mc)
    torch.manual_seed(0)
    model = build_model(ModelConfig.from_dict(spec.model_config("reference")))
    assert [b.mixer.mixer_name for b in model.blocks] == layers
    ids = torch.randint(0, 64, (2, 16))
    with torch.no_grad():
        h = model.hidden(ids)
    assert h.shape == (2, 16, 32) and torch.isfinite(h).all()


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"m": {"layers": LAYERS[:-1]}}, "models.extra.m.layers: 11 mixers, but n_layers is 12"),
        ({"m": {"layers": ["rwkv"] + LAYERS[1:]}}, "models.extra.m.layers.0: unknown mixer 'rwkv'"),
        ({"m": {"layers": LAYERS, "mixer": "gdn"}}, "models.extra.m: layers names every layer's mixer"),
        ({"m": {"layers": LAYERS, "mixers": {"gla": {"conv_size": 2}}}}, "models.extra.m.mixers.gla: no layer of m is a gla layer"),
        ({"m": {"mixer": "gdn"}}, "models.extra.m: give either mixer and attention_layers, or layers"),
        ({"m": {"mixer": "gdn", "attention_layers": [11], "mixers": {"mamba": {"d_state": 8}}}},
         "models.extra.m.mixers.mamba: no layer of m is a mamba layer"),
        ({"m": {"layers": LAYERS[:6], "base": {"n_layers": 6}}}, None),  # a base override: its own depth
    ],
)
def test_bad_layer_list_is_a_config_error_naming_the_key(extra, message):
    if message is None:
        assert expand_models(with_extra(extra))[-1].n_layers == 6
        return
    with pytest.raises(ConfigError, match=re.escape(message)):
        expand_models(with_extra(extra))


def test_an_attention_extra_needs_no_attention_layers():
    spec = expand_models(with_extra({"wide": {"mixer": "attention", "base": {"d_model": 512, "n_heads": 8, "n_kv_heads": 8}}}))[-1]
    assert spec.mixer_class == "transformer" and spec.attention_layers == tuple(range(12))


def test_schema_names_the_bad_mixer():
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["models"]["extra"] = {"m": {"layers": ["mamba", "rwkv"]}}
    errors = config_errors(config, REPO / "workflow/schemas/config.schema.yaml")
    assert any(e.startswith("models.extra.m.layers.1: 'rwkv' is not one of") for e in errors), errors


def test_an_ablation_of_a_layer_list_model_is_refused():
    mc = with_extra({"mg": {"layers": LAYERS}})
    with pytest.raises(ConfigError, match="given layer by layer"):
        expand_ablations(mc, {"figures": {"fig8": ["s"]},
                              "sets": {"s": {"title": "t", "base": "mg", "variants": [{"attention_layers": [0]}]}}})


def test_dry_run_plans_a_layer_list_model(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"models": {"extra": {"mamba_gdn83": {"layers": LAYERS}},
                                              "only": ["transformer", "mamba_gdn83"]}}))
    out = snakemake("-n", "-p", "all", "--configfile", str(cfg)).stdout
    cmd = next(line for line in out.splitlines() if "recall2reason.pretrain --cfg" in line and "mamba_gdn83" in line)
    job = json.loads(re.search(r"--cfg '([^']+)'", cmd).group(1))
    assert job["name"] == "mamba_gdn83" and job["model"]["layers"] == LAYERS
    assert job["train"]["micro_batch_size"] == 32  # train.micro_batch_size.default
    table = out.split("Job stats:")[1].split("total")[0]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    assert counts["pretrain"] == 2 and counts["sample"] == 4 and counts["probe"] == 2
    assert "results/samples/mamba_gdn83/gsm8k/part-0.jsonl" in out


def test_dry_run_stops_on_a_bad_layer_list(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"models": {"extra": {"mg": {"layers": LAYERS[:-1]}}}}))
    proc = snakemake("-n", "all", "--configfile", str(cfg), check=False)
    assert proc.returncode != 0
    assert "models.extra.mg.layers: 11 mixers, but n_layers is 12" in proc.stdout + proc.stderr
