"""Appendix A.3's ablations: the variant sets (names, sharing, errors), the loss-spike rule, the
figures' CLI and the DAG targets (each builds only what it needs, `all` untouched). The demo's toy
sweep is built end to end in tests/test_demo_e2e.py, on that module's trained demo."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from conftest import REPO, snakemake
from recall2reason.common.cfg import ConfigError
from recall2reason.report.ablations import SpikeRule, find_spikes, spike_rows, SetInfo, VariantInfo
from recall2reason.study import ablation_models, all_models, expand_ablations, expand_models, select_only

PAPER = yaml.safe_load((REPO / "config.yaml").read_text())


def job_counts(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def paper_sets(**changes):
    ab = copy.deepcopy(PAPER["ablations"])
    ab.update(changes)
    return expand_ablations(PAPER["models"], ab)


# -- variant sets ------------------------------------------------------------------------------

def test_paper_sweeps_name_their_variants_by_their_settings():
    sets = paper_sets()
    names = {s: [v.spec.name for v in st.variants] for s, st in sets.items()}
    assert names["mamba_d_state"] == ["mamba100_d_state8", "mamba100", "mamba100_d_state32", "mamba100_d_state64"]
    assert names["mamba_d_inner_d_xb"] == ["mamba100_d_xb384", "mamba100", "mamba100_d_inner1536_d_xb384",
                                           "mamba100_d_inner1536", "mamba100_d_inner1536_d_xb1536"]
    assert names["mamba_dt_rank"][-1] == "mamba100_dt_limit0p0001_1"
    assert names["gdn_short_conv"] == ["gdn83_use_short_conv_off", "gdn83_conv_size2", "gdn83_conv_size3", "gdn83"]
    assert "gdn83_attn_0_11" in names["gdn83_attention"] and names["gdn75_attention"][-1] == "gdn75"
    # the base of each set is the study's own model, trained once for both
    models = ablation_models(sets)
    study = {s.name: s for s in expand_models(PAPER["models"])}
    assert len(models) == 26 and len(set(models) - set(study)) == 23
    for shared in ("mamba100", "gdn83", "gdn75"):
        assert models[shared] == study[shared] and models[shared].model_config() == study[shared].model_config()
    labels = [v.label for v in sets["mamba_d_inner_d_xb"].variants]
    assert labels[1] == "d_inner=768, d_xb=768" and labels[2] == "d_inner=1536, d_xb=384"


def test_variant_settings_reach_the_model_config():
    m = ablation_models(paper_sets())
    cfg = m["mamba100_d_inner1536_d_xb384"].model_config("reference")
    assert cfg["mamba"] == {"d_state": 16, "d_conv": 4, "expand": 1, "dt_rank": 32, "d_inner": 1536, "d_xb": 384}
    assert cfg["layers"] == ["mamba"] * 12
    # named by what differs from Mamba100 (d_xb 768 does not): its d_xb stays 768, not d_inner's 1536
    assert m["mamba100_d_inner1536"].model_config()["mamba"]["d_xb"] == 768
    assert m["mamba100_d_inner1536_d_xb1536"].model_config()["mamba"].get("d_xb") in (None, 1536)
    assert m["gdn83_attn_0_11"].model_config()["layers"][0] == "attention"
    assert m["gdn83_use_gate_on"].model_config()["gdn"]["use_gate"] is True
    assert m["mamba100_dt_limit0p0001_1"].model_config()["mamba"]["dt_limit"] == [0.0001, 1.0]
    from recall2reason.models import ModelConfig

    for spec in m.values():  # every variant is a valid model
        ModelConfig.from_dict(spec.model_config("reference"))


def test_one_variant_reached_twice_or_written_twice_is_one_model():
    ab = copy.deepcopy(PAPER["ablations"])
    ab["sets"]["again"] = {"base": "mamba100", "variants": [{"mixers": {"mamba": {"d_state": 8}}},
                                                            {"mixers": {"mamba": {"d_xb": 768, "d_inner": 768}}},
                                                            {"mixers": {"mamba": {"dt_rank": None}}}]}
    ab["sets"]["moved"] = {"base": "gdn83", "variants": [{"attention_layers": [3, 7, 11]}, {"attention_layers": [11, 5]}]}
    ab["figures"]["fig7"] = ["mamba_dt_rank", "again"]
    ab["figures"]["fig8"] = ["moved"]
    sets = expand_ablations(PAPER["models"], ab)
    assert [v.spec.name for v in sets["again"].variants] == ["mamba100_d_state8", "mamba100", "mamba100_dt_rank48"]
    assert [v.spec.name for v in sets["moved"].variants] == ["gdn75", "gdn83"]  # gdn83 with GDN75's layers is GDN75
    assert sets["again"].variants[0].spec is sets["mamba_d_state"].variants[0].spec or \
        sets["again"].variants[0].spec == sets["mamba_d_state"].variants[0].spec


def test_sets_not_drawn_are_not_expanded_and_models_only_does_not_hide_bases():
    models = {**PAPER["models"], "only": ["transformer"]}
    sets = expand_ablations(models, {**PAPER["ablations"], "figures": {"fig7": ["mamba_dt_rank"]}})
    assert list(sets) == ["mamba_dt_rank"]


def test_models_only_selects_from_every_model_built_once():
    models = {**PAPER["models"], "only": ["gdn83", "transformer"]}
    every = all_models(models)
    assert len(every) == 13 and [s.name for s in expand_models(models)] == ["transformer", "gdn83"]
    assert select_only(every, models["only"]) == expand_models(models) and select_only(every, []) == every
    with pytest.raises(ConfigError, match=r"unknown model\(s\) \['gdn51'\]"):
        select_only(every, ["gdn51"])
    # the parse passes its every-model list to the ablations: the same sets as building it again
    ab = {**PAPER["ablations"], "figures": {"fig7": ["mamba_dt_rank"]}}
    assert expand_ablations(models, ab, every) == expand_ablations(models, ab)


@pytest.mark.parametrize("change, message", [
    ({"figures": {"fig6": ["nope"]}}, "no set named 'nope'"),
    ({"sets": {"x": {"base": "mamba42", "variants": [{}]}}, "figures": {"fig6": ["x"]}}, "not a model of the study"),
    ({"sets": {"x": {"base": "transformer", "variants": [{}]}}, "figures": {"fig6": ["x"]}}, "Transformer"),
    ({"sets": {"x": {"base": "gdn83", "variants": [{"mixers": {"mamba": {"d_state": 8}}}]}}, "figures": {"fig6": ["x"]}},
     "does not apply to gdn83"),
    ({"sets": {"x": {"base": "gdn83", "variants": [{"attention_layers": [12]}]}}, "figures": {"fig6": ["x"]}},
     "has 12 layers"),
    ({"sets": {"x": {"base": "gdn83", "variants": [{}, {"attention_layers": [11, 5]}]}}, "figures": {"fig6": ["x"]}},
     "listed twice"),
])
def test_bad_sets_are_config_errors(change, message):
    with pytest.raises(ConfigError, match=message):
        expand_ablations(PAPER["models"], change)


# -- the spike rule ----------------------------------------------------------------------------

def test_spike_rule():
    rule = SpikeRule(window=4, threshold=0.1)
    loss = [10.0, 8.0, 6.0, 5.0, 4.5, 4.2, 4.0, 5.5, 6.0, 4.1, 3.9, 3.8, 4.1, 3.7, 3.6, 9.0, 3.5, 3.4]
    steps = [10 * (i + 1) for i in range(len(loss))]
    spikes = find_spikes(steps, loss, rule)
    # 5.5 and 6.0 rise > 10 % over median(5.0, 4.5, 4.2, 4.0) = 4.35: one spike of two points, peak 6.0;
    # 4.1 after 3.9, 3.8 is < 10 % up; 9.0 is a second spike; the steep start is never one
    assert [(s.start_step, s.end_step, s.peak_step) for s in spikes] == [(80, 90, 90), (160, 160, 160)]
    assert spikes[0].reference == pytest.approx(4.35) and spikes[0].rise == pytest.approx(6.0 / 4.35 - 1)
    assert find_spikes(steps[:4], [1.0, 9.0, 9.0, 9.0], rule) == []  # no full window yet
    assert find_spikes(steps, sorted(loss, reverse=True), rule) == []  # a falling curve has none
    assert len(find_spikes(steps, loss, SpikeRule(window=4, threshold=1.0))) == 1  # only 9.0 doubles its median
    with pytest.raises(ConfigError):
        SpikeRule(window=0)


def test_spike_table_rows():
    rule = SpikeRule(window=2, threshold=0.2)
    losses = {"a": ([1, 2, 3, 4, 5], [5.0, 4.0, 3.0, 5.0, 2.0]), "b": ([1, 2, 3], [3.0, 2.0, 1.0])}
    sets = [SetInfo("s", "S", "a", [VariantInfo("a", "x=1"), VariantInfo("b", "x=2")])]
    rows = spike_rows(sets, losses, rule)
    assert rows[0]["spikes"] == 1 and rows[0]["first_spike_step"] == 4 and rows[0]["largest_rise_pct"] == 42.9
    assert rows[1]["spikes"] == 0 and rows[1]["first_spike_step"] == "" and rows[1]["final_loss"] == 1.5


# -- the figures' CLI --------------------------------------------------------------------------

def test_ablation_figures_and_table_from_stage_files(tmp_path):
    from recall2reason.report.__main__ import main

    sets = [{"name": "s", "title": "Mamba: d_state", "base": "m1",
             "variants": [{"model": "m1", "label": "d_state=16"}, {"model": "m2", "label": "d_state=8"}]}]
    metrics, curves = [], []
    for m, bump in (("m1", 0.0), ("m2", 3.0)):
        p = tmp_path / "pretrain" / m / "metrics.jsonl"
        p.parent.mkdir(parents=True)
        rows = [{"step": 10 * i, "loss": 8.0 / i + (bump if i == 15 else 0.0)} for i in range(1, 31)]
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
        metrics.append(str(p))
        c = tmp_path / "vote" / m / "gsm8k.curves.csv"
        c.parent.mkdir(parents=True)
        c.write_text("k,maj_exact,maj_exact_lo,maj_exact_hi,maj_first,maj_first_lo,maj_first_hi,pass_k,pass_k_lo,pass_k_hi\n"
                     "1,0.1,0.05,0.15,0.1,0.05,0.15,0.1,0.05,0.15\n4,0.2,0.1,0.3,0.2,0.1,0.3,0.3,0.2,0.4\n")
        curves.append(str(c))
    cfg = json.dumps({"sets": sets, "spikes": {"window": 5, "threshold": 0.1}})
    out = tmp_path / "out"
    assert main(["ablation", "fig6", "--cfg", cfg, "--metrics", *metrics, "--out-pdf", str(out / "f6.pdf"),
                 "--out-png", str(out / "f6.png")]) == 0
    assert main(["ablation", "fig8", "--cfg", cfg, "--curves", *curves, "--out-pdf", str(out / "f8.pdf"),
                 "--out-png", str(out / "f8.png")]) == 0
    assert main(["ablation", "spikes", "--cfg", cfg, "--metrics", *metrics, "--out-csv", str(out / "s.csv"),
                 "--out-md", str(out / "s.md")]) == 0
    for f in ("f6.pdf", "f6.png", "f8.pdf", "f8.png"):
        assert (out / f).stat().st_size > 1000, f
    table = (out / "s.csv").read_text().splitlines()
    assert table[0] == "set,model,variant,logged_points,spikes,first_spike_step,largest_rise_pct,final_loss"
    assert table[1].startswith("s,m1,d_state=16,30,0,,") and table[2].startswith("s,m2,d_state=8,30,1,150,")
    assert "1.1 x the median of the 5 logged losses" in (out / "s.md").read_text()
    # a model of the sets without its file is an error naming it
    assert main(["ablation", "fig7", "--cfg", cfg, "--metrics", metrics[0], "--out-pdf", str(out / "x.pdf")]) == 2


# -- the DAG -----------------------------------------------------------------------------------

def test_fig7_plans_only_its_pretraining():
    out = snakemake("-n", "results/figures/fig7.pdf").stdout
    assert job_counts(out) == {"tokenizer": 1, "tokenize": 1, "pretrain": 6, "fig7": 1}
    assert "mamba100_dt_rank8" in out and "mamba100_dt_limit0p0001_1" in out and "eval_set" not in out


def test_ablations_target_plans_each_variant_once_and_all_stays_the_study():
    counts = job_counts(snakemake("-n", "ablations").stdout)
    assert counts == {"eval_set": 1, "tokenizer": 1, "tokenize": 1, "pretrain": 26, "sample": 13, "vote": 13,
                      "fig6": 1, "fig7": 1, "fig8": 1, "ablation_spikes": 1, "ablations": 1}
    out = snakemake("-n", "all").stdout
    assert job_counts(out)["pretrain"] == 13 and "fig6" not in out and "_d_state8" not in out


def test_ablation_pretrain_job_gets_the_variants_settings():
    out = snakemake("-n", "-p", "results/pretrain/mamba100_d_inner1536_d_xb384/model.safetensors").stdout
    cmd = next(line for line in out.splitlines() if "recall2reason.pretrain" in line)
    cfg = json.loads(re.search(r"--cfg '([^']+)'", cmd).group(1))
    assert cfg["name"] == "mamba100_d_inner1536_d_xb384"
    assert cfg["model"]["mamba"]["d_xb"] == 384 and cfg["model"]["mamba"]["d_inner"] == 1536
    assert cfg["train"]["micro_batch_size"] == 32


def test_a_bad_ablation_set_stops_the_parse(tmp_path):
    (tmp_path / "c.yaml").write_text("ablations:\n  figures:\n    fig6: [nope]\n")
    proc = snakemake("-n", "all", "--configfile", str(tmp_path / "c.yaml"), check=False)
    assert proc.returncode != 0 and "no set named 'nope'" in proc.stdout + proc.stderr


def test_schema_keys_are_the_dataclass_fields():
    import dataclasses

    from recall2reason.models.config import MambaConfig
    from recall2reason.report.ablations import SpikeRule

    models = yaml.safe_load((REPO / "workflow/schemas/sections/models.schema.yaml").read_text())
    ablations = yaml.safe_load((REPO / "workflow/schemas/sections/ablations.schema.yaml").read_text())
    assert set(models["$defs"]["mixers"]["properties"]["mamba"]["properties"]) == {
        f.name for f in dataclasses.fields(MambaConfig)}
    assert set(ablations["properties"]["spikes"]["properties"]) == {f.name for f in dataclasses.fields(SpikeRule)}
    assert PAPER["ablations"]["spikes"] == dataclasses.asdict(SpikeRule())  # config.yaml states the defaults


def test_a_variant_may_not_take_a_study_models_name_with_other_settings():
    models = copy.deepcopy(PAPER["models"])
    models["extra"] = {"mamba100_d_state8": {"mixer": "mamba", "attention_layers": [],
                                             "mixers": {"mamba": {"d_state": 4}}}}
    with pytest.raises(ConfigError, match="two different models are both named 'mamba100_d_state8'"):
        expand_ablations(models, {**PAPER["ablations"], "figures": {"fig6": ["mamba_d_state"]}})
    models["extra"]["mamba100_d_state8"]["mixers"]["mamba"]["d_state"] = 8  # the same model: shared
    sets = expand_ablations(models, {**PAPER["ablations"], "figures": {"fig6": ["mamba_d_state"]}})
    assert sets["mamba_d_state"].variants[0].spec.name == "mamba100_d_state8"


def test_dt_limit_bounds_and_names():
    from recall2reason.models.config import mamba_dt_limit
    from recall2reason.study import _token

    assert mamba_dt_limit([0.001, None]) == (0.001, float("inf"))
    for bad in ([-1, None], [-1, 1], [1, 1], [None, 1], [1]):
        with pytest.raises(ConfigError, match="dt_limit"):
            mamba_dt_limit(bad)
    assert _token([0.0001, float("inf")]) == "0p0001_inf" and _token(2.0) == "2" and _token(-0.5) == "m0p5"


def test_a_bad_d_xb_stops_the_parse():
    models = copy.deepcopy(PAPER["models"])
    models["mixers"]["mamba"]["d_xb"] = 100
    with pytest.raises(ConfigError, match="d_xb 100 must divide d_inner"):
        expand_models(models)
