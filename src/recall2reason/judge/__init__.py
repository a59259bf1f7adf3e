"""Judge stage: classify the first completions of every problem into the paper's error taxonomy.

``python -m recall2reason.judge run ...`` (one model x eval set), ``... estimate ...`` (calls and
dollars before spending), ``... validate ...`` (a backend against the validation set's known
labels). Importing this package needs neither network nor an LLM SDK: the Snakefile calls
:func:`preflight` before any job runs (and warns with it in a dry run).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from recall2reason.judge.config import GEMINI_KEY_VARS, OPENAI_KEY_VAR, JudgeConfig

GEMINI_URL = "https://generativelanguage.googleapis.com"  # google-genai's default endpoint
PROBE_TIMEOUT_S = 5.0


def preflight(judge_cfg: dict, probe: bool = True) -> str | None:
    """Why the judge cannot run with this config, or None. Never prints or returns a key.

    Offline: the config, the API key variable, the SDK. With ``probe`` one request of at most
    PROBE_TIMEOUT_S to the server, from this machine: is it reachable, is the key accepted, does
    it serve ``judge.model``. A server that answers but cannot say (no model list, 5xx) passes.
    """
    from recall2reason.common import ConfigError, from_dict

    try:
        cfg = from_dict(JudgeConfig, judge_cfg, "judge")
    except ConfigError as e:
        return f"judge config: {e}"
    if cfg.backend == "gemini":
        key_var = next((v for v in GEMINI_KEY_VARS if os.environ.get(v)), None)
        if key_var is None:
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
    if not probe:
        return None
    return _probe_gemini(cfg, key_var) if cfg.backend == "gemini" else _probe_openai(cfg)


def _probe_gemini(cfg: JudgeConfig, key_var: str) -> str | None:
    base = (cfg.base_url or GEMINI_URL).rstrip("/")
    name = cfg.model if cfg.model.startswith("models/") else f"models/{cfg.model}"
    status, body = _get(f"{base}/v1beta/{name}", {"x-goog-api-key": os.environ[key_var]})
    where = "judge.base_url " + base if cfg.base_url else f"the Gemini API ({base})"
    if status is None:
        return (f"cannot reach {where} from this machine ({body}); the judge jobs need outbound HTTPS "
                "(or a reachable judge.base_url)")
    if status == 404:
        return f"judge.model {cfg.model!r}: {where} has no such model (GET {name}: HTTP 404)"
    if status in (400, 401, 403):
        return f"{where} rejected the API key in {key_var} (HTTP {status}: {_error_message(body)})"
    return None


def _probe_openai(cfg: JudgeConfig) -> str | None:
    base = cfg.base_url.rstrip("/")
    key = os.environ.get(OPENAI_KEY_VAR)
    status, body = _get(f"{base}/models", {"Authorization": f"Bearer {key}"} if key else {})
    if status is None:
        return f"judge.base_url {base}: cannot connect ({body}); start the server or fix judge.base_url"
    if status in (401, 403):
        return f"judge.base_url {base} rejected the key in {OPENAI_KEY_VAR} (HTTP {status}: {_error_message(body)})"
    if status == 200:
        try:
            served = [m["id"] for m in json.loads(body)["data"]]
        except (ValueError, KeyError, TypeError):
            return None  # not an OpenAI-style model list: nothing to check against
        if cfg.model not in served:
            return f"judge.model {cfg.model!r} is not served by judge.base_url {base} (it serves {served[:10]})"
    return None


def _get(url: str, headers: dict) -> tuple[int | None, str]:
    """(HTTP status, body) of a GET, or (None, why it failed) when no answer came."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=PROBE_TIMEOUT_S) as r:
            return r.status, r.read(1 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(1 << 16).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as e:
        return None, str(getattr(e, "reason", e))


def _error_message(body: str) -> str:
    try:
        return str(json.loads(body)["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return body[:200]


__all__ = ["JudgeConfig", "preflight"]
