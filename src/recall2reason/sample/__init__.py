"""Sample stage: n completions per eval problem with one engine for every architecture.

    sample/engine.py    prefill + fixed-shape decode steps (CUDA graph on GPU), continuous batching
    sample/sampling.py  temperature / top-p sampling on the device
    sample/rng.py       counter-based per-row random numbers and per-sample seeds
    sample/run.py       the stage: parts, resumable shards, atomic output, stats
"""

from recall2reason.sample.config import SampleConfig
from recall2reason.sample.engine import Completion, Engine, Request

__all__ = ["Completion", "Engine", "Request", "SampleConfig"]
