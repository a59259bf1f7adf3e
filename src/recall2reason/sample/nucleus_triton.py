"""Exact nucleus (top-p) sampling without a sort: one Triton program per row, CUDA-graph safe.

Computes the same function as :func:`recall2reason.sample.sampling.sample_next` (the sort-based
reference) without sorting the vocabulary. For one row of V logits and temperature T:

    probs = softmax(logits.float() / T)                                    (fp32)
    order = probs sorted descending, ties by token id ascending (stable sort)
    kept  = tokens whose mass strictly before them (in that order) is < top_p
    u     = uniform(key, step) * kept_mass
    token = the first kept token in that order whose cumulative kept mass is > u

``probs`` is computed by torch with the reference's own expression (one fused read of the logits,
one fp32 write), so the probabilities are bit-identical to the reference's. The blocked kernel then
re-reads the probability row (from L2) in blocks of ``BLOCK`` tokens (see below for the
register-resident variant, which runs the same passes on the row held in registers):

  pass 1        pmax = the top probability
  search 1      tau = the prob of the last kept token = the smallest float x for which the token
                opening the level vd = max(p <= x) is kept, i.e. whose mass before it,
                G(x) = sum(p > x), satisfies fp32(fp32(G + vd) - vd) < top_p (the reference's
                ``cumsum - p``). Searched on the int32 bit pattern of the non-negative float
                (monotone in the value) with ``PROBES`` thresholds per pass, i.e. a 9-ary search:
                <= 10 passes over [0, pmax] (30 bits), fewer when the range collapses.
                Every token with p > tau is kept, no token with p < tau is.
  tie pass      the tokens with p == tau in id order (rank r = 0, 1, ...) are kept while
                fp32(fp32(G(tau) + (r + 1) * tau) - tau) < top_p - what the stable sort does.
                k = number kept, kept mass M = fp32(G(tau) + k * tau); u = uniform * M.
  search 2      the sampled token's prob v = the largest float x in [tau, pmax] with
                fp32(sum(p >= x)) > u (x = tau always qualifies): <= 10 passes, same search.
  2 passes      G(v) and the number of tokens at v; then the token at v of the first tie rank r
                (in id order) with fp32(G(v) + (r + 1) * v) > u, else the last kept one (the
                reference's clamp when rounding puts u on the kept mass).

So 1 + <=10 + 1 + <=10 + 2 <= 24 passes over the fp32 row (a search pass tests 8 thresholds per
load), plus torch's softmax. top_p >= 1 is plain inverse-CDF sampling in token-id order over all
tokens, as in the reference (2 passes). temperature <= 0 is greedy argmax (in torch).

Masses are accumulated in fp64 and rounded to fp32 where the reference holds an fp32 cumsum, so on
CPU - where torch's cumsum accumulates in double and rounds each prefix to fp32 - the kept set and
the draw match the reference exactly up to the last bit of a double sum of <= V terms (error
~V * 2**-53 relative: a disagreement needs a prefix sum within ~1e-12 of an fp32 rounding
boundary). Differences that remain:
  * CUDA's torch.cumsum accumulates in fp32 (a parallel scan), so the CUDA reference's own prefix
    sums are off by a few fp32 ulps; there, a comparison against top_p or u whose two sides are
    within those few ulps can go the other way (this kernel is the more exact one): a row keeps
    one token more or fewer at the nucleus edge, or draws the neighbouring token in sorted order,
    with probability ~(a few ulps of 1.0) / (the boundary token's probability) per row.
  * The search assumes the reference's kept set is a prefix in sorted order. It is, except when
    probabilities below ~1 fp32 ulp of the cumulative mass sit at the nucleus edge (the fp32
    ``cumsum - p`` is then not monotone); only such sub-ulp tokens can differ.
  * Degenerate case: if the positive probabilities sum below top_p (top_p within an ulp of 1),
    zero-probability tokens are kept as in the reference, but a draw that rounds onto the kept
    mass picks the last kept zero-probability token rather than the last positive one.
Exact ties in probability (flat rows, repeated logits) are resolved by token id, as the stable sort
does. Requires 0 < top_p. Grid, shapes and allocations depend only on (B, V): no host syncs, no
data-dependent shapes, so a call can be captured in a CUDA graph (the search loops are
data-dependent only inside the kernel). Triton is imported lazily, on the first call.

Measured once on an H100 (torch 2.11, triton 3.6), B=256, V=32000, bf16 logits, T=0.7, top_p=0.9:
the whole call ~0.88 ms against ~1.33 ms for the sort reference (the kernel itself about 0.7 ms, by difference;
16 probes/256-token tiles gave ~1.2 ms). One program per row leaves the GPU latency-bound
(256 programs, ~24 serial passes each): the next step is splitting each row over several programs
per pass, and/or searching with fp32 sums and checking only the final bracket in fp64.
top_p >= 1 (2 passes) took ~40 us for the kernel. Graph capture and replay were checked there.

Register-resident variant (``registers``, the default for V <= ``REGISTER_ROW_MAX`` = 32768, i.e.
our 32000-token vocabularies): the time above is latency - ~24 dependent passes, each walking 32
or 63 blocks serially with a load, a few ops and a loop-carried accumulator per block - not
bandwidth (256 rows x 128 KB x ~24 passes is ~0.8 GB in 0.7 ms, ~1.1 TB/s: a fraction of what L2
delivers). So each program loads its row ONCE, as one block of VPAD = next_power_of_2(V) fp32
values (padding -1.0, below every probability; 64 registers per thread at 16 warps), and every pass
is a whole-row reduction over that register-resident tensor: no block loop, no re-load. A search pass runs its K probes one after
another (``tl.static_range``), each with a scalar threshold and its own reductions over the row (a
(VPAD, K) tile would not fit in registers); the lo/hi/G updates are the blocked kernel's min/max
over the probes taken one probe at a time, with the same fp32/fp64 rounding expressions. The
tie-pass count k and the first tie rank above u are found over the ranks r = 0..VPAD-1 themselves
(the same per-rank test, no scan); a scan (``tl.cumsum``) over the row gives the ranks of the tied
tokens only where token positions are needed (the WRITE_MASK output and the final token pick).
The decisions are the blocked kernel's; only the order in which fp64 sums add the same terms
differs (last-bit effects on a double, as above). On CPU (interpreter) both variants give the same
masks and draws in the tests. ``config={"variant": "blocked" | "registers"}`` forces a variant;
a config with BLOCK or SBLOCK (block-size sweeps) means the blocked one.

Measured on an H200 (2026-12-02, torch 2.11, Triton 3.7.1, ``benchmarks/profile_gpu.py
--nucleus-sweep``; B=256, V=32000, bf16 logits, T=0.8, top_p=0.9; whole call incl. the 0.07 ms
softmax; sort reference 1.10 ms): blocked 1024/512/K=8/8 warps (the first default) 0.79 ms, blocked
4096/1024/K=4/8 warps 0.62 ms, registers K=4/16 warps **0.57 ms** (the default), registers K=8/16
warps 0.77 ms, K=16 1.1-2.9 ms. The register variant wins less than hoped: its ~150 whole-row
reductions per row (each a cross-warp barrier) are now the latency chain; fewer probes per pass
(more, cheaper passes) help, more hurt. Every configuration drew the same, in-range tokens as
every other; 2 of 256 rows differ from CUDA's sort path on flat logits (its fp32 cumsum, above),
0 on peaked logits (x6: measured for the blocked configurations only). The next step would be fewer barriers (fp32 sums with an fp64 check of
the final bracket only, or a warp-per-probe layout).
"""

from __future__ import annotations

import torch

from recall2reason.sample.rng import uniform

# launch configuration of the blocked variant: BLOCK tokens per block of a plain pass, SBLOCK per
# block of a search pass (x K thresholds held in registers: a (K+1)-ary search on the float's bit
# pattern), num_warps per row
CONFIG = {"BLOCK": 4096, "SBLOCK": 1024, "K": 4, "num_warps": 8}  # fastest blocked one in the H200 sweep
# the register-resident variant: K thresholds per search pass (one whole-row reduction each), num_warps
# per row (a VPAD = 32768 fp32 row is 64 registers per thread at 16 warps)
REGISTER_CONFIG = {"K": 4, "num_warps": 16}  # fastest in the H200 sweep (docstring)
# rows up to this many tokens (padded to a power of two) are held in registers, longer ones are blocked
REGISTER_ROW_MAX = 32768
_BLOCKED_ONLY = ("BLOCK", "SBLOCK")  # config keys that only the blocked variant has
_kernels = None


def _build_kernels():
    # Triton is bound as module globals (not closure variables): both the compiler and the CPU
    # interpreter resolve the kernel's names in its __globals__.
    global triton, tl
    import triton
    import triton.language as tl

    @triton.jit
    def blocked(P, U, OUT, MASK, top_p, V,
                NUCLEUS: tl.constexpr, WRITE_MASK: tl.constexpr, BLOCK: tl.constexpr, SBLOCK: tl.constexpr,
                K: tl.constexpr):
        row = tl.program_id(0)
        poff = row.to(tl.int64) * V
        ar = tl.arange(0, BLOCK)
        sar = tl.arange(0, SBLOCK)
        kk = tl.arange(0, K).to(tl.int64) + 1  # probe numbers 1..K
        u0 = tl.load(U + row)

        if NUCLEUS:
            # pass 1: the top probability
            mvec = tl.full((BLOCK,), -1.0, tl.float32)
            for start in range(0, V, BLOCK):
                idx = start + ar
                mvec = tl.maximum(mvec, tl.load(P + poff + idx, mask=idx < V, other=-1.0))
            pmax = tl.max(mvec, axis=0)

            # search 1: smallest bit pattern b in [0, bits(pmax)] with pred(float(b)), where for a
            # threshold x: G = sum(p > x) (fp64) is the mass before the first token of the level
            # vd = max(p <= x), and pred = fp32(fp32(G + vd) - vd) < top_p is the reference's
            # "cumsum - p < top_p" for that token (cumsum rounded to fp32, as torch's is).
            lo = tl.zeros((), tl.int32)
            hi = pmax.to(tl.int32, bitcast=True)
            g_hi = tl.zeros((), tl.float64)  # G(pmax) = 0
            while lo < hi:
                span = (hi - lo).to(tl.int64)
                mids = (lo.to(tl.int64) + span * kk // (K + 1)).to(tl.int32)  # in [lo, hi)
                thr = mids.to(tl.float32, bitcast=True)
                # (SBLOCK, K) register tiles, reduced once per pass (not once per block)
                g_t = tl.zeros((SBLOCK, K), tl.float64)
                vd_t = tl.full((SBLOCK, K), -1.0, tl.float32)
                for start in range(0, V, SBLOCK):
                    idx = start + sar
                    p = tl.load(P + poff + idx, mask=idx < V, other=-1.0)[:, None]
                    above = p > thr[None, :]
                    g_t += tl.where(above, p.to(tl.float64), 0.0)
                    vd_t = tl.maximum(vd_t, tl.where(above, -1.0, p))
                g = tl.sum(g_t, axis=0)
                vd = tl.max(vd_t, axis=0)
                before = ((g + vd.to(tl.float64)).to(tl.float32) - vd).to(tl.float64)
                before = tl.where(vd >= 0.0, before, g)
                ok = before < top_p  # False..False True..True along the probes
                new_hi = tl.min(tl.where(ok, mids, hi), axis=0)
                g_hi = tl.max(tl.where(ok, g, g_hi), axis=0)  # G at the smallest ok probe
                lo = tl.max(tl.where(ok, lo, mids + 1), axis=0)
                hi = new_hi
            tau = hi.to(tl.float32, bitcast=True)
            tau64 = tau.to(tl.float64)
            g_tau = g_hi

            # tie pass: the tokens with p == tau in id order (rank r): kept while the mass before
            # them, fp32(fp32(G + (r + 1) * tau) - tau), is < top_p
            n_before = tl.zeros((), tl.int32)
            k_kept = tl.zeros((), tl.int32)
            for start in range(0, V, BLOCK):
                idx = start + ar
                valid = idx < V
                p = tl.load(P + poff + idx, mask=valid, other=-1.0)
                tie = p == tau
                rank = n_before + tl.cumsum(tie.to(tl.int32), axis=0) - 1
                cum = (g_tau + (rank + 1).to(tl.float64) * tau64).to(tl.float32)
                kept_tie = tie & (cum - tau < top_p)
                n_before += tl.sum(tie.to(tl.int32), axis=0)
                k_kept += tl.sum(kept_tie.to(tl.int32), axis=0)
                if WRITE_MASK:
                    tl.store(MASK + poff + idx, ((p > tau) | kept_tie).to(tl.int8), mask=valid)
            mass = (g_tau + k_kept.to(tl.float64) * tau64).to(tl.float32)
            u = u0 * mass

            # search 2: largest bit pattern b in [bits(tau), bits(pmax)] with fp32(H(float(b))) > u,
            # H(x) = sum(p >= x) (all kept for x > tau); b = bits(tau) is taken as valid.
            lo = tau.to(tl.int32, bitcast=True)
            hi = pmax.to(tl.int32, bitcast=True)
            while lo < hi:
                span = (hi - lo).to(tl.int64)
                mids = (lo.to(tl.int64) + (span * kk + K) // (K + 1)).to(tl.int32)  # in (lo, hi]
                thr = mids.to(tl.float32, bitcast=True)
                h_t = tl.zeros((SBLOCK, K), tl.float64)
                for start in range(0, V, SBLOCK):
                    idx = start + sar
                    p = tl.load(P + poff + idx, mask=idx < V, other=-1.0)[:, None]
                    h_t += tl.where(p >= thr[None, :], p.to(tl.float64), 0.0)
                h = tl.sum(h_t, axis=0)
                ok = h.to(tl.float32) > u  # True..True False..False along the probes
                new_lo = tl.max(tl.where(ok, mids, lo), axis=0)
                hi = tl.min(tl.where(ok, hi, mids - 1), axis=0)
                lo = new_lo
            v = lo.to(tl.float32, bitcast=True)
            v64 = v.to(tl.float64)

            # G(v) and the number of tokens at v (the tie pass's values when v is tau)
            gvec = tl.zeros((BLOCK,), tl.float64)
            cnt = tl.zeros((), tl.int32)
            for start in range(0, V, BLOCK):
                idx = start + ar
                p = tl.load(P + poff + idx, mask=idx < V, other=-1.0)
                gvec += tl.where(p > v, p.to(tl.float64), 0.0)
                cnt += tl.sum((p == v).to(tl.int32), axis=0)
            at_tau = v == tau
            g_v = tl.where(at_tau, g_tau, tl.sum(gvec, axis=0))
            n_lim = tl.where(at_tau, k_kept, cnt)

            # the token at v of the first tie rank r with fp32(G(v) + (r + 1) * v) > u, else the
            # last one (the reference's clamp when rounding puts u at the kept mass)
            n_before = tl.zeros((), tl.int32)
            best = tl.full((), 2147483647, tl.int32)
            for start in range(0, V, BLOCK):
                idx = start + ar
                p = tl.load(P + poff + idx, mask=idx < V, other=-1.0)
                tie = p == v
                rank = n_before + tl.cumsum(tie.to(tl.int32), axis=0) - 1
                cum = (g_v + (rank + 1).to(tl.float64) * v64).to(tl.float32)
                hit = tie & (rank < n_lim) & ((cum > u) | (rank == n_lim - 1))
                best = tl.minimum(best, tl.min(tl.where(hit, idx, 2147483647), axis=0))
                n_before += tl.sum(tie.to(tl.int32), axis=0)
            tl.store(OUT + row, best.to(tl.int64))
        else:
            # no nucleus: inverse CDF in token-id order over all tokens
            tvec = tl.zeros((BLOCK,), tl.float64)
            for start in range(0, V, BLOCK):
                idx = start + ar
                tvec += tl.load(P + poff + idx, mask=idx < V, other=0.0).to(tl.float64)
            u = u0 * tl.sum(tvec, axis=0).to(tl.float32)
            carry = tl.zeros((), tl.float64)
            best = tl.zeros((), tl.int32) + (V - 1)  # the clamp when rounding puts u past the end
            for start in range(0, V, BLOCK):
                idx = start + ar
                valid = idx < V
                p = tl.load(P + poff + idx, mask=valid, other=0.0).to(tl.float64)
                cum = (carry + tl.cumsum(p, axis=0)).to(tl.float32)
                best = tl.minimum(best, tl.min(tl.where(valid & (cum > u), idx, V - 1), axis=0))
                carry += tl.sum(p, axis=0)
            tl.store(OUT + row, best.to(tl.int64))
            if WRITE_MASK:
                for start in range(0, V, BLOCK):
                    idx = start + ar
                    tl.store(MASK + poff + idx, tl.full((BLOCK,), 1, tl.int8), mask=idx < V)

    @triton.jit
    def registers(P, U, OUT, MASK, top_p, V,
                  NUCLEUS: tl.constexpr, WRITE_MASK: tl.constexpr, VPAD: tl.constexpr, K: tl.constexpr):
        # the same passes as ``blocked`` (same expressions, same order of decisions), on the row
        # loaded once into registers: every pass is a whole-row reduction, no block loop
        row = tl.program_id(0)
        poff = row.to(tl.int64) * V
        idx = tl.arange(0, VPAD)
        valid = idx < V
        u0 = tl.load(U + row)

        if NUCLEUS:
            # padding -1: below every probability. Only the fp32 row stays live across the passes: each
            # sum converts its where(...) to fp64 (the same values as converting p first), so that no
            # loop-invariant fp64 copy of the row (2 registers per element) gets hoisted out of the loops
            p = tl.load(P + poff + idx, mask=valid, other=-1.0)
            pmax = tl.max(p, axis=0)

            # search 1 (see ``blocked``): probe j's threshold is a scalar, each probe reduces the row;
            # the per-pass updates are the blocked kernel's min / max over the probes, taken one
            # probe at a time from neutral starting values (hi, lo: in the candidate set anyway;
            # -1: below every mass)
            lo = tl.zeros((), tl.int32)
            hi = pmax.to(tl.int32, bitcast=True)
            g_hi = tl.zeros((), tl.float64)  # G(pmax) = 0
            while lo < hi:
                span = (hi - lo).to(tl.int64)
                new_hi = hi
                new_lo = lo
                new_g = tl.full((), -1.0, tl.float64)
                for j in tl.static_range(1, K + 1):
                    mid = (lo.to(tl.int64) + span * j // (K + 1)).to(tl.int32)  # in [lo, hi)
                    thr = mid.to(tl.float32, bitcast=True)
                    above = p > thr
                    g = tl.sum(tl.where(above, p, 0.0).to(tl.float64), axis=0)
                    vd = tl.max(tl.where(above, -1.0, p), axis=0)
                    before = ((g + vd.to(tl.float64)).to(tl.float32) - vd).to(tl.float64)
                    before = tl.where(vd >= 0.0, before, g)
                    ok = before < top_p
                    new_hi = tl.minimum(new_hi, tl.where(ok, mid, hi))
                    new_g = tl.maximum(new_g, tl.where(ok, g, g_hi))
                    new_lo = tl.maximum(new_lo, tl.where(ok, lo, mid + 1))
                g_hi = new_g
                lo = new_lo
                hi = new_hi
            tau = hi.to(tl.float32, bitcast=True)
            tau64 = tau.to(tl.float64)
            g_tau = g_hi

            # tie pass: the kept tie ranks r are those with fp32(fp32(G + (r + 1) * tau) - tau) <
            # top_p; counted over the ranks themselves (r = 0..VPAD-1, n_tie <= V of them valid), so
            # no scan is needed unless the mask is written - the same per-rank test as ``blocked``
            tie = p == tau
            n_tie = tl.sum(tie.to(tl.int32), axis=0)
            r_cum = (g_tau + (idx + 1).to(tl.float64) * tau64).to(tl.float32)
            k_kept = tl.sum(((idx < n_tie) & (r_cum - tau < top_p)).to(tl.int32), axis=0)
            if WRITE_MASK:
                rank = tl.cumsum(tie.to(tl.int32), axis=0) - 1
                cum = (g_tau + (rank + 1).to(tl.float64) * tau64).to(tl.float32)
                kept_tie = tie & (cum - tau < top_p)
                tl.store(MASK + poff + idx, ((p > tau) | kept_tie).to(tl.int8), mask=valid)
            mass = (g_tau + k_kept.to(tl.float64) * tau64).to(tl.float32)
            u = u0 * mass

            # search 2 (see ``blocked``)
            lo = tau.to(tl.int32, bitcast=True)
            hi = pmax.to(tl.int32, bitcast=True)
            while lo < hi:
                span = (hi - lo).to(tl.int64)
                new_lo = lo
                new_hi = hi
                for j in tl.static_range(1, K + 1):
                    mid = (lo.to(tl.int64) + (span * j + K) // (K + 1)).to(tl.int32)  # in (lo, hi]
                    thr = mid.to(tl.float32, bitcast=True)
                    h = tl.sum(tl.where(p >= thr, p, 0.0).to(tl.float64), axis=0)
                    ok = h.to(tl.float32) > u
                    new_lo = tl.maximum(new_lo, tl.where(ok, mid, lo))
                    new_hi = tl.minimum(new_hi, tl.where(ok, hi, mid - 1))
                lo = new_lo
                hi = new_hi
            v = lo.to(tl.float32, bitcast=True)
            v64 = v.to(tl.float64)

            # G(v) and the number of tokens at v (the tie pass's values when v is tau)
            at_v = p == v
            at_tau = v == tau
            g_v = tl.where(at_tau, g_tau, tl.sum(tl.where(p > v, p, 0.0).to(tl.float64), axis=0))
            n_lim = tl.where(at_tau, k_kept, tl.sum(at_v.to(tl.int32), axis=0))

            # the first tie rank r < n_lim with fp32(G(v) + (r + 1) * v) > u, else the last one (the
            # reference's clamp), found over the ranks; then the token at v of that rank (a scan)
            r_cum = (g_v + (idx + 1).to(tl.float64) * v64).to(tl.float32)
            r_hit = (idx < n_lim) & ((r_cum > u) | (idx == n_lim - 1))
            r_best = tl.min(tl.where(r_hit, idx, 2147483647), axis=0)
            rank = tl.cumsum(at_v.to(tl.int32), axis=0) - 1
            best = tl.min(tl.where(at_v & (rank == r_best), idx, 2147483647), axis=0)
            tl.store(OUT + row, best.to(tl.int64))
        else:
            # no nucleus: inverse CDF in token-id order over all tokens
            p = tl.load(P + poff + idx, mask=valid, other=0.0).to(tl.float64)
            u = u0 * tl.sum(p, axis=0).to(tl.float32)
            cum = tl.cumsum(p, axis=0).to(tl.float32)
            # V - 1: the clamp when rounding puts u past the end
            best = tl.min(tl.where(valid & (cum > u), idx, V - 1), axis=0)
            tl.store(OUT + row, best.to(tl.int64))
            if WRITE_MASK:
                tl.store(MASK + poff + idx, tl.full((VPAD,), 1, tl.int8), mask=valid)

    return {"blocked": blocked, "registers": registers}


def kernel_variant(V: int, config: dict | None = None) -> str:
    """The kernel variant a row of V tokens runs: ``config["variant"]`` if given; else "blocked" when
    ``config`` sets a blocked-only key (BLOCK, SBLOCK: the benchmarks' block-size sweeps); else
    "registers" for V <= :data:`REGISTER_ROW_MAX`, "blocked" above."""
    config = config or {}
    variant = config.get("variant")
    if variant is None:
        if any(key in config for key in _BLOCKED_ONLY):
            return "blocked"
        return "registers" if V <= REGISTER_ROW_MAX else "blocked"
    if variant not in ("blocked", "registers"):
        raise ValueError(f"unknown nucleus kernel variant {variant!r} (blocked, registers)")
    return variant


def _launch(logits, u, temperature, top_p, want_mask, config=None):
    global _kernels
    if _kernels is None:
        _kernels = _build_kernels()
    # the very expression of the reference, so the probabilities are bit-identical to it
    probs = torch.softmax(logits.float() / temperature, dim=-1).contiguous()
    B, V = probs.shape
    out = torch.empty(B, dtype=torch.int64, device=probs.device)
    # never pass ``out`` twice: torch.compile treats every argument of a user Triton kernel it cannot
    # analyse as written, and two aliased written arguments are copied back in some order (a
    # compiled decode step drew out-of-range tokens on an H100 while MASK aliased OUT)
    mask = torch.empty(B, V if want_mask else 1, dtype=torch.int8, device=probs.device)
    variant = kernel_variant(V, config)
    overrides = {key: val for key, val in (config or {}).items() if key != "variant"}
    if variant == "registers":
        overrides = {key: val for key, val in overrides.items() if key not in _BLOCKED_ONLY}
        params = {**REGISTER_CONFIG, **overrides, "VPAD": 1 << (V - 1).bit_length()}  # next power of 2
    else:
        params = {**CONFIG, **overrides}
    _kernels[variant][(B,)](
        probs, u, out, mask, float(top_p), V, NUCLEUS=top_p < 1.0, WRITE_MASK=want_mask, **params,
    )
    return out, mask


def sample_next_triton(
    logits: torch.Tensor, keys: torch.Tensor, steps: torch.Tensor, temperature: float, top_p: float,
    *, return_mask: bool = False, config: dict | None = None,
):
    """Same arguments and result as :func:`recall2reason.sample.sampling.sample_next`:
    logits (B, V) (fp32/bf16/fp16) -> token ids (B,) int64, without sorting the vocabulary.
    ``return_mask`` (debugging, tests) also returns the kept set, (B, V) bool in token-id order;
    ``config`` (benchmarks) overrides entries of :data:`CONFIG` (blocked variant) or
    :data:`REGISTER_CONFIG`, and ``config["variant"]`` forces a variant (:func:`kernel_variant`)."""
    if temperature <= 0:
        tokens = logits.argmax(-1)
        if return_mask:
            return tokens, torch.nn.functional.one_hot(tokens, logits.shape[-1]).bool()
        return tokens
    u = uniform(keys, steps).to(logits.device)
    out, mask = _launch(logits, u, temperature, top_p, return_mask, config)
    return (out, mask.bool()) if return_mask else out


def nucleus_mask_triton(
    logits: torch.Tensor, temperature: float, top_p: float, *, config: dict | None = None,
) -> torch.Tensor:
    """(B, V) bool in token-id order: the kept set (nucleus) the kernel samples from (debug/tests);
    ``config`` as for :func:`sample_next_triton`."""
    zeros = torch.zeros(logits.shape[0], dtype=torch.float32, device=logits.device)
    return _launch(logits, zeros, temperature, top_p, True, config)[1].bool()
