"""Tokenize -> mix -> shards: both Hub schemas from local files, mixing arithmetic, shard reader,
tokenizer-mismatch refusal, resume byte-identity, CLI errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from recall2reason.common import ConfigError, from_dict, read_json
from recall2reason.data import pack
from recall2reason.data.__main__ import main
from recall2reason.data.shards import ShardError, TokenizerMismatchError, TokenShards
from recall2reason.data.sources import DataConfig, document_text
from recall2reason.data.template import format_document, format_prompt
from recall2reason.data.tokenizer import load_tokenizer, train_tokenizer

FIX = Path(__file__).parent / "fixtures" / "data"
LLAMA = Path(__file__).resolve().parents[2] / "shared" / "tokenizer" / "llama2" / "tokenizer.model"
needs_llama = pytest.mark.skipif(not LLAMA.is_file(), reason="no ../shared Llama-2 tokenizer")


@pytest.fixture(scope="module")
def small_tok(tmp_path_factory):
    from recall2reason.data import synthetic

    texts = [document_text("synthetic_gsm8k", r) for r in synthetic.generate("gsm8k", 1500, 0)]
    texts += [document_text("synthetic_math", r) for r in synthetic.generate("math", 1500, 0)]
    return train_tokenizer(texts, tmp_path_factory.mktemp("tok") / "tokenizer.model", 400)


def _cfg(**sources):
    return from_dict(DataConfig, {"seq_len": 16, "epochs": 4, "seed": 3, "shard_tokens": 1000, "sources": sources}, "data")


def _stream(manifest: Path) -> np.ndarray:
    m = read_json(manifest)
    return np.concatenate([np.fromfile(manifest.parent / s["file"], dtype="<u2") for s in m["shards"]])


def test_template():
    assert format_document("What is 1+1?", "1+1=2.\n#### 2") == "Question: What is 1+1?\nAnswer: 1+1=2.\n#### 2"
    assert format_prompt("What is 1+1?") == "Question: What is 1+1?\nAnswer:"
    assert format_document("p", "s").startswith(format_prompt("p"))


def test_trained_tokenizer_is_llama_like(small_tok):
    tok = load_tokenizer(small_tok)
    assert (tok.vocab_size, tok.bos_id, tok.eos_id) == (400, 1, 2)
    text = "Question: Ava has 12 apples.\nAnswer: 12 + 30 = <<12+30=42>>42\n#### 42 é"
    assert tok.decode(tok.encode(text)) == text  # newlines, digits, unseen chars (byte fallback)
    assert [tok.sp.id_to_piece(i) for i in tok.encode("1234")][-4:] == ["1", "2", "3", "4"]  # digits split
    assert tok.encode_batch(["a b", "c"]) == [tok.encode("a b"), tok.encode("c")]


@needs_llama
@pytest.mark.parametrize("parquet", [False, True])
def test_both_hub_schemas_from_local_files(tmp_path, parquet):
    omi, mm = FIX / "openmathinstruct2.jsonl", FIX / "metamathqa.jsonl"
    if parquet:  # the Hub's parquet layout: a directory of .parquet files
        import pyarrow as pa
        import pyarrow.parquet as pq

        d = tmp_path / "omi"
        d.mkdir()
        rows = [json.loads(l) for l in omi.read_text().splitlines()]
        pq.write_table(pa.Table.from_pylist(rows[:5]), d / "train-00000.parquet")
        pq.write_table(pa.Table.from_pylist(rows[5:]), d / "train-00001.parquet")
        omi = d
    cfg = _cfg(omi2={"format": "openmathinstruct2", "path": str(omi)}, mmqa={"format": "metamathqa", "path": str(mm)})
    m = pack.tokenize_mixture(cfg, LLAMA, tmp_path / "out" / "manifest.json", tmp_path / "state", workers=1)
    tok = load_tokenizer(LLAMA)
    text = tok.decode(_stream(tmp_path / "out" / "manifest.json"))
    # Every record of both schemas appears as its own document (problem then solution).
    for f, (pf, sf) in ((FIX / "openmathinstruct2.jsonl", ("problem", "generated_solution")), (mm, ("query", "response"))):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            assert format_document(r[pf], r[sf]) in text
    assert "Question: Janet\u2019s ducks lay 16 eggs" in text and "The answer is: \\sqrt{5}" in text
    assert m["sources"]["omi2"]["documents"] == 8 and m["sources"]["mmqa"]["documents"] == 6
    assert m["tokenizer_sha256"] == tok.sha256 and m["vocab_size"] == 32000 and m["eos_id"] == 2
    assert not (tmp_path / "state" / "cache").exists()  # cache removed after success


def test_mixing_arithmetic_paper_scale():
    # Paper: 1:1 by tokens, 9.3 B per epoch, 37.1 B over 4 epochs. OpenMathInstruct-2 sets the epoch.
    plan = pack.plan_mixture({"omi2": 4_637_500_000, "mmqa": 105_000_000}, {"omi2": 1.0, "mmqa": 1.0}, 4)
    assert plan["tokens_per_epoch"] == 9_275_000_000 and plan["total_tokens"] == 37_100_000_000
    assert plan["sources"]["omi2"]["repeat"] == 1.0
    assert plan["sources"]["mmqa"]["repeat"] == pytest.approx(4_637_500_000 / 105_000_000)
    assert plan["sources"]["mmqa"]["tokens_per_epoch"] == 4_637_500_000
    # Unequal weights 3:1: b (largest relative to its weight) is read once, a gets 3x b's tokens (10 passes).
    plan = pack.plan_mixture({"a": 300, "b": 1000}, {"a": 3.0, "b": 1.0}, 2)
    assert plan["sources"]["a"]["tokens_per_epoch"] == 3000 and plan["sources"]["b"]["tokens_per_epoch"] == 1000
    assert plan["sources"]["a"]["repeat"] == 10.0 and plan["total_tokens"] == 8000
    assert "37.10 B in total" in pack.format_plan(pack.plan_mixture({"x": 4_637_500_000, "y": 1}, {"x": 1, "y": 1}, 4))


def test_mixture_shards_and_sequences(tmp_path, small_tok):
    cfg = _cfg(g={"format": "synthetic_gsm8k", "n_docs": 60}, m={"format": "synthetic_math", "n_docs": 25, "weight": 0.5})
    man = tmp_path / "train" / "manifest.json"
    m = pack.tokenize_mixture(cfg, small_tok, man, tmp_path / "state", workers=2)
    u = {s: v["unique_tokens"] for s, v in m["sources"].items()}
    # g is read once; m is upsampled to half of g's tokens (whole documents: overshoot < one document).
    assert m["tokens_per_source"]["g"] == u["g"] and m["sources"]["g"]["repeat"] == 1.0
    assert 0 <= m["tokens_per_source"]["m"] - u["g"] / 2 < 200
    assert m["tokens_per_epoch"] == sum(m["tokens_per_source"].values()) == sum(s["n_tokens"] for s in m["shards"])
    assert m["total_tokens"] == 4 * m["tokens_per_epoch"]
    assert m["sources"]["m"]["tokens_total"] == 4 * m["tokens_per_source"]["m"]
    stream = _stream(man)
    assert (stream == 2).sum() == m["documents_per_epoch"]  # one EOS per document
    assert stream[-1] == 2
    ts = TokenShards(man)
    assert ts.n_sequences == (len(stream) - 1) // 16 == m["n_sequences"] and ts.seq_len == 16
    assert len(ts.manifest["shards"]) > 2
    for i in [0, 1, 62, 63, ts.n_sequences - 1]:  # includes sequences spanning shard files
        s = ts.sequence(i)
        assert s.dtype == np.int64 and len(s) == 17
        assert np.array_equal(s, stream[i * 16 : i * 16 + 17])
    with pytest.raises(IndexError):
        ts.sequence(ts.n_sequences)
    import pickle

    ts2 = pickle.loads(pickle.dumps(ts))  # DataLoader workers get a copy that reopens its memmaps
    assert np.array_equal(ts2.sequence(5), ts.sequence(5))
    # Documents decode to the template and are shuffled across sources.
    text = load_tokenizer(small_tok).decode(stream[: 4000])
    assert text.startswith("Question: ") and "\nAnswer: " in text


def test_tokenizer_mismatch_is_refused(tmp_path, small_tok):
    cfg = _cfg(g={"format": "synthetic_gsm8k", "n_docs": 10})
    man = tmp_path / "manifest.json"
    pack.tokenize_mixture(cfg, small_tok, man, tmp_path / "s", workers=1)
    ts = TokenShards(man)
    ts.check_tokenizer(small_tok)  # same file: fine
    other = train_tokenizer(
        [document_text("synthetic_math", r) for r in __import__("recall2reason.data.synthetic", fromlist=["x"]).generate("math", 500, 1)],
        tmp_path / "other.model", 450,
    )
    with pytest.raises(TokenizerMismatchError, match="different|re-run the data stage"):
        ts.check_tokenizer(other)
    # A truncated shard is noticed at open time, one with changed bytes of the same size by verify().
    shard = tmp_path / ts.manifest["shards"][0]["file"]
    good = shard.read_bytes()
    shard.write_bytes(good[:-2])
    with pytest.raises(ShardError, match=rf"{shard}: {len(good) - 2} bytes, not the {len(good)} .* \(truncated\?\)"):
        TokenShards(man)
    shard.write_bytes(good[:100] + bytes(64) + good[164:])
    TokenShards(man).sequence(0)  # readable, and wrong
    with pytest.raises(ShardError, match=rf"{shard}: sha256 .* differs from .* recorded in {man}.*--forcerun tokenize"):
        TokenShards(man).verify()


def test_resume_is_byte_identical(tmp_path, small_tok, monkeypatch):
    monkeypatch.setattr(pack, "BATCH_DOCS", 8)
    monkeypatch.setattr(pack, "CHUNK_BATCHES", 2)  # 16-document cache chunks
    cfg = _cfg(g={"format": "synthetic_gsm8k", "n_docs": 70}, m={"format": "synthetic_math", "n_docs": 30})
    ref = pack.tokenize_mixture(cfg, small_tok, tmp_path / "ref" / "manifest.json", tmp_path / "ref_state", workers=1)
    out, state = tmp_path / "run" / "manifest.json", tmp_path / "run_state"
    with pytest.raises(KeyboardInterrupt):  # killed while encoding, after 2 chunks
        pack.tokenize_mixture(cfg, small_tok, out, state, workers=1, _stop_after_chunks=2)
    assert len(list(state.glob("cache/g-*/chunk_*.len.npy"))) == 2
    with pytest.raises(KeyboardInterrupt):  # killed while writing shards, after 3 shards
        pack.tokenize_mixture(cfg, small_tok, out, state, workers=1, _stop_after_shards=3)
    assert not out.exists() and len(list(out.parent.glob("shard_*.bin"))) == 3
    first = {p.name: p.stat().st_mtime_ns for p in out.parent.glob("shard_*.bin")}
    # A torn temp file from the kill must not matter either.
    (out.parent / ".shard_00003.bin.x.tmp").write_bytes(b"junk")
    got = pack.tokenize_mixture(cfg, small_tok, out, state, workers=2)
    assert got["shards"] == ref["shards"]  # same files, sizes and sha256
    for s in ref["shards"]:
        assert (out.parent / s["file"]).read_bytes() == (tmp_path / "ref" / s["file"]).read_bytes()
    assert {p: (out.parent / p).stat().st_mtime_ns for p in first} == first  # finished shards were kept, not rewritten
    # A rerun after a shard's bytes changed (same size) rewrites that shard only, as it was.
    damaged = out.parent / ref["shards"][1]["file"]
    damaged.write_bytes(bytes(damaged.stat().st_size))
    before = {p.name: p.stat().st_mtime_ns for p in out.parent.glob("shard_*.bin") if p != damaged}
    assert pack.tokenize_mixture(cfg, small_tok, out, state, workers=1)["shards"] == ref["shards"]
    assert out.read_bytes() == (tmp_path / "ref" / "manifest.json").read_bytes()  # so pretraining resumes
    assert damaged.read_bytes() == (tmp_path / "ref" / damaged.name).read_bytes()
    assert {p: (out.parent / p).stat().st_mtime_ns for p in before} == before
    # Changing the config invalidates the old shards instead of mixing them in.
    cfg2 = _cfg(g={"format": "synthetic_gsm8k", "n_docs": 40})
    got2 = pack.tokenize_mixture(cfg2, small_tok, out, state, workers=1)
    assert sorted(p.name for p in out.parent.glob("shard_*.bin")) == [s["file"] for s in got2["shards"]]
    assert got2["shards"][0]["sha256"] != ref["shards"][0]["sha256"]


def test_cli_errors_name_the_key(tmp_path, small_tok, capsys):
    rc = main(["tokenize", "--cfg", json.dumps({"sources": {"a": {"format": "gsm8k", "path": "x.jsonl", "wieght": 1}}}),
               "--tokenizer", str(small_tok), "--out", str(tmp_path / "m.json")])
    assert rc == 2 and "data.sources.a.wieght" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "solution": "s"}) + "\n")
    rc = main(["tokenize", "--cfg", json.dumps({"sources": {"a": {"format": "gsm8k", "path": str(bad)}}}),
               "--tokenizer", str(small_tok), "--out", str(tmp_path / "m.json"), "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "data.sources.a" in err and "'answer'" in err
    assert not (tmp_path / "m.json").exists()
    with pytest.raises(ConfigError, match="n_docs"):
        _cfg(g={"format": "synthetic_gsm8k"})


def test_cli_plan_prints_arithmetic(capsys):
    cfg = {"epochs": 4, "sources": {"omi2": {"format": "openmathinstruct2", "hub_id": "nvidia/OpenMathInstruct-2"},
                                    "mmqa": {"format": "metamathqa", "hub_id": "meta-math/MetaMathQA"}}}
    assert main(["plan", "--cfg", json.dumps(cfg), "--tokens", "omi2=4.6375e9", "mmqa=1.05e8"]) == 0
    out = capsys.readouterr().out
    assert "9.28 B tokens per epoch, 37.10 B in total" in out and "44.167" in out


def test_cli_plan_counts_with_tokenizer_like_tokenize(tmp_path, small_tok, capsys):
    cfg = {"epochs": 2, "seq_len": 16, "sources": {"g": {"format": "synthetic_gsm8k", "n_docs": 30},
                                                   "m": {"format": "synthetic_math", "n_docs": 30, "weight": 2.0}}}
    assert main(["plan", "--cfg", json.dumps(cfg), "--tokenizer", str(small_tok), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    m = pack.tokenize_mixture(from_dict(DataConfig, cfg, "data"), small_tok, tmp_path / "manifest.json", tmp_path / "s", workers=1)
    for s in ("g", "m"):
        assert f"{m['sources'][s]['unique_tokens']:,}" in out  # the dry run counts exactly what tokenize encodes
