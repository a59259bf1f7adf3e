"""SentencePiece tokenizer: load, fetch (Hub / path) or train (demo), with a checksum.

The tokenizer file's sha256 is written into the token manifest; later stages compare it
with the tokenizer they load and refuse shards made with a different one.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from recall2reason.common import ConfigError, InputFileError, atomic_write, sha256_file

log = logging.getLogger("recall2reason.data")


@dataclass
class TokenizerConfig:
    source: Literal["hub", "path", "train"] = "hub"
    hub_id: str | None = "meta-llama/Llama-2-7b-hf"
    path: str | None = None
    vocab_size: int = 32000  # only for source: train


class Tokenizer:
    """Thin wrapper over ``sentencepiece.SentencePieceProcessor``."""

    def __init__(self, path: str | os.PathLike):
        import sentencepiece as spm

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer model not found: {path}")
        self.path = path
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(path))
        except RuntimeError as e:  # sentencepiece's parse errors rarely name the file
            raise InputFileError(f"{path}: not a readable SentencePiece model ({e}); rerun the tokenizer rule") from None
        self.sha256 = sha256_file(path)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    @property
    def bos_id(self) -> int:
        return self.sp.bos_id()

    @property
    def eos_id(self) -> int:
        return self.sp.eos_id()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str], num_threads: int = 1) -> list[list[int]]:
        # One thread by default: the packer parallelises over processes instead.
        return self.sp.encode(texts, num_threads=num_threads)

    def decode(self, ids) -> str:
        return self.sp.decode([int(i) for i in ids])


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    return Tokenizer(path)


def fetch_tokenizer(cfg: TokenizerConfig, out: str | os.PathLike, corpus: Iterable[str] | None = None) -> Path:
    """Put the configured tokenizer at ``out`` (copy from a path, download, or train)."""
    out = Path(out)
    if cfg.source == "path":
        if not cfg.path:
            raise ConfigError("tokenizer.path must be set when tokenizer.source is 'path'")
        src = Path(cfg.path)
        if not src.is_file():
            raise FileNotFoundError(f"tokenizer.path: no such file {src}")
        with atomic_write(out, "wb") as f, open(src, "rb") as g:
            shutil.copyfileobj(g, f)
    elif cfg.source == "hub":
        if not cfg.hub_id:
            raise ConfigError("tokenizer.hub_id must be set when tokenizer.source is 'hub'")
        from huggingface_hub import hf_hub_download  # network; Llama-2 is gated (HF_TOKEN)

        src = hf_hub_download(repo_id=cfg.hub_id, filename="tokenizer.model")
        with atomic_write(out, "wb") as f, open(src, "rb") as g:
            shutil.copyfileobj(g, f)
    elif cfg.source == "train":
        if corpus is None:
            raise ConfigError("tokenizer.source 'train' needs the data sources (--data-cfg)")
        train_tokenizer(corpus, out, cfg.vocab_size)
    else:  # from_dict already checks the Literal; kept for callers building the dataclass by hand
        raise ConfigError(f"tokenizer.source: unknown {cfg.source!r}")
    tok = load_tokenizer(out)
    if tok.vocab_size > 65535:
        raise ConfigError(f"tokenizer {out} has {tok.vocab_size} pieces; shards store uint16 ids")
    log.info("tokenizer %s: %d pieces, bos %d, eos %d, sha256 %s", out, tok.vocab_size, tok.bos_id, tok.eos_id, tok.sha256[:12])
    return out


def train_tokenizer(texts: Iterable[str], out: str | os.PathLike, vocab_size: int, max_docs: int = 200_000) -> Path:
    """Train a small Llama-like SentencePiece BPE model (byte fallback, split digits, BOS 1, EOS 2)."""
    import itertools
    import tempfile

    import sentencepiece as spm

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "sp")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(itertools.islice(texts, max_docs)),
            model_prefix=prefix,
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=1.0,
            byte_fallback=True,
            split_digits=True,
            normalization_rule_name="identity",  # keep newlines and spacing as written
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            max_sentence_length=1 << 16,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            num_threads=1,
            minloglevel=2,
        )
        with atomic_write(out, "wb") as f, open(prefix + ".model", "rb") as g:
            shutil.copyfileobj(g, f)
    return out
