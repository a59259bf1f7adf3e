"""The vote CLI end to end on hand-made eval and sample files, and its input checks."""

import csv
import json
from pathlib import Path

import pytest

from recall2reason.common import ConfigError, from_dict
from recall2reason.vote.stage import VoteConfig, VoteInputError, breakdown_ks, load_samples, main

CFG = json.dumps({"workers": 1, "timeout_s": 5, "bootstrap": 200, "seed": 0})
N = 4


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def eval_rows():
    return [
        {"id": "a", "question": "q", "prompt": "Question: q\nAnswer:", "gold": "18", "answer_style": "math",
         "reference_solution": "\\boxed{18}", "subject": "Algebra", "level": 1},
        {"id": "b", "question": "q", "prompt": "Question: q\nAnswer:", "gold": "\\frac{1}{2}", "answer_style": "math",
         "reference_solution": "\\boxed{\\frac{1}{2}}", "subject": "Algebra", "level": 3},
        {"id": "c", "question": "q", "prompt": "Question: q\nAnswer:", "gold": "\\sqrt{3}", "answer_style": "math",
         "reference_solution": "\\boxed{\\sqrt{3}}", "subject": "Geometry", "level": 3},
    ]


TEXTS = {
    "a": ["\\boxed{18}", "\\boxed{18} Question: what is 2+2? \\boxed{4}", "\\boxed{17}", "no idea"],
    "b": ["\\boxed{0.5}", "\\boxed{3}", "\\boxed{3}", "The answer is: 1/2"],
    "c": ["\\boxed{\\sqrt{2}}", "\\boxed{\\sqrt{2}}", "\\boxed{\\sqrt{2}}", "\\boxed{\\sqrt{5}}"],
}


def sample_rows(idx_range, texts=TEXTS):
    return [
        {"problem_id": pid, "sample_idx": i, "text": texts[pid][i], "n_tokens": 10, "finish_reason": "eos", "seed": i}
        for pid in texts for i in idx_range
    ]


@pytest.fixture
def files(tmp_path):
    ev = write_jsonl(tmp_path / "eval.jsonl", eval_rows())
    p0 = write_jsonl(tmp_path / "part-0.jsonl", sample_rows(range(0, 2)))
    p1 = write_jsonl(tmp_path / "part-1.jsonl", sample_rows(range(2, 4)))
    out = {k: str(tmp_path / "out" / f"math500.{k}") for k in ("problems.jsonl", "curves.csv", "breakdown.csv")}
    return tmp_path, ev, [p0, p1], out


def run_cli(ev, parts, out, n=N, cfg=CFG):
    return main(["--cfg", cfg, "--eval", ev, "--samples", *parts, "--n", str(n),
                 "--out-problems", out["problems.jsonl"], "--out-curves", out["curves.csv"],
                 "--out-breakdown", out["breakdown.csv"]])


def test_end_to_end(files):
    _, ev, parts, out = files
    assert run_cli(ev, parts, out) == 0
    rows = [json.loads(line) for line in open(out["problems.jsonl"])]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    a, b, c = rows
    assert a["correct"] == [True, True, False, False] and a["answers"][3] is None
    assert a["no_answer"] == 1 and a["no_ending"] == 1 and b["no_answer"] == 0
    assert b["correct"] == [True, False, False, True]
    assert {g["answer"]: (g["size"], g["correct"]) for g in b["groups"]} == {"1/2": (2, True), "3": (2, False)}
    assert sorted(b["groups"][0]["samples"] + b["groups"][1]["samples"]) == [0, 1, 2, 3]
    assert c["correct"] == [False] * 4 and c["subject"] == "Geometry" and c["level"] == 3

    with open(out["curves.csv"]) as f:
        curves = list(csv.DictReader(f))
    assert list(curves[0]) == ["k", "maj_exact", "maj_exact_lo", "maj_exact_hi", "maj_first", "maj_first_lo",
                               "maj_first_hi", "pass_k", "pass_k_lo", "pass_k_hi"]
    assert [int(r["k"]) for r in curves] == [1, 2, 3, 4]
    # k=1: (2/4 + 2/4 + 0) / 3; pass@4: 2 of 3 problems have a correct sample
    assert float(curves[0]["maj_exact"]) == pytest.approx(1 / 3, abs=1e-6)
    assert float(curves[3]["pass_k"]) == pytest.approx(2 / 3, abs=1e-6)
    # k=4: a wins 2 vs 1; b is a 2-2 tie (1/2); c loses
    assert float(curves[3]["maj_exact"]) == pytest.approx(0.5, abs=1e-6)
    # first-k at k=4: a wins, b's tie goes to first-seen 1/2, c loses
    assert float(curves[3]["maj_first"]) == pytest.approx(2 / 3, abs=1e-6)
    for r in curves:
        for m in ("maj_exact", "maj_first", "pass_k"):
            assert 0 <= float(r[f"{m}_lo"]) <= float(r[m]) <= float(r[f"{m}_hi"]) <= 1

    with open(out["breakdown.csv"]) as f:
        bd = list(csv.DictReader(f))
    keyed = {(r["by"], r["value"], int(r["k"])): r for r in bd}
    assert int(keyed["all", "all", 4]["n_problems"]) == 3
    assert int(keyed["subject", "Algebra", 4]["n_problems"]) == 2
    assert float(keyed["subject", "Algebra", 4]["maj_exact"]) == pytest.approx(0.75, abs=1e-6)
    assert float(keyed["level", "3", 1]["pass_k"]) == pytest.approx(0.25, abs=1e-6)
    assert float(keyed["subject", "Geometry", 4]["pass_k"]) == 0
    # share of completions without an answer: 1 of a's 4, none of b's or c's
    assert float(keyed["all", "all", 1]["no_answer"]) == pytest.approx(1 / 12, abs=1e-6)
    assert float(keyed["subject", "Algebra", 4]["no_answer"]) == pytest.approx(1 / 8, abs=1e-6)


def test_pool_matches_in_process(files):
    tmp, ev, parts, out = files
    assert run_cli(ev, parts, out) == 0
    out2 = {k: str(tmp / "pool" / Path(v).name) for k, v in out.items()}
    assert run_cli(ev, parts, out2, cfg=json.dumps({"workers": 2, "bootstrap": 200, "seed": 0})) == 0
    for k in out:
        assert Path(out[k]).read_text() == Path(out2[k]).read_text()


def expect_error(tmp, ev, parts, out, match, caplog, n=N, cfg=CFG):
    caplog.clear()
    assert run_cli(ev, parts, out, n=n, cfg=cfg) == 2
    assert match in caplog.text
    assert not any(Path(p).exists() for p in out.values()), "nothing may be written on bad input"


def test_missing_and_duplicate_samples(files, caplog):
    tmp, ev, parts, out = files
    # a whole part file missing
    expect_error(tmp, ev, parts[:1], out, "3 of 3 problems lack samples", caplog)
    # one sample missing
    rows = sample_rows(range(2, 4))[:-1]
    short = write_jsonl(tmp / "short.jsonl", rows)
    expect_error(tmp, ev, [parts[0], short], out, "'c': 1 missing (e.g. [3])", caplog)
    # the same sample in two part files
    expect_error(tmp, ev, [parts[0], parts[1], parts[1]], out, "duplicate sample (problem_id 'a', sample_idx 2)", caplog)
    # --n larger than what was sampled
    expect_error(tmp, ev, parts, out, "lack samples", caplog, n=5)
    # sample index beyond n, unknown problem
    expect_error(tmp, ev, parts, out, "sample_idx 3 is not an integer in [0, 3)", caplog, n=3)
    bad = write_jsonl(tmp / "bad.jsonl", [{"problem_id": "zz", "sample_idx": 0, "text": "1"}])
    expect_error(tmp, ev, [*parts, bad], out, "problem_id 'zz' is not in the eval set", caplog)
    nokey = write_jsonl(tmp / "nokey.jsonl", [{"problem_id": "a", "sample_idx": 0}])
    expect_error(tmp, ev, [nokey], out, "lacks key(s) ['text']", caplog)


def test_bad_eval_and_cfg(files, caplog):
    tmp, ev, parts, out = files
    rows = eval_rows()
    rows[1]["answer_style"] = "aime"
    bad_ev = write_jsonl(tmp / "bad_eval.jsonl", rows)
    expect_error(tmp, bad_ev, parts, out, "answer_style must be 'gsm8k' or 'math'", caplog)
    dup_ev = write_jsonl(tmp / "dup_eval.jsonl", eval_rows() + eval_rows()[:1])
    expect_error(tmp, dup_ev, parts, out, "duplicate problem id 'a'", caplog)
    expect_error(tmp, ev, parts, out, "unknown config key(s) vote.worker", caplog, cfg='{"worker": 1}')
    expect_error(tmp, ev, parts, out, "vote.timeout_s must be > 0", caplog, cfg='{"timeout_s": 0}')
    expect_error(tmp, ev, [str(tmp / "nope.jsonl")], out, "input file not found", caplog)


def test_config_matches_config_yaml():
    import yaml

    root = Path(__file__).resolve().parents[1]
    section = yaml.safe_load((root / "config.yaml").read_text())["vote"]
    cfg = from_dict(VoteConfig, section, "vote")
    schema = yaml.safe_load((root / "workflow/schemas/sections/vote.schema.yaml").read_text())
    assert set(section) == set(schema["properties"]) == set(VoteConfig.__dataclass_fields__)
    for key, spec in schema["properties"].items():
        assert spec["default"] == getattr(VoteConfig(), key) == getattr(cfg, key), key
    with pytest.raises(ConfigError):
        from_dict(VoteConfig, {"bootstrap": -1}, "vote")


def test_breakdown_ks():
    assert breakdown_ks(64) == [1, 2, 4, 8, 16, 32, 64]
    assert breakdown_ks(1) == [1]
    assert breakdown_ks(6) == [1, 2, 4, 6]


def test_load_samples_message_names_both_files(tmp_path):
    p0 = write_jsonl(tmp_path / "p0.jsonl", [{"problem_id": 1, "sample_idx": 0, "text": "x"}])
    p1 = write_jsonl(tmp_path / "p1.jsonl", [{"problem_id": 1, "sample_idx": 0, "text": "y"}])
    with pytest.raises(VoteInputError, match=r"p0.jsonl:1 and .*p1.jsonl:1"):
        load_samples([p0, p1], [1], 1)
