"""Typed config of the sample stage (config.yaml ``sample:``; Appendix B.4 of the paper)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from recall2reason.common.cfg import ConfigError, from_dict


@dataclass
class SampleConfig:
    n: int = 64  # completions per problem (sample indices 0..n-1)
    temperature: float = 0.8  # 0: greedy
    top_p: float = 0.9
    max_new_tokens: int = 1024
    jobs: int = 1  # the n sample indices are split into this many contiguous parts (one job each)
    batch_size: int = 512  # decode slots (sequences in flight); 512 beat 256 on an H200 (2026-12-03-sample-1-batch-512)
    seed: int = 1234  # base of the per-(model, problem, sample index) seeds
    # what precedes the prompt: training documents are packed as `doc EOS doc EOS ...` without BOS,
    # so a prompt preceded by EOS looks like the start of a training document
    prompt_prefix: Literal["eos", "bos", "none"] = "eos"
    dtype: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    cuda_graph: bool = True  # capture the decode step (+ sampling) in a CUDA graph on GPU
    attention_kernel: bool = True  # CUDA: Triton decode attention reading only each row's own keys
    # both verified end to end on an H200 (2026-12-02-sample-2-decode-attention-kernel): on by default
    compile: bool = True  # CUDA: torch.compile the decode step before capture (falls back to eager on failure)
    sampling_kernel: bool = True  # CUDA: sort-free Triton nucleus sampling (exact; sample/nucleus_triton.py)
    sync_every: int = 4  # decode steps between host checks for finished rows (GPU); 1 on CPU
    flush_every_s: float = 60.0  # seconds between resumable shards (at most this much work lost on a kill)

    def __post_init__(self) -> None:
        for key in ("n", "jobs", "batch_size", "max_new_tokens", "sync_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"sample.{key} must be >= 1, got {getattr(self, key)}")
        if self.temperature < 0:
            raise ConfigError(f"sample.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"sample.top_p must be in (0, 1], got {self.top_p}")
        if self.flush_every_s <= 0:
            raise ConfigError(f"sample.flush_every_s must be > 0, got {self.flush_every_s}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "SampleConfig":
        return from_dict(cls, d, "sample")

    def part_indices(self, part: int) -> range:
        """Sample indices of part ``part`` (0-based) of ``jobs``: a contiguous block."""
        if not 0 <= part < self.jobs:
            raise ConfigError(f"--part {part} is outside 0..{self.jobs - 1} (sample.jobs = {self.jobs})")
        return range(part * self.n // self.jobs, (part + 1) * self.n // self.jobs)
