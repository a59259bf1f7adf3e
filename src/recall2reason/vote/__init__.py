"""vote: final-answer extraction (the last ``\\boxed{}`` / ``The answer is`` / ``####`` ending,
parsed by math-verify: :func:`recall2reason.vote.extract.extract_answer`), answer clustering
and majority-vote curves.

Reads an eval set and the sample part files of one (model, dataset); writes
``<dataset>.problems.jsonl`` (per-problem groups and per-sample correctness, read by the
judge), ``<dataset>.curves.csv`` (maj@k, first-k majority and pass@k for k = 1..n with 95 %
bootstrap intervals, read by the report) and ``<dataset>.breakdown.csv`` (per subject /
level). Run ``python -m recall2reason.vote --help``.

Only light modules are imported here; math-verify is loaded when answers are parsed.
"""

from recall2reason.vote.endings import last_boxed
from recall2reason.vote.extract import EOS_MARKERS, cut_completion

__all__ = ["EOS_MARKERS", "cut_completion", "last_boxed"]
