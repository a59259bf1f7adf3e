"""The export stage: every architecture class round-trips through transformers with HybridLM's
logits, greedy generate() equals the sampler's greedy output, the tokenizer gives SentencePiece's
ids, and the exported files need nothing of this package."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fakes.mamba_ssm
from conftest import REPO, snakemake
from recall2reason.data import synthetic
from recall2reason.data.template import format_prompt
from recall2reason.data.tokenizer import load_tokenizer, train_tokenizer
from recall2reason.export import inline as inline_mod
from recall2reason.export.__main__ import main
from recall2reason.export.config import ExportConfig
from recall2reason.export.run import ExportError, export_model, modeling_source
from recall2reason.models import ModelConfig, build_model, load_model, save_model
from recall2reason.sample.engine import Engine, Request

transformers = pytest.importorskip("transformers")
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

# every architecture class, and the mixer options that change the code path
ARCHS = {
    "transformer": dict(layers=["attention"] * 2),  # exported as LlamaForCausalLM
    "attention": dict(layers=["attention"] * 2, llama=False),  # the same, as our remote code
    "mamba": dict(layers=["mamba"] * 2),
    "gla": dict(layers=["gla"] * 2),
    "gdn": dict(layers=["gdn"] * 2),
    "hybrid": dict(layers=["mamba", "attention", "gla", "gdn"]),
    "options_a": dict(layers=["gla", "attention", "gdn", "mamba"], n_kv_heads=2, tie_embeddings=True,
                      gla={"use_output_gate": True}, gdn={"use_gate": True}),
    "options_b": dict(layers=["gla", "gdn", "mamba", "attention"],
                      gla={"use_output_gate": True, "fuse_norm": False, "gate_fn": "sigmoid", "feature_map": "relu",
                           "clamp_min": -0.5, "use_short_conv": False},
                      gdn={"use_short_conv": False, "expand_v": 2.0}, mamba={"d_inner": 48, "conv_bias": False, "bias": True}),
    # the ablation knobs (issue 46): x at d_xb shared across d_inner, Δ clamped
    "mamba_knobs": dict(layers=["mamba", "attention"], mamba={"d_inner": 64, "d_xb": 16, "dt_limit": [0.001, 0.5]}),
}


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory):
    texts = [r["question"] + "\n" + r["answer"] for r in synthetic.generate("gsm8k", 300, 1)]
    return train_tokenizer(texts, tmp_path_factory.mktemp("tok") / "tokenizer.model", 400)


def tiny_model(layers, vocab, seed=0, **kw):
    torch.manual_seed(seed)
    d = dict(d_model=32, n_layers=len(layers), n_heads=4, n_kv_heads=4, mlp_ratio=4, vocab_size=vocab,
             max_seq_len=128, layers=list(layers), backend="reference", init_std=0.2, mamba={"dt_rank": None})
    d.update({k: ({**d[k], **v} if isinstance(v, dict) and k in d else v) for k, v in kw.items()})
    return build_model(ModelConfig.from_dict(d)).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tok_path):
    """arch -> (checkpoint dir, exported dir); each exported once for the module."""
    root = tmp_path_factory.mktemp("export")
    vocab = load_tokenizer(tok_path).vocab_size
    sha = load_tokenizer(tok_path).sha256
    cache = {}

    def get(arch):
        if arch not in cache:
            spec = dict(ARCHS[arch])
            llama = spec.pop("llama", True)
            ckpt, out = root / f"ckpt_{arch}", root / arch
            save_model(tiny_model(vocab=vocab, **spec), ckpt, extra={"name": arch, "tokenizer_sha256": sha})
            export_model(ExportConfig(transformer_as_llama=llama), model_dir=ckpt, tokenizer=tok_path,
                         prompt_prefix="eos", out=out)
            cache[arch] = ckpt, out
        return cache[arch]

    return get


def load_hf(out):
    return AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True).float().eval()


@pytest.mark.parametrize("arch", sorted(ARCHS))
@torch.no_grad()
def test_logits_equal_hybridlm(exported, arch):
    ckpt, out = exported(arch)
    ours, _ = load_model(ckpt)
    hf = load_hf(out)
    assert type(hf).__name__ == ("LlamaForCausalLM" if arch == "transformer" else "Recall2ReasonForCausalLM")
    ids = torch.randint(0, ours.cfg.vocab_size, (2, 70), generator=torch.Generator().manual_seed(1))  # > one GLA / GDN chunk
    want, got = ours.eval()(ids), hf(ids).logits
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()
    if arch != "transformer":  # (Llama keeps its norms and RoPE in fp32 whatever the dtype)
        # in fp64 they differ by fp64 rounding only (RoPE is fp32 on both sides): the same function
        want64, got64 = ours.double()(ids), hf.double()(ids).logits
        assert (got64 - want64).abs().max() <= 1e-12 * want64.abs().max()


def new_tokens(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


@pytest.mark.parametrize("arch", ["transformer", "mamba", "gla", "gdn", "hybrid", "options_a", "options_b", "mamba_knobs"])
@torch.no_grad()
def test_greedy_generate_equals_the_samplers(exported, arch):
    """A left-padded batch through generate(), each row against the project's engine at temperature 0."""
    ckpt, out = exported(arch)
    ours, _ = load_model(ckpt)
    hf, tok = load_hf(out), AutoTokenizer.from_pretrained(out, trust_remote_code=True)
    texts = [format_prompt(q) for q in ("Tom has 3 apples.", "A?", "Sam bought 12 pens and gave away 5 of them to 3 friends.")]
    batch = tok(texts, return_tensors="pt", padding=True)
    assert batch.attention_mask.sum(1).tolist() != [batch.input_ids.shape[1]] * 3  # rows of different lengths
    lengths = []
    hook = hf.get_input_embeddings().register_forward_hook(lambda m, args, y: lengths.append(args[0].shape[1]))
    n = 16
    gen = hf.generate(**batch, max_new_tokens=n, do_sample=False)
    hook.remove()
    assert lengths[0] == batch.input_ids.shape[1] and set(lengths[1:]) == {1}  # decoded through the state
    engine = Engine(ours, batch_size=2, max_len=batch.input_ids.shape[1] + n, max_new_tokens=n, eos_id=tok.eos_token_id,
                    temperature=0.0, top_p=1.0)
    sampled = {c.key: c.tokens for c in engine.generate([Request(i, tok(t)["input_ids"], 0) for i, t in enumerate(texts)])}
    for i in range(len(texts)):
        assert new_tokens(gen[i, batch.input_ids.shape[1]:].tolist(), tok.eos_token_id) == sampled[i], (arch, i)


@torch.no_grad()
def test_decoding_hands_mamba_ssm_a_dt_bias_under_dt_limit(exported, monkeypatch):
    """Where mamba-ssm's decode kernel runs (here its argument contract, on CPU), a clamped Δ still
    decodes as the PyTorch twin does: the exported Mamba never passes it dt_bias=None."""
    _, out = exported("mamba_knobs")
    hf = load_hf(out)
    ids = torch.randint(3, 400, (2, 12), generator=torch.Generator().manual_seed(3))
    want = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False)
    upstream = {"selective_state_update": fakes.mamba_ssm.selective_state_update}
    monkeypatch.setattr(sys.modules[type(hf).__module__], "kernel", lambda module, name, x: upstream.get(name))
    assert torch.equal(hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False), want)


def test_exported_mamba_checks_its_widths_as_the_package_does(exported, tmp_path):
    """The export builds Mamba's widths with the package's own (inlined) functions: a config.json
    edited to a d_xb that cannot share x across d_inner is refused, not silently truncated."""
    import shutil

    _, out = exported("mamba_knobs")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["mamba"]["d_xb"] = 12  # d_inner 64 is no multiple of it
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="must divide d_inner 64"):
        load_hf(bad)


@pytest.mark.parametrize("arch", ["hybrid", "options_b", "mamba_knobs"])  # with and without short convs
@torch.no_grad()
def test_left_padding_and_continuing_from_the_state(exported, arch):
    """Padded rows equal the same rows alone; a forward continued from the decode state (several
    tokens at once) equals the full forward. (fp64, with what the package keeps in fp32: RoPE, the
    per-head norms, the recurrent memories; other shapes round differently, by fp32 ulps.)"""
    _, out = exported(arch)
    hf = load_hf(out).double()
    g = torch.Generator().manual_seed(2)
    rows = [torch.randint(3, 400, (n,), generator=g) for n in (30, 9)]
    ids = torch.zeros(2, 30, dtype=torch.long)
    mask = torch.zeros(2, 30, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, 30 - len(r):], mask[i, 30 - len(r):] = r, 1
    padded = hf(ids, attention_mask=mask).logits
    for i, r in enumerate(rows):
        alone = hf(r[None]).logits[0]
        assert torch.allclose(padded[i, 30 - len(r):], alone, rtol=0, atol=1e-5)
    first = hf(ids[:, :22], attention_mask=mask[:, :22], use_cache=True)
    rest = hf(ids[:, 22:], attention_mask=mask, decode_state=first.decode_state, use_cache=True)
    assert torch.allclose(rest.logits, padded[:, 22:], rtol=0, atol=1e-5)
    assert rest.decode_state.seen == 30
    with pytest.raises(ValueError, match="one column per token so far"):
        hf(ids[:, 22:], attention_mask=mask[:, 22:], decode_state=first.decode_state)
    with pytest.raises(ValueError, match="left padding"):  # right padding cannot be decoded from
        hf(ids, attention_mask=mask.flip(1), use_cache=True)


def test_tokenizer_gives_sentencepiece_ids_on_gsm8k_and_math500(shared_dir, tmp_path):
    """The Llama-2 tokenizer of the paper: every GSM8K test and MATH500 question and solution."""
    from recall2reason.export.run import TOKENIZATION, tokenizer_config

    import shutil

    tok = load_tokenizer(shared_dir / "tokenizer/llama2/tokenizer.model")
    shutil.copyfile(tok.path, tmp_path / "tokenizer.model")
    shutil.copyfile(REPO / "src/recall2reason/export/hf_tokenizer.py", tmp_path / TOKENIZATION)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(tok, "eos", 2048)))
    hf = AutoTokenizer.from_pretrained(tmp_path, trust_remote_code=True)
    assert len(hf) == tok.vocab_size == 32000 and (hf.eos_token_id, hf.bos_token_id, hf.pad_token_id) == (2, 1, 0)
    texts = []
    for rel, q, a in (("gsm8k/test.jsonl", "question", "answer"), ("math500/test.jsonl", "problem", "solution")):
        rows = [json.loads(line) for line in (shared_dir / "data" / rel).read_text().splitlines()]
        texts += [format_prompt(r[q]) for r in rows] + [r[a] for r in rows]
    assert len(texts) == 2 * (1319 + 500)
    for text in texts:
        ids = tok.encode(text)
        assert hf(text)["input_ids"] == [tok.eos_id] + ids, text
        assert hf(text, add_special_tokens=False)["input_ids"] == ids
        assert hf.decode(ids) == tok.decode(ids), text
    assert hf.decode([tok.eos_id] + ids + [tok.eos_id], skip_special_tokens=True) == tok.decode(ids)
    assert hf.decode(ids + [tok.eos_id]) == tok.decode(ids) + "</s>"  # where generation stops (lm-eval)


def test_prompt_prefix_none_and_bos(tok_path, tmp_path):
    from recall2reason.export.run import tokenizer_config

    tok = load_tokenizer(tok_path)
    assert tokenizer_config(tok, "none", 64)["prefix_piece"] is None
    assert tokenizer_config(tok, "bos", 64)["prefix_piece"] == tok.sp.id_to_piece(tok.bos_id)


def imported_packages(source: str) -> set[str]:
    """Top-level packages of every import statement, at any depth (kernel packages load by name)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_exported_files_import_only_torch_and_transformers(exported):
    _, out = exported("hybrid")
    std = {"__future__", "functools", "importlib", "math", "dataclasses", "types", "os", "shutil"}
    assert imported_packages((out / "modeling_recall2reason.py").read_text()) - std == {"torch", "transformers"}
    assert imported_packages((out / "tokenization_recall2reason.py").read_text()) - std == {"sentencepiece", "transformers"}


def test_exported_directory_runs_without_the_package(exported, tmp_path):
    """In a fresh interpreter where `import recall2reason` fails: load, forward, generate."""
    ckpt, out = exported("hybrid")
    ids = [[5, 17, 42, 9, 300, 12, 7]]
    code = f"""
import sys, json, torch
sys.modules["recall2reason"] = None  # any import of the package now raises
from transformers import AutoModelForCausalLM, AutoTokenizer
m = AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True).float().eval()
t = AutoTokenizer.from_pretrained({str(out)!r}, trust_remote_code=True)
with torch.no_grad():
    logits = m(torch.tensor({ids})).logits
    gen = m.generate(**t(["Question: 1 + 1?"], return_tensors="pt"), max_new_tokens=4, do_sample=False)
print(json.dumps({{"logits": logits[0].tolist(), "n": gen.shape[1]}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    ours, _ = load_model(ckpt)
    with torch.no_grad():
        want = ours.eval()(torch.tensor(ids))[0]
    assert torch.allclose(torch.tensor(got["logits"]), want, rtol=0, atol=1e-5)


def test_modeling_file_holds_the_package_code():
    """What the template imports from the package stands verbatim in the exported file, so the
    exported model computes with the package's code of the day."""
    from recall2reason.export import hf_modeling

    text = modeling_source()
    block = [n for n in ast.parse(inspect.getsource(hf_modeling)).body
             if isinstance(n, ast.ImportFrom) and n.module.startswith("recall2reason.")]
    assert len(block) >= 8
    for node in block:
        for alias in node.names:
            obj = getattr(hf_modeling, alias.name)
            if callable(obj):
                assert inspect.getsource(obj) in text, alias.name


def test_every_registered_mixer_has_an_exported_class():
    from recall2reason.export.hf_modeling import MIXERS as EXPORTED
    from recall2reason.models.layers import MIXERS, get_mixer

    get_mixer("attention")  # imports every mixer module
    assert set(EXPORTED) == set(MIXERS)
    assert {name for spec in ARCHS.values() for name in spec["layers"]} == set(MIXERS)


def test_inline_names_what_it_cannot_resolve():
    with pytest.raises(ImportError, match="defines no"):
        inline_mod.inline("# <inline>\nfrom recall2reason.models.ops.gla import no_such\n# </inline>\n", "t.py")
    with pytest.raises(ValueError, match="may hold only"):
        inline_mod.inline("# <inline>\nimport os\n# </inline>\n", "t.py")
    with pytest.raises(ValueError, match=r"neither defines nor imports: \['undefined_helper'\]"):
        inline_mod.check_self_contained("import torch\ndef f(x):\n    return undefined_helper(torch.ones(x))\n", "t.py")
    with pytest.raises(ValueError, match="still imports the package"):
        inline_mod.check_self_contained("def f():\n    from recall2reason.models import HybridLM\n", "t.py")


def test_cli_exports_and_replaces_a_directory(exported, tok_path, tmp_path):
    ckpt, _ = exported("gdn")
    out = tmp_path / "gdn"
    args = ["--cfg", "{}", "--model-dir", str(ckpt), "--tokenizer", str(tok_path), "--out", str(out)]
    assert main(args) == 0
    (out / "stale.txt").write_text("from an earlier export")
    assert main(args) == 0
    assert not (out / "stale.txt").exists() and not list(tmp_path.glob(".gdn.*"))
    card = (out / "README.md").read_text()
    assert "Recall2ReasonForCausalLM" in card and "differ from the training checkpoint" in card


def test_bad_inputs_are_named(exported, tok_path, tmp_path, capsys):
    ckpt, _ = exported("gdn")
    other = train_tokenizer([f"{i} apples and {i + 1} pears" for i in range(200)], tmp_path / "other.model", 300)
    with pytest.raises(ExportError, match=r"config.json: trained with tokenizer sha256"):
        export_model(ExportConfig(), model_dir=ckpt, tokenizer=other, prompt_prefix="eos", out=tmp_path / "x")
    with pytest.raises(SystemExit):
        main(["--cfg", '{"transformer_as_lama": true}', "--model-dir", str(ckpt), "--tokenizer", str(tok_path),
              "--out", str(tmp_path / "x")])
    assert "export.transformer_as_lama" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_config_matches_config_yaml():
    import yaml

    section = yaml.safe_load((REPO / "config.yaml").read_text())["export"]
    schema = yaml.safe_load((REPO / "workflow/schemas/sections/export.schema.yaml").read_text())
    assert set(section) == set(schema["properties"]) == set(ExportConfig.__dataclass_fields__)
    for key, spec in schema["properties"].items():
        assert spec["default"] == getattr(ExportConfig(), key) == getattr(ExportConfig.from_dict(section), key), key


def test_export_is_an_optional_target():
    from test_workflow import job_counts

    assert job_counts(snakemake("-n", "results/export/gdn50/").stdout) == {
        "tokenizer": 1, "tokenize": 1, "pretrain": 1, "export_model": 1}
    assert job_counts(snakemake("-n", "export").stdout)["export_model"] == 13
    assert "export_model" not in job_counts(snakemake("-n", "all").stdout)
