"""Tokenize the training mixture into fixed shards of uint16 tokens plus a manifest.

Two resumable phases, both keeping their in-progress state under ``state_dir``:

1. **encode** each source once (read -> format -> SentencePiece -> ``+EOS``), in parallel
   worker processes fed with bounded batches, into per-source cache chunks
   (``src_<name>/chunk_00000.bin``, ``chunk_00001.bin``, ...: tokens + ``.len.npy`` document lengths). A restart
   skips the completed chunks.
2. **mix** by tokens (see :func:`plan_mixture`), shuffle the epoch's documents with the
   seed, and stream them back to back into ``shard_00000.bin``, ``shard_00001.bin``, ... files of ``shard_tokens``
   tokens each. Shard k's content is a pure function of the plan, so a restart re-derives
   the order, skips the shards already written (if their sha256 still matches) and yields
   byte-identical files. The
   manifest is written last; it is the stage's declared output.

Mixing rule (explicit because OpenMathInstruct-2 is ~35x larger than MetaMathQA):
the epoch is sized by the source that is largest relative to its weight. With unique token
counts ``T_s`` and weights ``w_s``, ``scale = max_s T_s / w_s`` and source s contributes
``w_s * scale`` tokens per epoch: the dominant source is read exactly once, every other
source is upsampled -- ``floor(repeat)`` full passes plus a seeded random subset of
whole documents for the fractional pass. The shards hold one epoch; ``epochs`` (from the
config, 4 in the paper) tells the trainer how many times to go over it.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from recall2reason.common import ConfigError, InputFileError, atomic_write, read_json, sha256_file, write_json
from recall2reason.data.shards import MANIFEST_FORMAT
from recall2reason.data.sources import DataConfig, SourceConfig, document_text, iter_records, parse_record, source_fingerprint
from recall2reason.data.tokenizer import load_tokenizer

log = logging.getLogger("recall2reason.data")

BATCH_DOCS = 256          # documents per worker task
CHUNK_BATCHES = 256       # batches per cache chunk (65,536 documents)


# ------------------------------------------------------------------------------ encoding

_W: dict[str, Any] = {}


def _init_worker(tok_path: str, fmt: str, where: str) -> None:
    import sentencepiece as spm

    _W.update(sp=spm.SentencePieceProcessor(model_file=tok_path), fmt=fmt, where=where)
    _W["eos"] = _W["sp"].eos_id()


def _encode_batch(recs: list) -> tuple[np.ndarray, np.ndarray]:
    """Format and encode a batch of records -> (uint16 tokens of ``doc EOS`` back to back, lengths)."""
    texts = [document_text(_W["fmt"], parse_record(r), _W["where"]) for r in recs]
    ids = _W["sp"].encode(texts, num_threads=1)  # parallelism comes from the worker processes
    eos = _W["eos"]
    lens = np.fromiter((len(x) + 1 for x in ids), dtype=np.int32, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(x + [eos] for x in ids), dtype=np.uint16, count=int(lens.sum()))
    return flat, lens


def _batches(it: Iterable, n: int) -> Iterator[list]:
    it = iter(it)
    while batch := list(itertools.islice(it, n)):
        yield batch


def _bounded_map(fn, batches: Iterator[list], workers: int, init_args: tuple, init=_init_worker) -> Iterator[tuple]:
    """Ordered parallel map that reads at most ``4 * workers`` batches ahead (bounded memory).

    ``init(*init_args)`` sets up each worker (or this process when ``workers <= 1``); it
    must not fail in a worker (Pool would respawn it forever), so callers validate first.
    """
    if workers <= 1:
        init(*init_args)
        for b in batches:
            yield fn(b), len(b)
        return
    import multiprocessing as mp

    with mp.get_context("fork").Pool(workers, initializer=init, initargs=init_args) as pool:
        pending: collections.deque = collections.deque()
        for b in batches:
            pending.append((pool.apply_async(fn, (b,)), len(b)))
            if len(pending) >= 4 * workers:
                r, n = pending.popleft()
                yield r.get(), n
        while pending:
            r, n = pending.popleft()
            yield r.get(), n


def encode_source(
    name: str, src: SourceConfig, seed: int, tok_path: Path, cache: Path, workers: int, progress=None, _stop_after_chunks: int | None = None
) -> dict:
    """Encode one source into ``cache`` (resumable by chunk); returns {"docs", "tokens", "chunks"}."""
    done_file = cache / "done.json"
    if done_file.exists():
        return read_json(done_file)
    cache.mkdir(parents=True, exist_ok=True)
    chunk_docs = BATCH_DOCS * CHUNK_BATCHES
    k = 0
    while (cache / f"chunk_{k:05d}.len.npy").exists():
        k += 1
    if k:
        log.info("source %s: resuming after %d complete chunks (%d documents)", name, k, k * chunk_docs)
    records = iter_records(name, src, seed, raw=True, start=k * chunk_docs)
    where = f"data.sources.{name}"
    toks, lens, n_in_chunk, new_chunks = [], [], 0, 0

    def flush():
        nonlocal k, toks, lens, n_in_chunk, new_chunks
        t, l_ = np.concatenate(toks), np.concatenate(lens)
        with atomic_write(cache / f"chunk_{k:05d}.bin", "wb") as f:
            f.write(t.tobytes())
        with atomic_write(cache / f"chunk_{k:05d}.len.npy", "wb") as f:  # written last: marks the chunk complete
            np.save(f, l_)
        k, toks, lens, n_in_chunk, new_chunks = k + 1, [], [], 0, new_chunks + 1
        if _stop_after_chunks is not None and new_chunks >= _stop_after_chunks:
            raise KeyboardInterrupt(f"test hook: stopped after {new_chunks} chunks")

    for (t, l_), n in _bounded_map(_encode_batch, _batches(records, BATCH_DOCS), workers, (str(tok_path), src.format, where)):
        toks.append(t)
        lens.append(l_)
        n_in_chunk += n
        if progress is not None:
            progress.update(len(t))
        if n_in_chunk >= chunk_docs:
            flush()
    if toks:
        flush()
    lens_all = _load_lengths(cache)
    info = {"docs": int(len(lens_all)), "tokens": int(lens_all.sum()), "chunks": k}
    if info["docs"] == 0:
        raise ConfigError(f"{where}: no documents read (path {src.path!r}, hub_id {src.hub_id!r})")
    write_json(done_file, info)
    return info


def _load_lengths(cache: Path) -> np.ndarray:
    files = sorted(cache.glob("chunk_*.len.npy"))
    return np.concatenate([np.load(f) for f in files]) if files else np.zeros(0, np.int32)


class _SourceCache:
    """Random access to the encoded documents of one source (memmapped chunks)."""

    def __init__(self, cache: Path):
        n = len(list(cache.glob("chunk_*.len.npy")))
        self.chunks = [np.memmap(cache / f"chunk_{c:05d}.bin", dtype=np.uint16, mode="r") for c in range(n)]
        lens = [np.load(cache / f"chunk_{c:05d}.len.npy") for c in range(n)]
        self.lengths = np.concatenate(lens).astype(np.int64)
        self.chunk_of = np.concatenate([np.full(len(x), c, np.int32) for c, x in enumerate(lens)])
        self.start = np.concatenate([np.cumsum(x, dtype=np.int64) - x for x in lens])

    def doc(self, i: int) -> np.ndarray:
        s = self.start[i]
        return self.chunks[self.chunk_of[i]][s : s + self.lengths[i]]


# -------------------------------------------------------------------------------- mixing

def plan_mixture(tokens: dict[str, int], weights: dict[str, float], epochs: float) -> dict:
    """The mixing arithmetic from unique token counts per source (see module docstring)."""
    if set(tokens) != set(weights):
        raise ConfigError(f"token counts for {sorted(tokens)} but weights for {sorted(weights)}")
    scale = max(tokens[s] / weights[s] for s in tokens)
    per = {}
    for s in tokens:
        target = weights[s] * scale
        per[s] = {
            "weight": weights[s],
            "unique_tokens": int(tokens[s]),
            "repeat": target / tokens[s],
            "tokens_per_epoch": int(round(target)),
            "tokens_total": int(round(target * epochs)),
        }
    per_epoch = sum(p["tokens_per_epoch"] for p in per.values())
    return {"sources": per, "tokens_per_epoch": per_epoch, "epochs": epochs, "total_tokens": int(round(per_epoch * epochs))}


def format_plan(plan: dict) -> str:
    rows = [f"{'source':<20}{'weight':>8}{'unique tokens':>18}{'repeat':>9}{'tokens/epoch':>18}{'tokens total':>18}"]
    for s, p in plan["sources"].items():
        rows.append(f"{s:<20}{p['weight']:>8g}{p['unique_tokens']:>18,}{p['repeat']:>9.3f}{p['tokens_per_epoch']:>18,}{p['tokens_total']:>18,}")
    rows.append(f"{'mixture':<20}{'':>8}{'':>18}{'':>9}{plan['tokens_per_epoch']:>18,}{plan['total_tokens']:>18,}")
    unit, div = ("B", 1e9) if plan["total_tokens"] >= 1e9 else ("M", 1e6)
    rows.append(f"epochs: {plan['epochs']:g}  ->  {plan['tokens_per_epoch'] / div:.2f} {unit} tokens per epoch, {plan['total_tokens'] / div:.2f} {unit} in total")
    return "\n".join(rows)


def epoch_order(lengths: dict[str, np.ndarray], plan: dict, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Seeded document order of one epoch: (source index, doc index) arrays + actual tokens per source."""
    rng = np.random.default_rng(seed)
    srcs, docs, actual = [], [], {}
    for si, (name, lens) in enumerate(lengths.items()):
        target = plan["sources"][name]["tokens_per_epoch"]
        full, rest = divmod(target, int(lens.sum()))
        picks = [np.tile(np.arange(len(lens)), full)]
        if rest > 0:  # fractional pass: whole documents of a seeded permutation until `rest` is covered
            perm = rng.permutation(len(lens))
            n = int(np.searchsorted(np.cumsum(lens[perm]), rest)) + 1
            picks.append(perm[:n])
        d = np.concatenate(picks)
        srcs.append(np.full(len(d), si, np.int8))
        docs.append(d)
        actual[name] = int(lens[d].sum())
    src, doc = np.concatenate(srcs), np.concatenate(docs)
    perm = rng.permutation(len(doc))
    return src[perm], doc[perm], actual


# ------------------------------------------------------------------------------- shards

def tokenize_mixture(
    cfg: DataConfig,
    tokenizer_path: str | os.PathLike,
    manifest_path: str | os.PathLike,
    state_dir: str | os.PathLike | None = None,
    workers: int = 0,
    keep_cache: bool = False,
    _stop_after_chunks: int | None = None,
    _stop_after_shards: int | None = None,
) -> dict:
    """Run both phases and write the manifest; returns it."""
    from tqdm import tqdm

    manifest_path = Path(manifest_path)
    out_dir = manifest_path.parent
    state = Path(state_dir) if state_dir else out_dir / ".state"
    tok = load_tokenizer(tokenizer_path)
    if tok.vocab_size > 65536:
        raise ConfigError(f"tokenizer {tokenizer_path}: {tok.vocab_size} pieces do not fit uint16 shards")
    workers = workers or os.cpu_count() or 1

    # Phase 1: encode every source (cache keyed by what determines its tokens).
    lengths, caches = {}, {}
    for name, src in cfg.sources.items():
        key = _digest({"src": source_fingerprint(name, src), "tok": tok.sha256, "seed": cfg.seed, "chunk": BATCH_DOCS * CHUNK_BATCHES})
        cache = state / "cache" / f"{name}-{key[:16]}"
        with tqdm(desc=f"encode {name}", unit="tok", unit_scale=True, smoothing=0.1) as bar:
            info = encode_source(name, src, cfg.seed, tok.path, cache, workers, bar, _stop_after_chunks)
        log.info("source %s: %d documents, %d tokens (with EOS)", name, info["docs"], info["tokens"])
        caches[name] = _SourceCache(cache)
        lengths[name] = caches[name].lengths

    # Phase 2: plan, order, shards.
    plan = plan_mixture({s: int(l.sum()) for s, l in lengths.items()}, {s: c.weight for s, c in cfg.sources.items()}, cfg.epochs)
    log.info("mixture plan:\n%s", format_plan(plan))
    src_idx, doc_idx, actual = epoch_order(lengths, plan, cfg.seed)
    names = list(lengths)
    doc_len = np.empty(len(doc_idx), np.int64)
    for si, name in enumerate(names):
        m = src_idx == si
        doc_len[m] = lengths[name][doc_idx[m]]
    ends = np.cumsum(doc_len)
    total = int(ends[-1])
    n_shards = math.ceil(total / cfg.shard_tokens)

    run_key = _digest({"cfg": asdict(cfg), "tok": tok.sha256, "fps": [source_fingerprint(n, s) for n, s in cfg.sources.items()]})
    progress_file = state / "shards.json"
    progress = _read_progress(progress_file)
    if progress.get("run_key") != run_key:
        progress = {"run_key": run_key, "shards": {}}
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, written = [], 0
    with tqdm(total=total, desc="write shards", unit="tok", unit_scale=True) as bar:
        for k in range(n_shards):
            fname = f"shard_{k:05d}.bin"
            lo, hi = k * cfg.shard_tokens, min(total, (k + 1) * cfg.shard_tokens)
            rec = progress["shards"].get(fname)
            if rec and _intact(out_dir / fname, 2 * (hi - lo), rec["sha256"]):
                shards.append(rec)
                bar.update(hi - lo)
                continue
            buf = _gather(caches, names, src_idx, doc_idx, ends, doc_len, lo, hi)
            with atomic_write(out_dir / fname, "wb") as f:
                f.write(buf.tobytes())
            rec = {"file": fname, "n_tokens": int(hi - lo), "sha256": hashlib.sha256(buf.tobytes()).hexdigest()}
            progress["shards"][fname] = rec
            write_json(progress_file, progress)
            shards.append(rec)
            bar.update(hi - lo)
            written += 1
            if _stop_after_shards is not None and written >= _stop_after_shards:
                raise KeyboardInterrupt(f"test hook: stopped after {written} shards")
    stale = {p.name for p in out_dir.glob("shard_*.bin")} - {s["file"] for s in shards}
    for name in sorted(stale):  # shards of an earlier, different run would confuse readers
        (out_dir / name).unlink()

    manifest = {
        "format": MANIFEST_FORMAT,
        "tokenizer_sha256": tok.sha256,
        "vocab_size": tok.vocab_size,
        "bos_id": tok.bos_id,
        "eos_id": tok.eos_id,
        "dtype": "uint16",
        "seq_len": cfg.seq_len,
        "shards": shards,
        "n_sequences": (total - 1) // cfg.seq_len,
        "tokens_per_source": actual,
        "tokens_per_source_total": {s: int(round(v * cfg.epochs)) for s, v in actual.items()},
        "tokens_per_epoch": total,
        "epochs": cfg.epochs,
        "total_tokens": int(round(total * cfg.epochs)),
        "seed": cfg.seed,
        "sources": {
            s: {**plan["sources"][s], "documents": int(len(lengths[s])), "format": cfg.sources[s].format,
                "tokens_per_epoch": actual[s], "tokens_total": int(round(actual[s] * cfg.epochs))}
            for s in names
        },
        "documents_per_epoch": int(len(doc_idx)),
        "mixing_rule": "epoch sized by the source largest relative to its weight (read once); smaller sources upsampled: floor(repeat) full passes + seeded whole-document subset; one epoch on disk, shuffled by seed",
    }
    write_json(manifest_path, manifest)
    if not keep_cache:
        shutil.rmtree(state / "cache", ignore_errors=True)
    log.info("wrote %s: %d shards, %d tokens per epoch, %d sequences of %d", manifest_path, len(shards), total, manifest["n_sequences"], cfg.seq_len)
    return manifest


def _read_progress(path: Path) -> dict:
    """The shard progress of an earlier run; a damaged file only costs rewriting the shards."""
    if not path.exists():
        return {}
    try:
        return read_json(path)
    except InputFileError as e:
        log.warning("rewriting every shard: %s", e)
        return {}


def _intact(path: Path, size: int, sha256: str) -> bool:
    """A shard an earlier run wrote is kept only if its size and bytes are what it recorded."""
    if not path.is_file() or path.stat().st_size != size:
        return False
    if sha256_file(path) != sha256:
        log.warning("%s: sha256 differs from the one recorded when it was written (damaged?): rewriting it", path)
        return False
    return True


def _gather(caches, names, src_idx, doc_idx, ends, doc_len, lo: int, hi: int) -> np.ndarray:
    """Tokens [lo, hi) of the epoch stream (documents back to back in shuffled order)."""
    out = np.empty(hi - lo, np.uint16)
    first = int(np.searchsorted(ends, lo, side="right"))
    pos = lo
    i = first
    while pos < hi:
        doc = caches[names[src_idx[i]]].doc(int(doc_idx[i]))
        start = int(ends[i] - doc_len[i])
        a, b = pos - start, min(len(doc), hi - start)
        out[pos - lo : pos - lo + (b - a)] = doc[a:b]
        pos += b - a
        i += 1
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
