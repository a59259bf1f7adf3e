"""Exact nucleus (top-p) sampling without a sort or a softmax pass: one Triton program per row.

Computes the function of :func:`recall2reason.sample.sampling.sample_next` (the sort-based
reference): with x = logits.float() / T, p = softmax(x) and the race's noise E_i = -log u_i (u_i
from :func:`recall2reason.sample.rng.token_uniforms`, recomputed in-kernel from the row's key),

    token = argmax over the nucleus of p_i / E_i = argmax over the nucleus of x_i - log E_i,
    nucleus = {i : sum(p_j for x_j > x_i) < top_p}.

The second form needs no normaliser, so the kernel reads the logits themselves, and by rejection it
never materialises the nucleus:

  pass 0   a = the race's winner over every token; in the same pass, the softmax's max m and
           normaliser Z (online, per lane).
  check    S = sum(exp(x_j - m) for x_j > x_a), and in the same pass the race's winner over
           {x_j > x_a}. If S < top_p * Z, a is in the nucleus and - the nucleus being a subset of all
           tokens - also its winner: done. Otherwise a is outside, and so is every token with
           x <= x_a (their mass above is at least S); the nucleus lies within {x_j > x_a}, whose
           winner becomes a, and the check repeats.

Each check passes with probability >= top_p (the race picks a nucleus token with probability
mass(nucleus) / mass(candidates) >= top_p), so a row takes ~1 + 1 / top_p passes over its logits
(~2.1 at top_p 0.9), each one streaming read with one reduction at its end, where an exact threshold
search takes ~25 dependent passes over fp32 probabilities (the previous kernel; both timed in
benchmarks/reports/2026-12-03-sample-3-exponential-race-top-p.md).

It is the reference's function up to float rounding, not bit for bit: the kernel's exp / log and
its fp32 sums are not torch's softmax, so a draw can differ where two race scores agree to ~1e-7
relative, or where a row's mass above the candidate lies within ~1e-7 of top_p. Both are
~1e-6-probability events per row (none in the tests' thousands of rows, CPU interpreter and H200).

Grid, shapes and allocations depend only on (B, V): no host syncs, no data-dependent shapes, so a
call can be captured in a CUDA graph (the rejection loop is data-dependent only inside the kernel).
Triton is imported lazily, on the first call. Launch configuration and measured times:
benchmarks/reports/2026-12-03-sample-3-exponential-race-top-p.md.
"""

from __future__ import annotations

import torch

from recall2reason.sample.rng import step_key

# BLOCK tokens per load (a row is streamed in V / BLOCK blocks per pass), num_warps per row. One
# program per row: splitting pass 0 and the first check over 4-32 programs per row was not faster
# (three launches instead of one; H200 sweep, 2026-12-03-sample-3-exponential-race-top-p)
CONFIG = {"BLOCK": 2048, "num_warps": 8}
_kernels = None


def _build_kernels():
    # Triton and the helper functions are bound as module globals (not closure variables): both the
    # compiler and the CPU interpreter resolve the kernel's names in its __globals__.
    global triton, tl, hash32, race_score, keep_best, lane_winner, reject_loop
    import triton
    import triton.language as tl

    @triton.jit
    def hash32(x):
        # rng.hash32 (lowbias32) on uint32, whose multiplies wrap mod 2**32
        x = x ^ (x >> 16)
        x = x * 0x21F0AAAD
        x = x ^ (x >> 15)
        x = x * 0x735A2D97
        return x ^ (x >> 15)

    @triton.jit
    def race_score(x, skey, idx):
        # log(p / E) + log Z = x - log E, E = -log u, u = rng.token_uniforms(...) for these token ids
        h = hash32(skey ^ hash32(idx.to(tl.uint32)))
        u = ((h >> 9).to(tl.float32) + 0.5) * (1.0 / 8388608.0)
        return x - tl.log(-tl.log(u))

    @triton.jit
    def keep_best(s, idx, best, arg):
        # per lane, the best score so far and its token id; replacing only on a strictly greater
        # score keeps the lowest id within a lane
        win = s > best
        return tl.where(win, s, best), tl.where(win, idx, arg)

    @triton.jit
    def lane_winner(best, arg, V):
        # the lowest id among the lanes at the maximum: torch.argmax's tie rule
        return tl.min(tl.where(best == tl.max(best, axis=0), arg, V), axis=0)

    @triton.jit
    def reject_loop(L, loff, skey, a, m, threshold, inv_temperature, V, BLOCK: tl.constexpr):
        # check candidate a: the mass (relative to exp(m)) of the tokens above it must be below the
        # threshold; if not, the race's winner above it (found in the same pass) is the next one. The
        # top token has nothing above it, so it always passes and the loop ends.
        ar = tl.arange(0, BLOCK)
        xa = tl.load(L + loff + a).to(tl.float32) * inv_temperature
        go = xa == xa  # true: check a
        while go:
            mass = tl.zeros((BLOCK,), tl.float32)
            best = tl.full((BLOCK,), float("-inf"), tl.float32)
            arg = tl.zeros((BLOCK,), tl.int32)
            for start in range(0, V, BLOCK):
                idx = start + ar
                x = tl.load(L + loff + idx, mask=idx < V, other=float("-inf")).to(tl.float32) * inv_temperature
                above = x > xa
                mass += tl.where(above, tl.exp(x - m), 0.0)
                s = tl.where(above, race_score(x, skey, idx), float("-inf"))
                best, arg = keep_best(s, idx, best, arg)
            go = tl.sum(mass, axis=0) >= threshold
            nxt = lane_winner(best, arg, V)
            a = tl.where(go, nxt, a)
            xa = tl.load(L + loff + a).to(tl.float32) * inv_temperature
        return a

    @triton.jit
    def race(L, SKEY, OUT, inv_temperature, top_p, V, NUCLEUS: tl.constexpr, BLOCK: tl.constexpr):
        # one program per row. pass 0: the race's winner over every token, and the softmax's max and
        # normaliser (online, per lane); then the checks
        row = tl.program_id(0)
        loff = row.to(tl.int64) * V
        ar = tl.arange(0, BLOCK)
        skey = tl.load(SKEY + row).to(tl.uint32)
        best = tl.full((BLOCK,), float("-inf"), tl.float32)
        arg = tl.zeros((BLOCK,), tl.int32)
        m_lane = tl.full((BLOCK,), float("-inf"), tl.float32)
        z_lane = tl.zeros((BLOCK,), tl.float32)
        for start in range(0, V, BLOCK):
            idx = start + ar
            valid = idx < V
            x = tl.load(L + loff + idx, mask=valid, other=float("-inf")).to(tl.float32) * inv_temperature
            m_new = tl.maximum(m_lane, x)
            # a lane that has seen only -inf (padding) keeps z = 0: shift by 0 there, not by -inf
            shift = tl.where(m_new > float("-inf"), m_new, 0.0)
            z_lane = z_lane * tl.exp(m_lane - shift) + tl.exp(x - shift)
            m_lane = m_new
            s = tl.where(valid, race_score(x, skey, idx), float("-inf"))
            best, arg = keep_best(s, idx, best, arg)
        a = lane_winner(best, arg, V)
        if NUCLEUS:
            m = tl.max(m_lane, axis=0)
            z = tl.sum(z_lane * tl.exp(m_lane - m), axis=0)  # padding lanes: 0 * exp(-inf) = 0
            # the unnormalised mass above a nucleus token stays below top_p * z
            a = reject_loop(L, loff, skey, a, m, top_p * z, inv_temperature, V, BLOCK)
        tl.store(OUT + row, a.to(tl.int64))

    return {"race": race}


@torch.library.custom_op("recall2reason::nucleus_race", mutates_args=())
def nucleus_race(logits: torch.Tensor, skeys: torch.Tensor, temperature: float, top_p: float,
                 block: int, num_warps: int) -> torch.Tensor:
    """One kernel launch: (B, V) logits, (B,) step keys -> (B,) int64 tokens. A custom op, so that
    torch.compile calls it as it is instead of analysing the Triton kernel (which torch 2.11 fails
    to do under Triton 3.7, and then treats every argument as written)."""
    global _kernels
    if _kernels is None:
        _kernels = _build_kernels()
    B, V = logits.shape
    out = torch.empty(B, dtype=torch.int64, device=logits.device)
    _kernels["race"][(B,)](logits, skeys, out, 1.0 / temperature, top_p, V, NUCLEUS=top_p < 1.0,
                           BLOCK=block, num_warps=num_warps)
    return out


@nucleus_race.register_fake
def _(logits, skeys, temperature, top_p, block, num_warps):
    return logits.new_empty(logits.shape[0], dtype=torch.int64)


def sample_next_triton(
    logits: torch.Tensor, keys: torch.Tensor, steps: torch.Tensor, temperature: float, top_p: float,
    *, config: dict | None = None,
) -> torch.Tensor:
    """Same arguments and result as :func:`recall2reason.sample.sampling.sample_next`:
    logits (B, V) (fp32/bf16/fp16) -> token ids (B,) int64, without sorting the vocabulary.
    ``config`` (benchmarks) overrides entries of :data:`CONFIG`."""
    if temperature <= 0:
        return logits.argmax(-1)
    if top_p <= 0:
        raise ValueError(f"top_p must be > 0, got {top_p}")
    params = {**CONFIG, **(config or {})}
    V = logits.shape[-1]
    block = min(params["BLOCK"], max(16, 1 << (V - 1).bit_length()))  # small rows: one block
    skeys = step_key(keys, steps).to(logits.device)
    return nucleus_race(logits.contiguous(), skeys.contiguous(), float(temperature), float(top_p), block,
                        params["num_warps"])
