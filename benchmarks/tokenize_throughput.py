"""End-to-end throughput of the data stage's tokenize (read, format, encode, pack, write).

Replicates the GSM8K + MATH train files of ../shared/data (as `gsm8k` / `math` sources) to
a few hundred MB, runs `recall2reason.data.pack.tokenize_mixture` with the Llama-2
tokenizer for each worker count, and reports tokens/s of wall time and tokens per CPU
second (this process + its workers, from getrusage: the per-core figure on a shared box).
Also measures the anchor: bare SentencePiece encode of the same documents on one core.

    /work/venv/bin/python benchmarks/tokenize_throughput.py --copies 20 --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_s(who: str = "all") -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    main_, workers = s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime
    return {"all": main_ + workers, "main": main_, "workers": workers}[who]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--copies", type=int, default=20, help="replicas of each train file")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--tmp", default=None, help="scratch dir (default: a temp dir, removed afterwards)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from recall2reason.common import from_dict
    from recall2reason.data.pack import tokenize_mixture
    from recall2reason.data.sources import DataConfig, document_text, parse_record

    shared = Path(args.shared)
    tok = shared / "tokenizer/llama2/tokenizer.model"
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="r2r-tokbench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        srcs = {}
        for name, rel in (("gsm8k", "data/gsm8k/train.jsonl"), ("math", "data/math/train.jsonl")):
            data = (shared / rel).read_bytes()
            f = tmp / f"{name}.jsonl"
            f.write_bytes(data * args.copies)
            srcs[name] = {"format": name, "path": str(f)}
        mb = sum(Path(s["path"]).stat().st_size for s in srcs.values()) / 1e6

        # Anchor: SentencePiece alone, one document at a time, one core, on 4000 documents.
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(tok))
        lines = (shared / "data/gsm8k/train.jsonl").read_text().splitlines()[:2000] + (shared / "data/math/train.jsonl").read_text().splitlines()[:2000]
        texts = [document_text("gsm8k" if "question" in l[:20] else "math", parse_record(l)) for l in lines]
        t0, c0 = time.perf_counter(), cpu_s()
        n = sum(len(sp.encode(t)) for t in texts)
        anchor = {"tokens": n, "wall_s": time.perf_counter() - t0, "cpu_s": cpu_s() - c0}

        results = []
        for w in args.workers:
            cfg = from_dict(DataConfig, {"seq_len": 2048, "epochs": 1, "seed": 0, "shard_tokens": 1 << 24, "sources": srcs}, "data")
            out = tmp / f"out{w}"
            shutil.rmtree(out, ignore_errors=True)
            t0, c0, cm0 = time.perf_counter(), cpu_s(), cpu_s("main")
            m = tokenize_mixture(cfg, tok, out / "manifest.json", out / ".state", workers=w)
            wall, cpu = time.perf_counter() - t0, cpu_s() - c0
            results.append({
                "workers": w, "input_mb": round(mb, 1), "tokens": m["tokens_per_epoch"], "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                "cpu_s_main_process": round(cpu_s("main") - cm0, 1),
                "tokens_per_s_wall": round(m["tokens_per_epoch"] / wall), "tokens_per_cpu_s": round(m["tokens_per_epoch"] / cpu),
                "max_rss_mb_self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "max_rss_mb_children": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            })
            shutil.rmtree(out, ignore_errors=True)
        print(json.dumps({"anchor_sentencepiece_1core": {**anchor, "tokens_per_s": round(anchor["tokens"] / anchor["wall_s"]),
                                                          "tokens_per_cpu_s": round(anchor["tokens"] / anchor["cpu_s"])},
                          "end_to_end": results}, indent=1))
    finally:
        if not args.tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
