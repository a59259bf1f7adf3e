"""Judge stage: classify the first completions of every problem into the paper's error taxonomy.

``python -m recall2reason.judge run ...`` (one model x eval set), ``... estimate ...`` (calls and
dollars before spending), ``... validate ...`` (a backend against the validation set's known labels). Importing this package needs neither network nor an LLM SDK: the
Snakefile calls :func:`preflight` at parse time.
"""

from __future__ import annotations

import os

from recall2reason.judge.config import GEMINI_KEY_VARS, JudgeConfig


def preflight(judge_cfg: dict) -> str | None:
    """Why the judge cannot run with this config, or None. Never prints or returns a key."""
    from recall2reason.common import ConfigError, from_dict

    try:
        cfg = from_dict(JudgeConfig, judge_cfg, "judge")
    except ConfigError as e:
        return f"judge config: {e}"
    if cfg.backend == "gemini":
        if not any(os.environ.get(v) for v in GEMINI_KEY_VARS):
            return (
                f"judge.backend is 'gemini' but neither {' nor '.join(GEMINI_KEY_VARS)} is set in the environment. "
                "Export a key (https://aistudio.google.com/apikey), or judge with a local model "
                "(judge.backend: openai, judge.base_url: http://localhost:8000/v1) or offline (judge.backend: rules)."
            )
        module = "google.genai"
    elif cfg.backend == "openai":
        module = "openai"
    else:
        return None
    import importlib.util

    if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
        return f"judge.backend is {cfg.backend!r} but the Python package {module!r} is not installed (pip install 'recall2reason[judge]')"
    return None


__all__ = ["JudgeConfig", "preflight"]
