"""CLI, preflight, estimate and input errors of the judge stage (offline: rules backend)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fakes.judge_inputs import write_inputs  # noqa: E402

from recall2reason.common import ConfigError, from_dict, read_json, read_jsonl  # noqa: E402
from recall2reason.judge import preflight  # noqa: E402
from recall2reason.judge.__main__ import main  # noqa: E402
from recall2reason.judge.config import JudgeConfig  # noqa: E402
from recall2reason.judge.estimate import estimate  # noqa: E402


def test_preflight(monkeypatch):
    for v in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(v, raising=False)
    msg = preflight({"backend": "gemini"})
    assert "GEMINI_API_KEY" in msg and "GOOGLE_API_KEY" in msg and "rules" in msg
    monkeypatch.setenv("GOOGLE_API_KEY", "secret-value-123")
    assert preflight({"backend": "gemini"}, probe=False) is None
    assert preflight({"backend": "rules"}) is None
    assert "judge.base_url" in preflight({"backend": "openai"})
    assert preflight({"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}, probe=False) is None
    refused = preflight({"backend": "openai", "base_url": "http://127.0.0.1:9/v1"})  # nothing listens on port 9
    assert refused.startswith("judge.base_url http://127.0.0.1:9/v1: cannot connect")
    assert "judge.colour" in preflight({"colour": "red"})
    assert "secret-value-123" not in (preflight({"backend": "nope"}) or "")


def test_config_is_strict_and_matches_config_yaml():
    import yaml

    root = Path(__file__).resolve().parents[1]
    section = yaml.safe_load((root / "config.yaml").read_text())["judge"]
    cfg = from_dict(JudgeConfig, section, "judge")
    assert cfg.backend == "gemini" and cfg.first_k == 8 and cfg.prices.input_per_m == 0.10
    with pytest.raises(ConfigError, match="judge.retry.attemps"):
        from_dict(JudgeConfig, {"retry": {"attemps": 2}}, "judge")
    with pytest.raises(ConfigError, match="first_k"):
        from_dict(JudgeConfig, {"first_k": 0}, "judge")
    schema = yaml.safe_load((root / "workflow/schemas/sections/judge.schema.yaml").read_text())
    assert set(schema["properties"]) == set(section) == set(JudgeConfig.__dataclass_fields__)


def test_rules_run_through_cli_and_input_errors(tmp_path, capsys):
    comps = {"a": ["16 - 3 - 4 = 9\n9 * 2 = 18. The answer is 18", "16 - 3 - 4 = 9\n9 * 2 = 19"], "b": ["", "61 eggs\nQuestion: x"]}
    inputs = write_inputs(tmp_path, comps, correct={"a": [True, False], "b": [False, False]})
    args = ["run", "--cfg", json.dumps({"backend": "rules", "first_k": 2}), "--model-name", "gla50",
            "--dataset", "gsm8k", "--eval", str(inputs["eval_path"]), "--samples", str(inputs["sample_paths"][0]),
            "--vote", str(inputs["vote_path"]), "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / "j.jsonl"), "--ledger", str(tmp_path / "j.ledger.json")]  # fmt: skip
    assert main(args) == 0
    rows = list(read_jsonl(tmp_path / "j.jsonl"))
    assert [r["error_category"] for r in rows] == ["No Error", "Calculation Error", "Flawed Logical Synthesis",
                                                   "Key-Value Binding Error"]  # fmt: skip
    assert all(r["backend"] == "rules" and r["raw"] is None for r in rows)
    ledger = read_json(tmp_path / "j.ledger.json")
    assert ledger["calls_this_run"] == 0 and ledger["dollars_total"] == 0 and ledger["verify_disagreements"]["total"] == 0
    assert not (tmp_path / "cache" / "judge.sqlite").exists()  # nothing paid, nothing cached

    # more samples asked than sampled: a clear error naming the file, no output written
    bad = [*args, "--out", str(tmp_path / "k.jsonl")]
    bad[2] = json.dumps({"backend": "rules", "first_k": 3})
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert "first_k=3" in err and "vote.problems.jsonl" in err and not (tmp_path / "k.jsonl").exists()
    bad[2] = json.dumps({"backend": "rules", "frist_k": 3})
    assert main(bad) == 2 and "judge.frist_k" in capsys.readouterr().err


def test_estimate(tmp_path):
    inputs = write_inputs(tmp_path, {f"p{i}": ["x"] * 8 for i in range(10)})
    est = estimate(from_dict(JudgeConfig, {}), [inputs["eval_path"]], n_models=13, completion_tokens=300)
    assert est["calls"] == 10 * 8 * 13 and est["tokens_out"] == est["calls"] * 120
    per_call_in = est["tokens_in"] / est["calls"]
    assert 300 + 800 < per_call_in < 300 + 2000  # the template is ~1,000 tokens
    expect = (est["tokens_in"] * 0.10 + est["tokens_out"] * 0.40) / 1e6
    assert est["dollars_online"] == pytest.approx(expect, abs=0.01)
    assert est["dollars_batch"] == pytest.approx(expect / 2, abs=0.01)
    # the CLI prints it, spends nothing, and needs no key
    out = subprocess.run([sys.executable, "-m", "recall2reason.judge", "estimate", "--eval", str(inputs["eval_path"]),
                          "--models", "13", "--json"], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["calls"] == 1040


def test_a_damaged_answer_cache_is_named(tmp_path):
    from recall2reason.common import InputFileError
    from recall2reason.judge.cache import CachedAnswer, JudgeCache

    cache = JudgeCache(tmp_path)
    for i in range(500):
        cache.put(f"k{i}", CachedAnswer("x" * 300, {"is_correct": True}, None, 1, 10, 10, False))
    cache.close()
    db = tmp_path / "judge.sqlite"
    db.write_bytes(db.read_bytes()[: db.stat().st_size * 3 // 5])  # a copy that stopped early
    with pytest.raises(InputFileError, match=rf"{db}: the judge's answer cache is damaged \(database disk image is malformed\)"):
        JudgeCache(tmp_path)
