"""Probe stage: generated probes checked by an independent reader of their text, scoring against
hand-labelled completions, the summary's arithmetic, and the stage end to end on a tiny model."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recall2reason.common import read_jsonl
from recall2reason.common.cfg import ConfigError
from recall2reason.probe.__main__ import main
from recall2reason.probe.config import KINDS, ProbeConfig, n_updates
from recall2reason.probe.generate import make_probe, probe_set, target_distance
from recall2reason.probe.score import extract_answer, outcome, summary_rows, wilson

REPO = Path(__file__).resolve().parents[1]
CFG = ProbeConfig(ks=[2, 5, 16, 64], distances=[0.0, 0.3, 0.5, 1.0], per_cell=3)

_WRITE = re.compile(r"(Later, )?(\w+) has (\d+) (\w+)( instead)?\.")


def read_back(probe: dict) -> dict:
    """What the question says, read from its text alone: every write of a number to a key, in
    order, the other numbers, the queried key, and the sentence where the key was last written."""
    q = probe["question"]
    if probe["kind"] == "mqar":
        body, ask = q.split(". What number does ")
        key = ask.removesuffix(" stand for?")
        pairs = [p.split(" ") for p in body.removeprefix("Each code stands for a number: ").split(", ")]
        last = max(i for i, (c, _) in enumerate(pairs) if c == key)
        return {"key": key, "writes": [(c, int(v), False) for c, v in pairs], "other_numbers": [], "n": len(pairs),
                "last": last}
    *facts, ask = re.split(r"(?<=[.?]) ", q)
    item, key = re.fullmatch(r"How many (\w+) does (\w+) have now\?", ask).groups()
    writes, other, last = [], [], None
    for i, s in enumerate(facts):
        m = _WRITE.fullmatch(s)
        if m and m.group(4) == item:
            assert bool(m.group(1)) == bool(m.group(5)), s
            writes.append((m.group(2), int(m.group(3)), bool(m.group(1))))
            last = i if m.group(2) == key else last
        else:
            other += [int(x) for x in re.findall(r"\d+", s)]
    return {"key": key, "writes": writes, "other_numbers": other, "n": len(facts), "last": last}


def test_answers_are_right_by_construction():
    probes = probe_set(CFG)
    assert len(probes) == len(KINDS) * 4 * 4 * 3 and len({p["id"] for p in probes}) == len(probes)
    for p in probes:
        seen = read_back(p)
        writes = seen["writes"]
        keys = [w[0] for w in writes if not w[2]]
        assert len(keys) == len(set(keys)) == p["k"], p["id"]  # k keys, each bound once
        assert seen["key"] == p["key"] and p["key"] in keys
        latest = {}
        for key, value, is_update in writes:
            assert is_update == (key in latest), p["id"]  # an overwrite only after the binding
            latest[key] = value
        assert p["gold"] == latest[p["key"]], p["id"]
        numbers = [w[1] for w in writes] + seen["other_numbers"]
        assert len(numbers) == len(set(numbers)), p["id"]  # every number of a probe is distinct
        assert all(2 <= x <= CFG.max_value for x in numbers)
        assert p["n_sentences"] == seen["n"]
        if p["kind"] == "update":
            updated = [w[0] for w in writes if w[2]]
            assert p["key"] in updated and len(updated) == n_updates(p["k"])
            assert p["stale"] == [next(w[1] for w in writes if w[0] == p["key"])]  # its first value
        else:
            assert p["stale"] == [] and len(writes) == p["k"]
        assert len(seen["other_numbers"]) == (p["k"] if p["kind"] == "distractor" else 0)
        assert p["distractors"] == sorted(seen["other_numbers"])
        assert p["other_keys"] == sorted(w[1] for w in writes if w[0] != p["key"])
        assert p["distance_sentences"] == seen["n"] - 1 - seen["last"], p["id"]  # sentences after the queried write
        assert p["prompt"] == f"Question: {p['question']}\nAnswer:"


@pytest.mark.parametrize("kind", KINDS)
def test_distance_is_as_asked(kind):
    for k in CFG.ks:
        near, far = make_probe(kind, k, 0.0, 0, 1, 999), make_probe(kind, k, 1.0, 0, 1, 999)
        n = near["n_sentences"]
        assert n == {"binding": k, "mqar": k, "distractor": 2 * k, "update": k + n_updates(k)}[kind]
        assert near["distance_sentences"] == 0 and near["distance_chars"] == 0
        # the farthest write is the first sentence; an overwrite the second (its binding first)
        assert far["distance_sentences"] == n - 1 - (kind == "update")
        for d in CFG.distances:
            p = make_probe(kind, k, d, 1, 1, 999)
            assert p["distance_sentences"] == target_distance(d, n, kind == "update")
            q = p["question"]
            if kind == "mqar":
                end, question_at = q.index(f"{p['key']} {p['gold']}") + len(f"{p['key']} {p['gold']}"), q.rindex(". What")
            else:
                end, question_at = q.index(f" {p['gold']} ") + len(f" {p['gold']} "), q.rindex(" How many")
                end = q.index(".", end) + 1  # the end of the queried write's sentence
            assert p["distance_chars"] == question_at - end
    assert target_distance(0.5, 4, 0) == 2 and target_distance(0.5, 6, 0) == 3  # 1.5 and 2.5 round up


def test_probe_chars_distance_grows_with_sentences():
    for kind in KINDS:
        ds = [make_probe(kind, 16, d, 0, 3, 999) for d in (0.0, 0.5, 1.0)]
        assert [p["distance_sentences"] for p in ds] == sorted(p["distance_sentences"] for p in ds)
        assert ds[0]["distance_chars"] < ds[1]["distance_chars"] < ds[2]["distance_chars"]


def test_probe_set_is_seeded_and_order_free(tmp_path):
    a, b = probe_set(CFG), probe_set(CFG)
    assert a == b
    assert make_probe("update", 16, 0.5, 2, CFG.seed, CFG.max_value) in a  # any probe on its own
    other = probe_set(ProbeConfig(ks=CFG.ks, distances=CFG.distances, per_cell=3, seed=CFG.seed + 1))
    assert sum(x["question"] == y["question"] for x, y in zip(a, other)) == 0
    assert all(p["seed"] == CFG.seed and p["generator"] == "r2r-probes-v1" for p in a)
    out = tmp_path / "set.jsonl"
    assert main(["set", "--cfg", json.dumps({"ks": [2, 4], "per_cell": 2}), "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main(["set", "--cfg", json.dumps({"ks": [2, 4], "per_cell": 2}), "--out", str(out)]) == 0
    assert out.read_bytes() == first and len(first.splitlines()) == len(KINDS) * 2 * 3 * 2


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"ks": [1, 4]}, "probe.ks: [1] outside 2..64"),
        ({"ks": [65]}, "probe.ks: [65] outside 2..64"),
        ({"distances": [0.5, 1.5]}, "probe.distances: [1.5] outside [0, 1]"),
        ({"distances": [0.5, 0.501]}, "must differ in their first 2 decimals"),
        ({"kinds": ["binding", "binding"]}, "probe.kinds repeats a value"),
        ({"kinds": ["recall"]}, "probe.kinds[0]: 'recall' is not one of"),
        ({"ks": [64], "max_value": 99}, "probe.max_value: 99 leaves 98 numbers"),
        ({"per_cell": 0}, "probe.per_cell must be >= 1"),
        ({"k": [2]}, "unknown config key(s) probe.k"),
    ],
)
def test_bad_config_names_the_key(cfg, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        ProbeConfig.from_dict(cfg)


def test_schema_config_yaml_and_dataclass_agree():
    import dataclasses

    import yaml

    from recall2reason.report.config import CorrelationConfig

    section = yaml.safe_load((REPO / "config.yaml").read_text())
    schemas = REPO / "workflow" / "schemas" / "sections"
    for cfg_section, schema_props, cls in (
        (section["probe"], yaml.safe_load((schemas / "probe.schema.yaml").read_text())["properties"], ProbeConfig),
        (section["report"]["correlation"],
         yaml.safe_load((schemas / "report.schema.yaml").read_text())["properties"]["correlation"]["properties"],
         CorrelationConfig),
    ):
        built = cls(**cfg_section)
        assert set(cfg_section) == set(schema_props) == {f.name for f in dataclasses.fields(cls)}
        for key, spec in schema_props.items():
            assert spec["default"] == getattr(cls(), key) == getattr(built, key), key


def test_paper_probes_fit_the_paper_models(shared_dir):
    """With the Llama-2 tokenizer the longest probe (64 bindings + 64 distractors) and its answer
    fit the 2048 positions the paper's models are trained on."""
    from recall2reason.data.tokenizer import load_tokenizer

    tok = load_tokenizer(shared_dir / "tokenizer" / "llama2" / "tokenizer.model")
    cfg = ProbeConfig()
    longest = max(len(tok.encode(p["prompt"])) for p in probe_set(ProbeConfig(ks=[64], per_cell=3)))
    assert 1 + longest + cfg.max_new_tokens <= 2048, longest


# -- scoring -------------------------------------------------------------------------------

PROBE = {"gold": 41, "stale": [17], "other_keys": [5, 230], "distractors": [9]}


@pytest.mark.parametrize(
    "text, answer, result",
    [
        ("Ben has 41 apples in the end.\n#### 41", "41", "correct"),
        ("Ben had 17 apples, then 41.\nThe answer is: 41", "41", "correct"),
        ("The answer is $\\boxed{41}$.", "41", "correct"),
        ("Ben has 41 apples.\n#### 41\n\nQuestion: Ava has 3 eggs.", "41", "correct"),  # cut at the next problem
        ("Ben has 17 apples.\n#### 17", "17", "stale"),
        ("KQ stands for 230.", "230", "other_key"),
        ("Ben's locker is 9, so #### 9", "9", "distractor"),
        ("#### 40", "40", "other"),
        ("$\\boxed{\\frac{1}{2}}$", "1/2", "other"),
        ("Ben has some apples.", None, "no_answer"),
        ("", None, "no_answer"),
    ],
)
def test_scoring_against_labelled_completions(text, answer, result):
    got = extract_answer(text, timeout_s=5)
    assert got == answer
    assert outcome(got, PROBE) == result


def test_wilson_interval_by_hand():
    lo, hi = wilson(8, 10)  # (0.8 + 1.96^2/20 -+ 1.96 sqrt(0.016 + 1.96^2/400)) / (1 + 1.96^2/10)
    assert lo == pytest.approx(0.490162, abs=1e-6) and hi == pytest.approx(0.943318, abs=1e-6)
    assert wilson(0, 10) == (0.0, pytest.approx(0.277533, abs=1e-6))
    assert wilson(10, 10) == pytest.approx((0.722467, 1.0), abs=1e-6)
    assert all(math.isnan(v) for v in wilson(0, 0))


def test_summary_arithmetic():
    outcomes = {("binding", 2, 0.0): ["correct", "correct", "other_key", "no_answer"],
                ("binding", 2, 1.0): ["correct", "other_key"],
                ("update", 8, 0.0): ["stale", "correct", "distractor"]}
    rows = [{"kind": kind, "k": k, "distance": d, "outcome": o} for (kind, k, d), os_ in outcomes.items() for o in os_]
    table = {(r["kind"], r["k"], r["distance"]): r for r in summary_rows(rows)}
    assert list(table)[-1] == ("all", "all", "all")
    cell = table["binding", 2, 0.0]
    assert (cell["n"], cell["correct"], cell["accuracy"]) == (4, 2, 0.5)
    assert (cell["other_key"], cell["no_answer"], cell["stale"]) == (0.25, 0.25, 0.0)
    assert (cell["lo"], cell["hi"]) == pytest.approx(wilson(2, 4))
    assert table["binding", 2, "all"]["accuracy"] == 3 / 6 and table["binding", "all", "all"]["n"] == 6
    assert table["update", "all", "all"]["stale"] == pytest.approx(1 / 3)
    assert table["all", 8, "all"]["n"] == 3 and table["all", 2, "all"]["accuracy"] == 0.5
    overall = table["all", "all", "all"]
    assert (overall["n"], overall["correct"]) == (9, 4)
    order = [key for key in table if key[0] == "binding"]
    assert order == [("binding", 2, 0.0), ("binding", 2, 1.0), ("binding", 2, "all"), ("binding", "all", "all")]


# -- the stage on a tiny model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from recall2reason.data import synthetic
    from recall2reason.data.tokenizer import load_tokenizer, train_tokenizer
    from recall2reason.models import ModelConfig, build_model, save_model

    d = tmp_path_factory.mktemp("probe")
    cfg = {"ks": [2, 8], "distances": [0.0, 1.0], "per_cell": 2, "max_value": 99}
    assert main(["set", "--cfg", json.dumps(cfg), "--out", str(d / "probe_set.jsonl")]) == 0
    texts = [p["prompt"] for p in probe_set(ProbeConfig(ks=[2, 8], per_cell=4, max_value=99))]
    texts += [r["question"] + r["answer"] for r in synthetic.generate("gsm8k", 200, 1)]
    train_tokenizer(texts, d / "tok.model", vocab_size=400)
    tok = load_tokenizer(d / "tok.model")
    torch.manual_seed(0)
    for name, layers, max_seq_len in (("tiny", ["attention", "gdn"], 512), ("short", ["attention"], 64)):
        model = build_model(ModelConfig(d_model=32, n_layers=len(layers), layers=layers, n_heads=2, n_kv_heads=2,
                                        mlp_ratio=4, vocab_size=tok.vocab_size, max_seq_len=max_seq_len,
                                        backend="reference", init_std=0.1))
        save_model(model, d / name, extra={"name": name, "tokenizer_sha256": tok.sha256})
    return d


def run_args(d: Path, model: str, tag: str, batch_size: int) -> list[str]:
    cfg = {"probe": {"max_new_tokens": 12, "batch_size": batch_size}, "sample": {"prompt_prefix": "eos"}, "vote": {"timeout_s": 5}}
    return ["run", "--cfg", json.dumps(cfg), "--model-dir", str(d / model), "--tokenizer", str(d / "tok.model"),
            "--probes", str(d / "probe_set.jsonl"), "--out", str(d / tag / f"{model}.jsonl"),
            "--summary", str(d / tag / f"{model}.summary.csv"), "--device", "cpu", "--no-progress"]


def test_stage_rows_summary_and_greedy_determinism(assets):
    d = assets
    assert main(run_args(d, "tiny", "a", batch_size=5)) == 0
    probes = list(read_jsonl(d / "probe_set.jsonl"))
    rows = list(read_jsonl(d / "a" / "tiny.jsonl"))
    assert [r["id"] for r in rows] == [p["id"] for p in probes]
    for r, p in zip(rows, probes):
        assert r["gold"] == p["gold"] and (r["kind"], r["k"], r["distance"]) == (p["kind"], p["k"], p["distance"])
        assert r["outcome"] == outcome(r["answer"], p) and r["answer"] == extract_answer(r["text"], 5)
        assert 0 <= r["n_tokens"] <= 12 and r["finish_reason"] in ("eos", "length")
    summary = list(csv.DictReader(open(d / "a" / "tiny.summary.csv")))
    overall = summary[-1]
    assert (overall["kind"], overall["k"], overall["distance"], int(overall["n"])) == ("all", "all", "all", len(rows))
    assert int(overall["correct"]) == sum(r["outcome"] == "correct" for r in rows)
    # greedy: the same text whatever the batch size (rows never interact in the engine)
    assert main(run_args(d, "tiny", "b", batch_size=32)) == 0
    assert (d / "a" / "tiny.jsonl").read_bytes() == (d / "b" / "tiny.jsonl").read_bytes()


def test_stage_errors_name_the_cause(assets, caplog):
    d = assets
    assert main(run_args(d, "short", "c", batch_size=8)) == 2  # 64 positions: the k=8 probes do not fit
    assert "probe.ks / probe.max_new_tokens" in caplog.text and "max_seq_len" in caplog.text
    assert not (d / "c" / "short.jsonl").exists()
    bad = d / "bad_set.jsonl"
    lines = (d / "probe_set.jsonl").read_text().splitlines()
    bad.write_text("\n".join([lines[0], json.dumps({"id": "x", "kind": "binding"})]) + "\n")
    args = run_args(d, "tiny", "c", batch_size=8)
    args[args.index("--probes") + 1] = str(bad)
    assert main(args) == 2 and f"{bad}:2: probe lacks key(s)" in caplog.text
    args = run_args(d, "tiny", "c", batch_size=8)
    args[2] = json.dumps({"probe": {}, "sampel": {}})
    assert main(args) == 2 and "sampel" in caplog.text


def test_help_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "recall2reason.probe", "run", "--help"], capture_output=True, text=True,
                       cwd=REPO)
    assert r.returncode == 0 and "--summary" in r.stdout
