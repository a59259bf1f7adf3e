"""Atomic writes and strict typed configs."""

from dataclasses import dataclass, field

import pytest

from recall2reason.common import ConfigError, atomic_write, from_dict, read_jsonl, write_jsonl


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary left behind


def test_read_jsonl_skips_a_torn_last_line(tmp_path):
    p = tmp_path / "rows.jsonl"
    write_jsonl(p, [{"a": 1}, {"a": 2}])
    with open(p, "a") as f:
        f.write('{"a": 3')  # crash in the middle of an append
    assert [r["a"] for r in read_jsonl(p)] == [1, 2]


@dataclass
class Inner:
    size: int = 4
    name: str | None = None


@dataclass
class Outer:
    lr: float
    betas: tuple[float, ...] = (0.9, 0.95)
    inner: Inner = field(default_factory=Inner)


def test_from_dict_builds_nested_dataclasses():
    cfg = from_dict(Outer, {"lr": 1, "betas": [0.8, 0.9], "inner": {"size": 8}})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.betas == (0.8, 0.9) and cfg.inner == Inner(8, None)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"lr": 1, "inner": {"sise": 8}}, "unknown config key(s) train.inner.sise"),
        ({"lr": "fast"}, "train.lr: expected a number"),
        ({}, "missing required config key train.lr"),
        ({"lr": 1, "inner": {"size": 2.5}}, "train.inner.size: expected an integer"),
    ],
)
def test_from_dict_names_the_bad_key(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_dict(Outer, data, "train")
