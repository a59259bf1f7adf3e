"""Read token shards written by :mod:`recall2reason.data.pack` (nanoGPT-style sequences).

Opening checks each shard's size against the manifest; :meth:`TokenShards.verify` checks
every shard's sha256 too (pretraining does, once per job, before it reads any): a shard whose
bytes changed without changing its size (a bad disk, a partial copy over an old file) stops
the job with the shard named instead of training on it.

The shards of a manifest form one stream of uint16 tokens. Sequence ``i`` is
``stream[i*seq_len : i*seq_len + seq_len + 1]`` (inputs ``[:-1]``, targets ``[1:]``); the
tail that does not fill a sequence is dropped. Files are memmapped lazily on first use,
so a ``TokenShards`` is cheap to open and safe to pickle into DataLoader workers or to
open on several DDP ranks.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recall2reason.common import InputFileError, read_json, sha256_file, sha256_files

MANIFEST_FORMAT = "r2r-tokens-v1"
MANIFEST_EXPECT = f"an {MANIFEST_FORMAT} token manifest (data stage: data/train/manifest.json)"
RERUN = ("rerun the data stage (`snakemake --forcerun tokenize`): it rewrites the damaged shards byte for byte and "
         "keeps the intact ones, and pretraining resumes from its checkpoint")


class TokenizerMismatchError(RuntimeError):
    """Shards were made with a different tokenizer than the one being used."""


class ShardError(InputFileError):
    """A shard is missing, of the wrong size, or not the bytes its manifest entry hashes to."""


class TokenShards:
    def __init__(self, manifest_path: str | os.PathLike):
        self.manifest_path = Path(manifest_path)
        if not self.manifest_path.is_file():
            raise FileNotFoundError(f"token manifest not found: {self.manifest_path}")
        m = read_json(self.manifest_path, MANIFEST_EXPECT)
        if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT or m.get("dtype") != "uint16":
            raise InputFileError(f"{self.manifest_path}: not an {MANIFEST_FORMAT} uint16 manifest; expected {MANIFEST_EXPECT}")
        shards = m.get("shards")
        if not shards or not all(isinstance(e, dict) and {"file", "n_tokens", "sha256"} <= e.keys() for e in shards):
            raise InputFileError(f"{self.manifest_path}: 'shards' must list {{file, n_tokens, sha256}} per shard; {RERUN}")
        self.manifest = m
        self.seq_len = int(m["seq_len"])
        self.tokenizer_sha256 = m["tokenizer_sha256"]
        self.files = [self.manifest_path.parent / e["file"] for e in shards]
        self.sha256 = [e["sha256"] for e in shards]
        sizes = np.array([int(e["n_tokens"]) for e in shards], dtype=np.int64)
        for f, n in zip(self.files, sizes):
            if not f.is_file():
                raise ShardError(f"{f}: missing, but {self.manifest_path} lists it; {RERUN}")
            if f.stat().st_size != 2 * n:
                raise ShardError(f"{f}: {f.stat().st_size} bytes, not the {2 * n} ({n} tokens) {self.manifest_path} records "
                                 f"(truncated?); {RERUN}")
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])  # stream offset of each shard
        self.n_tokens = int(self.offsets[-1])
        self.n_sequences = max(0, (self.n_tokens - 1) // self.seq_len)
        self._maps: list[np.memmap] | None = None

    def verify(self, threads: int = 8) -> None:
        """Check every shard's sha256 against the manifest (~0.9 GB/s per thread on a 2-core CI machine)."""
        for f, want, got in zip(self.files, self.sha256, sha256_files(self.files, threads)):
            if got != want:
                raise ShardError(f"{f}: sha256 {got[:16]}... differs from {want[:16]}... recorded in {self.manifest_path}: "
                                 f"the file changed after the data stage wrote it (a bad disk or a partial copy?); {RERUN}")

    def __len__(self) -> int:
        return self.n_sequences

    def __getstate__(self):  # memmaps are reopened in the receiving process
        d = self.__dict__.copy()
        d["_maps"] = None
        return d

    def _mm(self, k: int) -> np.memmap:
        if self._maps is None:
            self._maps = [None] * len(self.files)  # type: ignore[list-item]
        if self._maps[k] is None:
            self._maps[k] = np.memmap(self.files[k], dtype=np.uint16, mode="r")
        return self._maps[k]

    def tokens(self, lo: int, hi: int) -> np.ndarray:
        """Stream tokens [lo, hi) as int64 (may span shard files)."""
        if not 0 <= lo <= hi <= self.n_tokens:
            raise IndexError(f"token range [{lo}, {hi}) outside 0..{self.n_tokens}")
        out = np.empty(hi - lo, np.int64)
        k = int(np.searchsorted(self.offsets, lo, side="right")) - 1
        pos = lo
        while pos < hi:
            a = pos - int(self.offsets[k])
            b = min(int(self.offsets[k + 1]), hi) - int(self.offsets[k])
            out[pos - lo : pos - lo + b - a] = self._mm(k)[a:b]
            pos += b - a
            k += 1
        return out

    def sequence(self, i: int) -> np.ndarray:
        if not 0 <= i < self.n_sequences:
            raise IndexError(f"sequence {i} outside 0..{self.n_sequences - 1}")
        lo = i * self.seq_len
        return self.tokens(lo, lo + self.seq_len + 1)

    def check_tokenizer(self, tokenizer_model_path: str | os.PathLike) -> None:
        sha = sha256_file(tokenizer_model_path)
        if sha != self.tokenizer_sha256:
            raise TokenizerMismatchError(
                f"{self.manifest_path} was made with tokenizer sha256 {self.tokenizer_sha256[:16]}..., "
                f"but {tokenizer_model_path} has sha256 {sha[:16]}...; re-run the data stage with this tokenizer"
            )
