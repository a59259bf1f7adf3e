"""One decoding engine for every architecture: prefill, fixed-shape decode steps, continuous batching.

    slots        B rows of preallocated decode state (KV cache for attention layers; conv and
                 recurrent states for Mamba / GLA / GDN), from ``model.init_state(B, max_len)``
    fill         a free slot gets the next request: its prompt is prefilled once into a batch-1
                 state (shared by consecutive requests with the same prompt: the n samples of one
                 problem) and that state row is copied into the slot; the first token is sampled
                 from the prefill logits
    step         every row advances one token: ``model.step`` + sampling + bookkeeping, all on the
                 device with fixed shapes (captured in one CUDA graph on GPU; eager on CPU)
    harvest      every ``sync_every`` steps the host reads which rows finished (EOS or the token
                 limit), collects their tokens and refills those slots with waiting requests

Rows never interact: a finished row keeps stepping on stale inputs until it is refilled (its
writes go to its own state row and to a scratch column), and sampling is counter-based
(``rng.py``), so a completion depends only on its prompt and seed, not on the batch around it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import torch

from recall2reason.sample.config import SampleConfig
from recall2reason.sample.rng import row_key
from recall2reason.sample.sampling import sample_next

log = logging.getLogger("recall2reason.sample")
_SAMPLE = SampleConfig()  # the single source of the engine's defaults


@dataclass
class Request:
    key: Any  # caller's id, returned with the completion
    prompt: list[int]
    seed: int


@dataclass
class Completion:
    key: Any
    tokens: list[int]  # generated ids, EOS excluded
    finish_reason: str  # "eos" | "length"
    n_generated: int  # tokens the model produced (EOS included): the compute spent


def decode_attention_kernel(attention_kernel: bool, device: torch.device) -> str:
    """The attention layers' decode-step kernel, an argument of every ``model.step``
    (models/layers/attention.py): Triton on CUDA when ``sample.attention_kernel`` is on, else SDPA."""
    return "triton" if attention_kernel and device.type == "cuda" else "sdpa"


class Engine:
    """Keyword defaults are ``SampleConfig``'s (the sample stage's), so an engine built by hand in a
    benchmark or test decodes as the stage does; ``Engine.from_config`` takes the whole config."""

    def __init__(
        self,
        model,
        *,
        max_len: int,
        eos_id: int,
        batch_size: int = _SAMPLE.batch_size,
        max_new_tokens: int = _SAMPLE.max_new_tokens,
        temperature: float = _SAMPLE.temperature,
        top_p: float = _SAMPLE.top_p,
        ignore_eos: bool = False,  # benchmarks: every row generates exactly max_new_tokens
        cuda_graph: bool = _SAMPLE.cuda_graph,
        sync_every: int = _SAMPLE.sync_every,  # 1 off CUDA
        attention_kernel: bool = _SAMPLE.attention_kernel,  # length-aware Triton decode attention on CUDA
        compile_step: bool = _SAMPLE.compile,  # CUDA: torch.compile the step (fuses its many small kernels) before capture
        sampling_kernel: bool = _SAMPLE.sampling_kernel,  # CUDA: sort-free Triton nucleus sampling (sample/nucleus_triton.py)
    ):
        self.model = model
        self.B, self.max_len, self.max_new = batch_size, max_len, max_new_tokens
        self.eos_id, self.ignore_eos = eos_id, ignore_eos
        self.temperature, self.top_p = float(temperature), float(top_p)
        w = model.lm_head.weight
        self.device, self.dtype = w.device, w.dtype
        self.sync_every = sync_every if self.device.type == "cuda" else 1
        self.decode_attention = decode_attention_kernel(attention_kernel, self.device)
        B, dev = batch_size, self.device
        with torch.inference_mode():
            self.states = model.init_state(B, max_len, dev, self.dtype)
            self.prompt_state = model.init_state(1, max_len, dev, self.dtype)
        for i, st in enumerate(self.states):
            for name, t in st.items():
                if t.shape[0] != B:
                    raise ValueError(f"layer {i} state {name!r} has shape {tuple(t.shape)}: the engine needs batch first")
        # per-row decode bookkeeping, all on the device so the step needs no host input
        z = lambda dtype=torch.long: torch.zeros(B, dtype=dtype, device=dev)  # noqa: E731
        self.tok, self.pos, self.ngen, self.keys = z(), z(), z(), z()
        self.alive = z(torch.bool)
        self.out = torch.zeros(B, max_new_tokens + 1, dtype=torch.long, device=dev)  # last column: scratch
        self._graph = None
        self._use_graph = cuda_graph and self.device.type == "cuda"
        self._sample = sample_next
        if sampling_kernel and self.device.type == "cuda":
            from recall2reason.sample.nucleus_triton import sample_next_triton

            self._sample = sample_next_triton
        self._step_fn = self._step
        self._compiled = compile_step and self.device.type == "cuda"
        if self._compiled:
            self._step_fn = torch.compile(self._step, dynamic=False)
        self._cached_prompt: tuple[int, ...] | None = None
        self._prompt_logits: torch.Tensor | None = None
        self.steps_run = 0  # decode steps replayed (each computes all B rows)
        # host wall seconds per phase of generate(): "step" includes waiting for the device
        self.phase_s = {"fill": 0.0, "step": 0.0, "harvest": 0.0}

    @classmethod
    def from_config(cls, model, cfg: SampleConfig, *, max_prompt: int, eos_id: int, ignore_eos: bool = False) -> "Engine":
        """The engine as the sample section ``cfg`` sets it up (room for ``max_prompt`` prompt tokens)."""
        return cls(
            model, batch_size=cfg.batch_size, max_len=max_prompt + cfg.max_new_tokens,
            max_new_tokens=cfg.max_new_tokens, eos_id=eos_id, temperature=cfg.temperature, top_p=cfg.top_p,
            ignore_eos=ignore_eos, cuda_graph=cfg.cuda_graph, sync_every=cfg.sync_every,
            attention_kernel=cfg.attention_kernel, compile_step=cfg.compile, sampling_kernel=cfg.sampling_kernel,
        )

    # -- the decode step (graph body) -------------------------------------------------------
    def _step(self) -> None:
        logits = self.model.step(self.tok, self.states, self.pos, decode_attention=self.decode_attention)
        nxt = self._sample(logits, self.keys, self.ngen, self.temperature, self.top_p)
        alive = self.alive
        col = torch.where(alive, self.ngen, torch.full_like(self.ngen, self.max_new))
        self.out.scatter_(1, col[:, None], nxt[:, None])
        ngen = self.ngen + alive.long()
        done = ngen >= self.max_new
        if not self.ignore_eos:
            done = done | (nxt == self.eos_id)
        self.ngen.copy_(ngen)
        self.tok.copy_(torch.where(alive, nxt, self.tok))
        self.pos.copy_(torch.where(alive, self.pos + 1, self.pos))
        self.alive.copy_(alive & ~done)

    @property
    def step_compiled(self) -> bool:
        """Whether the decode step runs compiled (False when compiling failed and the eager step was captured)."""
        return self._compiled  # a flag: `self._step` is a new bound-method object at every access

    def _run_step(self) -> None:
        if not self._use_graph:
            self._step_fn()
        else:
            if self._graph is None:
                self._capture()
            self._graph.replay()
        self.steps_run += 1

    def _capture(self) -> None:
        try:
            self._capture_fn()
        except Exception as e:  # noqa: BLE001 - a compiler failure must not stop sampling
            if not self._compiled:
                raise
            log.warning("compiled decode step failed (%s: %s); capturing the eager step instead", type(e).__name__, e)
            self._step_fn, self._compiled = self._step, False
            self._capture_fn()

    def _capture_fn(self) -> None:
        # warm up on a side stream (allocator pools, kernel autotuning), then capture one step;
        # the warm-up steps really run, so rows must be dead (their state is rewritten at fill)
        saved = [t.clone() for t in (self.tok, self.pos, self.ngen, self.alive, self.out)]
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                self._step_fn()
        torch.cuda.current_stream().wait_stream(s)
        for t, v in zip((self.tok, self.pos, self.ngen, self.alive, self.out), saved):
            t.copy_(v)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            self._step_fn()
        for t, v in zip((self.tok, self.pos, self.ngen, self.alive, self.out), saved):
            t.copy_(v)  # capture does not run the step, but restore anyway: nothing may drift
        self._graph = g

    @torch.inference_mode()
    def warmup(self, steps: int = 2, prompt_len: int | None = None) -> None:
        """Capture the CUDA graph (compiling / autotuning kernels), run a few steps on dead rows and,
        with ``prompt_len``, one prefill (FLA autotunes its chunk kernels on first use), so a
        benchmark's clock starts on a warm engine. Only call between generate() calls."""
        if prompt_len:
            self._prefill(tuple([0] * prompt_len))
            # the fill samples first tokens outside the graph: compile that (eager) sampler too,
            # or the first fill pays it (~1.7 s for the Triton top-p kernel, seen on the H200)
            keys = torch.zeros(self.B, dtype=torch.long, device=self.device)
            self._sample(self._prompt_logits.expand(self.B, -1), keys, keys, self.temperature, self.top_p)
            self._cached_prompt = None
        for _ in range(steps):
            self._run_step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.steps_run = 0

    # -- filling slots ----------------------------------------------------------------------
    def _prefill(self, prompt: tuple[int, ...]) -> None:
        if prompt == self._cached_prompt:
            return
        for st in self.prompt_state:
            for t in st.values():
                t.zero_()
        ids = torch.tensor(prompt, dtype=torch.long, device=self.device)[None]
        self._prompt_logits = self.model.prefill(ids, self.prompt_state, 0).float()
        self._cached_prompt = prompt

    def _fill(self, slots: list[int], reqs: list[Request]) -> None:
        """Put requests into free slots. A row finished by its first token (EOS, or
        max_new_tokens == 1) is filled dead and harvested at the next check."""
        dev = self.device
        # group consecutive requests with the same prompt: one prefill, one batched copy
        i = 0
        while i < len(reqs):
            j = i
            while j < len(reqs) and reqs[j].prompt == reqs[i].prompt:
                j += 1
            prompt = tuple(reqs[i].prompt)
            if len(prompt) + self.max_new > self.max_len:
                raise ValueError(f"prompt of {len(prompt)} tokens + {self.max_new} new exceeds the engine's max_len {self.max_len}")
            if not prompt:
                raise ValueError("empty prompt")
            self._prefill(prompt)
            idx = torch.tensor(slots[i:j], dtype=torch.long, device=dev)
            for dst, src in zip(self.states, self.prompt_state):
                for name, t in dst.items():
                    t.index_copy_(0, idx, src[name].expand(j - i, *src[name].shape[1:]))
            keys = torch.tensor([row_key(r.seed) for r in reqs[i:j]], dtype=torch.long, device=dev)
            first = self._sample(self._prompt_logits.expand(j - i, -1), keys, torch.zeros_like(keys), self.temperature, self.top_p)
            self.keys.index_copy_(0, idx, keys)
            self.tok.index_copy_(0, idx, first)
            self.pos.index_fill_(0, idx, len(prompt))
            self.ngen.index_fill_(0, idx, 1)
            self.out[:, 0].index_copy_(0, idx, first)
            alive = torch.ones_like(first, dtype=torch.bool)
            if self.max_new == 1:
                alive[:] = False
            elif not self.ignore_eos:
                alive &= first != self.eos_id
            self.alive.index_copy_(0, idx, alive)
            i = j

    # -- the loop ---------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, requests: Iterable[Request]) -> Iterator[Completion]:
        """Yield one Completion per request, in completion order."""
        if self._use_graph and self._graph is None:
            # capture while every row is dead: the capture's warm-up steps advance the state of
            # every row, which would corrupt recurrent states of rows already filled
            self.alive.zero_()
            self._capture()
        it = iter(requests)
        slot_req: list[Request | None] = [None] * self.B
        exhausted = False
        alive = None  # host copy of self.alive; None when a fill changed it since the last read
        while True:
            free = [s for s in range(self.B) if slot_req[s] is None]
            if free and not exhausted:
                batch = []
                for _ in free:
                    r = next(it, None)
                    if r is None:
                        exhausted = True
                        break
                    batch.append(r)
                if batch:
                    t0 = time.perf_counter()
                    self._fill(free[: len(batch)], batch)
                    self.phase_s["fill"] += time.perf_counter() - t0
                    for s, r in zip(free, batch):
                        slot_req[s] = r
                    alive = None
            if all(r is None for r in slot_req):
                return
            t0 = time.perf_counter()
            # a Python list: the device idles while the host scans the slots, and indexing a tensor
            # once per slot took ~0.5 ms per check at 512 slots (0.015 ms as a list)
            if alive is None:  # one host sync per check, not two
                alive = self.alive.tolist()
            if any(alive):
                for _ in range(self.sync_every):
                    self._run_step()
                alive = self.alive.tolist()
            t1 = time.perf_counter()
            self.phase_s["step"] += t1 - t0
            done = [s for s in range(self.B) if slot_req[s] is not None and not alive[s]]
            if not done:
                self.phase_s["harvest"] += time.perf_counter() - t1
                continue
            idx = torch.tensor(done, dtype=torch.long, device=self.device)
            ngen = self.ngen.index_select(0, idx).cpu().tolist()
            rows = self.out.index_select(0, idx)[:, : max(ngen)].cpu().tolist()
            finished = []
            for s, n, row in zip(done, ngen, rows):
                toks = row[:n]
                if not self.ignore_eos and toks and toks[-1] == self.eos_id:
                    reason, toks = "eos", toks[:-1]
                else:
                    reason = "length"
                finished.append(Completion(slot_req[s].key, toks, reason, n))
                slot_req[s] = None
            self.phase_s["harvest"] += time.perf_counter() - t1
            yield from finished
