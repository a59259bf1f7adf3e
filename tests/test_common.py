"""Atomic writes and strict typed configs."""

from dataclasses import dataclass, field

import pytest

from recall2reason.common import ConfigError, InputFileError, atomic_write, from_dict, jsonl_lines, read_json, read_jsonl, write_jsonl


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary left behind


def test_read_jsonl_skips_a_torn_last_line_of_a_resumable_log_only(tmp_path, caplog):
    p = tmp_path / "rows.jsonl"
    write_jsonl(p, [{"a": 1}, {"a": 2}])
    with open(p, "a") as f:
        f.write('{"a": 3')  # crash in the middle of an append
    assert [r["a"] for r in read_jsonl(p, resumable=True)] == [1, 2]
    assert f"{p}:3: skipping the torn last line" in caplog.text
    with pytest.raises(InputFileError, match=rf"{p}:3: not valid JSON .*the file ends in the middle of this line"):
        list(read_jsonl(p, "a row of the test"))  # any other file: truncated
    p.write_text('{"a": 1}\n{"a": 2}')  # a hand-made file's last line without newline is fine
    assert [r["a"] for r in read_jsonl(p)] == [1, 2]


@pytest.mark.parametrize(
    "content, problem",
    [
        (b'{"a": 1}\n{"a": 2,, }\n', "not valid JSON (Expecting property name enclosed in double quotes, column 9)"),
        (b'{"a": 1}\n{"a": "\x00\x00"}\n', "not valid JSON (Invalid control character at, column 8)"),
        (b'{"a": 1}\n{"a": "\xff"}\n', "not UTF-8 text (byte 7)"),
        (b'{"a": 1}\n[1, 2]\n', "a JSON list, not an object"),
    ],
)
def test_read_jsonl_names_file_line_and_expectation(tmp_path, content, problem):
    p = tmp_path / "rows.jsonl"
    p.write_bytes(content)
    with pytest.raises(InputFileError) as e:
        list(read_jsonl(p, "one test row per line"))
    assert str(e.value) == f"{p}:2: {problem}; expected one test row per line"


def test_jsonl_lines_number_the_lines_of_the_file(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text('{"a": 1}\n\n  \n{"a": 2}\n')
    assert list(jsonl_lines(p)) == [(1, {"a": 1}), (4, {"a": 2})]


def test_read_json_names_the_file(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("")
    with pytest.raises(InputFileError, match=f"{p}: the file is empty; expected a manifest"):
        read_json(p, "a manifest")
    p.write_text('{"a":\n 1,,}')
    with pytest.raises(InputFileError, match=rf"{p}:2: not valid JSON \(Expecting property name"):
        read_json(p, "a manifest")


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
