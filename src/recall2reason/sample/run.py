"""The sample stage: n completions per eval problem, resumable, written atomically.

Part ``k`` of ``sample.jobs`` samples the contiguous block of sample indices
``[k*n//jobs, (k+1)*n//jobs)`` for every problem. Progress is kept in ``--state-dir`` as shards:
each shard (a JSON file renamed into place) holds the rows finished since the previous one, so a
run killed at any moment (kill -9 included) restarts with every finished shard and re-generates
only the rows of the shard in progress - with the same seeds, hence the same text. When every row
exists, the part file is written atomically (rows ordered by problem, then sample index), the
stats next to it, and the state dir is removed.

SIGTERM (an interrupted Snakemake, a scheduler's time limit) flushes the finished rows that are
not yet in a shard and exits 143; before the first completion (loading, compiling, capturing) it
exits at once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch

from recall2reason.common import InputFileError, formats, jsonl_lines, read_json, sha256_file, to_dict, write_json, write_jsonl
from recall2reason.common.signals import EXIT_CODE, StopSignals
from recall2reason.common.warmup import first_item_warmed, kernel_families
from recall2reason.models.config import ModelConfig
from recall2reason.sample.config import SampleConfig
from recall2reason.sample.engine import Engine, Request, decode_attention_kernel
from recall2reason.sample.rng import sample_seed
from recall2reason.sample.sampling import SAMPLER_VERSION

log = logging.getLogger("recall2reason.sample")

# config keys that change what a row contains; the others (batch size, graphs, ...) only change speed
_OUTPUT_KEYS = ("n", "temperature", "top_p", "max_new_tokens", "jobs", "seed", "prompt_prefix", "dtype")


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(cfg: SampleConfig, device: torch.device) -> torch.dtype:
    if cfg.dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bf16": torch.bfloat16, "fp32": torch.float32}[cfg.dtype]


def prompt_ids(tok, text: str, prefix: str) -> list[int]:
    ids = list(tok.encode(text))
    if prefix == "eos":
        return [tok.eos_id] + ids
    if prefix == "bos":
        return [tok.bos_id] + ids
    return ids


def open_checkpoint(model_dir: Path, tokenizer: str | os.PathLike):
    """The tokenizer and the model's config.json; refuses a tokenizer the model was not trained with."""
    from recall2reason.data.tokenizer import load_tokenizer
    from recall2reason.models.checkpoint import read_config

    tok = load_tokenizer(tokenizer)
    meta = read_config(model_dir)
    want = meta.get("tokenizer_sha256")
    if want is not None and want != tok.sha256:
        raise SystemExit(
            f"tokenizer mismatch: {model_dir}/config.json was trained with tokenizer sha256 {want}, "
            f"but {tokenizer} has sha256 {tok.sha256}"
        )
    return tok, meta


def make_engine(model_dir: Path, cfg: SampleConfig, device: torch.device, max_prompt: int, eos_id: int) -> Engine:
    """The model of ``model_dir`` in the decoding engine, set up as ``cfg`` says."""
    from recall2reason.models import load_model

    model, _ = load_model(model_dir, device=device)
    model = model.to(resolve_dtype(cfg, device)).eval()
    return Engine.from_config(model, cfg, max_prompt=max_prompt, eos_id=eos_id)


def cold_start(engine: Engine, cfg: SampleConfig, completions):
    """``completions``, the engine's cold start (compile, capture, first prefills: up to the first
    completion) run once per decode kernel family among concurrent jobs on CUDA (common/warmup.py)."""
    cuda = engine.device.type == "cuda"
    run = {"slots": engine.B, "dtype": cfg.dtype, "compile": cfg.compile, "sampling_kernel": cfg.sampling_kernel,
           "gpu": torch.cuda.get_device_name(engine.device) if cuda else None}
    return first_item_warmed(completions, kernel_families(engine.model.cfg.to_dict(), "decode", run), enabled=cuda)


class ShardStore:
    """Finished rows of one part, as numbered shard files in the state dir.

    The state is only a cache of rows the same seeds would make again, so an unreadable
    fingerprint or shard (a damaged disk) is dropped with a warning and its rows re-sampled."""

    def __init__(self, state_dir: Path, fingerprint: dict):
        self.dir = Path(state_dir)
        fp_path = self.dir / "fingerprint.json"
        if self.dir.exists() and _read_state(fp_path) != fingerprint:
            log.warning("state dir %s belongs to another run (model, data or config changed): starting over", self.dir)
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not fp_path.exists():
            write_json(fp_path, fingerprint)
        self.rows: dict[tuple[str, int], dict] = {}
        self.wall_s = self.gen_s = 0.0
        self.new_tokens = 0
        self.next_index = 0
        for p in sorted(self.dir.glob("shard-*.json")):
            self.next_index = max(self.next_index, int(p.stem.split("-")[1]) + 1)
            shard = _read_state(p)
            if shard is None:
                continue
            for r in shard["rows"]:
                key = (r["problem_id"], r["sample_idx"])
                if key in self.rows:
                    raise RuntimeError(f"{p}: duplicate row {key} in the state dir")
                self.rows[key] = r
            self.wall_s += shard["wall_s"]
            self.gen_s += shard["gen_s"]
            self.new_tokens += shard["new_tokens"]

    def flush(self, rows: list[dict], wall_s: float, gen_s: float, new_tokens: int) -> None:
        path = self.dir / f"shard-{self.next_index:06d}.json"
        write_json(path, {"wall_s": wall_s, "gen_s": gen_s, "new_tokens": new_tokens, "rows": rows}, indent=None)
        self.next_index += 1
        for r in rows:
            self.rows[(r["problem_id"], r["sample_idx"])] = r
        self.wall_s += wall_s
        self.gen_s += gen_s
        self.new_tokens += new_tokens


def _read_state(path: Path) -> dict | None:
    """A state file's JSON, or None (with a warning) when it is missing or damaged."""
    if not path.exists():
        return None
    try:
        return read_json(path)
    except InputFileError as e:
        log.warning("dropping a damaged state file: %s", e)
        path.unlink()
        return None


def run_sample(
    cfg: SampleConfig,
    *,
    model_dir: str | os.PathLike,
    tokenizer: str | os.PathLike,
    eval_path: str | os.PathLike,
    part: int,
    out: str | os.PathLike,
    stats: str | os.PathLike,
    state_dir: str | os.PathLike,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    from recall2reason.models.checkpoint import verify_weights

    t_start = time.perf_counter()
    indices = cfg.part_indices(part)
    model_dir = Path(model_dir)
    tok, meta = open_checkpoint(model_dir, tokenizer)
    model_name = meta.get("name") or model_dir.name
    problems = []
    for lineno, p in jsonl_lines(eval_path, formats.EVAL_SET):
        if "id" not in p or "prompt" not in p:
            raise InputFileError(f"{eval_path}:{lineno}: row lacks id or prompt; expected {formats.EVAL_SET}")
        problems.append(p)
    if not problems:
        raise InputFileError(f"{eval_path}: no problems in the eval set (empty file?)")
    ids = [str(p["id"]) for p in problems]
    if len(set(ids)) != len(ids):
        raise InputFileError(f"{eval_path}: duplicate problem ids")

    fingerprint = {
        "model": model_name,
        "weights_sha256": verify_weights(model_dir, meta),
        "tokenizer_sha256": tok.sha256,
        "eval_sha256": sha256_file(eval_path),
        "part": part,
        "cfg": {k: to_dict(getattr(cfg, k)) for k in _OUTPUT_KEYS},
        "sampler": SAMPLER_VERSION,
    }
    store = ShardStore(Path(state_dir), fingerprint)

    prompts = [prompt_ids(tok, p["prompt"], cfg.prompt_prefix) for p in problems]
    requests = [
        Request((pid, i), prompt, sample_seed(cfg.seed, model_name, pid, i))
        for pid, prompt in zip(ids, prompts)
        for i in indices
        if (pid, i) not in store.rows
    ]
    total = len(ids) * len(indices)
    dev = resolve_device(device)
    n_done_before = len(store.rows)
    signals = StopSignals()  # before the log line below, which tells a watcher it may signal now
    log.info("%s part %d/%d (samples %d..%d): %d of %d completions to go on %s",
             model_name, part, cfg.jobs, indices.start, indices.stop - 1, len(requests), total, dev)

    run_wall = 0.0
    try:
        if requests:
            run_wall = _generate(cfg, requests, store, tok, model_dir, dev, model_name, total, n_done_before,
                                          progress, signals, t_start)
    finally:
        signals.restore()

    missing = [(pid, i) for pid in ids for i in indices if (pid, i) not in store.rows]
    if missing:
        raise RuntimeError(f"{len(missing)} completions missing after sampling, e.g. {missing[:3]}")
    rows = [store.rows[(pid, i)] for pid in ids for i in indices]
    write_jsonl(out, rows)
    total_wall = store.wall_s + (time.perf_counter() - t_start - run_wall)
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    st = {
        "device": device_name,
        "wall_s": round(total_wall, 3),
        "gpu_s": round(total_wall, 3) if dev.type == "cuda" else 0.0,  # one GPU per job
        "new_tokens": store.new_tokens,
        "completions": len(rows),
        "tokens_per_s": round(store.new_tokens / store.gen_s, 1) if store.gen_s > 0 else 0.0,
        # the kernels that made these rows: the model's (its config.json; defaults for a checkpoint
        # from before they were recorded) and the decode step's
        "kernels": {**to_dict(ModelConfig.from_dict(meta["model"]).kernels), "decode_attention": decode_attention_kernel(cfg.attention_kernel, dev)},
    }
    write_json(stats, st)
    shutil.rmtree(state_dir, ignore_errors=True)
    log.info("wrote %s (%d rows): %s", out, len(rows), json.dumps(st))
    return st


def _generate(cfg: SampleConfig, requests: list[Request], store: ShardStore, tok, model_dir: Path, dev: torch.device,
              model_name: str, total: int, n_done_before: int, progress: bool, signals: StopSignals,
              t_start: float) -> float:
    """Generate ``requests`` into ``store`` (a shard every ``flush_every_s``); returns the wall s since ``t_start``.
    On SIGTERM the rows finished so far are flushed and the process exits 143."""
    from tqdm import tqdm

    engine = make_engine(model_dir, cfg, dev, max(len(r.prompt) for r in requests), tok.eos_id)
    log.info("model loaded and engine built in %.1f s", time.perf_counter() - t_start)
    bar = tqdm(total=total, initial=n_done_before, unit="compl", desc=f"sample {model_name}",
               disable=not progress, dynamic_ncols=True, smoothing=0.05)
    pending: list[dict] = []
    pending_tokens = run_tokens = 0
    t_gen = t_flush = time.perf_counter()
    flush_wall_start = t_start  # the first shard also carries this run's setup time

    def flush(now: float) -> None:
        nonlocal pending, pending_tokens, t_flush, flush_wall_start
        store.flush(pending, now - flush_wall_start, now - t_flush, pending_tokens)
        pending, pending_tokens, t_flush, flush_wall_start = [], 0, now, now

    for c in cold_start(engine, cfg, engine.generate(requests)):
        pid, i = c.key
        pending.append({
            "problem_id": pid, "sample_idx": i, "text": tok.decode(c.tokens), "n_tokens": len(c.tokens),
            "finish_reason": c.finish_reason, "seed": sample_seed(cfg.seed, model_name, pid, i),
        })
        if signals.nothing_to_save:  # the first completion: compile, capture and the first prefills are behind us
            signals.nothing_to_save = False
            log.info("first completion after %.1f s (compile, CUDA-graph capture, prefill)", time.perf_counter() - t_start)
        pending_tokens += c.n_generated
        run_tokens += c.n_generated
        bar.update(1)
        now = time.perf_counter()
        bar.set_postfix_str(f"{run_tokens / max(now - t_gen, 1e-9):,.0f} tok/s", refresh=False)
        if signals.exit_requested:
            if pending:
                flush(now)
            bar.close()
            log.warning("SIGTERM: %d of %d completions kept in %s; exiting (re-run to resume)",
                        len(store.rows), total, store.dir)
            raise SystemExit(EXIT_CODE)
        if now - t_flush >= cfg.flush_every_s:
            flush(now)
    now = time.perf_counter()
    if pending:
        flush(now)
    bar.close()
    return now - t_start
