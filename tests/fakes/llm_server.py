"""Fake Gemini and OpenAI-compatible judge servers on 127.0.0.1, scripted by markers.

The fake reads the "Generated Answer" out of the judge prompt and acts on markers in it:

  [[cat:NAME]]        answer with category NAME (is_correct false); default: No Error
  [[429]]             first request: HTTP 429, then normal answers
  [[500once]]         first request: HTTP 500, then normal answers
  [[500]]             always HTTP 500
  [[badjson]] / [[badjson-once]]      text that is not JSON (always / first request only)
  [[unknown]]         a category outside the taxonomy
  [[maxtokens]] / [[maxtokens-once]]  truncated JSON with finishReason MAX_TOKENS / "length"

Every request is logged as (answer text, HTTP status) so tests can count repeated calls.
``delay_s`` slows every answer down (for kill-and-resume tests).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GROUP = {
    "Key-Value Binding Error": "A", "State Tracking Error": "A", "Context Synthesis Error": "A",
    "Procedural Retrieval Error": "B", "Conceptual Knowledge Gap": "B",
    "Flawed Logical Synthesis": "C", "Calculation Error": "C", "Goal Interpretation Error": "C",
}  # fmt: skip


def generated_answer(prompt: str) -> str:
    m = re.search(r'Generated Answer: "(.*)"\n- Instructions -', prompt, re.S)
    return m.group(1) if m else ""


class FakeLLM:
    """Shared state and scripting; subclasses speak one wire protocol."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.log: list[tuple[str, int]] = []  # (generated answer, status) per answered request
        self.arrivals: list[str] = []  # generated answer per request, logged when it arrives
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.seen: Counter = Counter()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                status, payload = fake.handle(self.path, dict(self.headers), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def ok_answers(self) -> Counter:
        return Counter(a for a, s in self.log if s == 200)

    def script(self, prompt: str) -> tuple[int, str | None, bool]:
        """(HTTP status, answer text, truncated) for this request."""
        answer = generated_answer(prompt)
        with self.lock:
            n = self.seen[answer]
            self.seen[answer] += 1
            self.arrivals.append(answer)
        if self.delay_s:
            time.sleep(self.delay_s)
        if "[[429]]" in answer and n == 0:
            return 429, None, False
        if "[[500]]" in answer or ("[[500once]]" in answer and n == 0):
            return 500, None, False
        if "[[badjson]]" in answer or ("[[badjson-once]]" in answer and n == 0):
            return 200, "Sure! The answer is correct.", False
        category = "No Error"
        if m := re.search(r"\[\[cat:([^\]]+)\]\]", answer):
            category = m.group(1)
        if "[[unknown]]" in answer:
            category = "Banana Error"
        verdict = {
            "is_correct": category == "No Error",
            "error_category": category,
            "error_group": GROUP.get(category, "None"),
            "explanation": f"fake verdict: {category}",
            "erroneous_step_quote": None if category == "No Error" else answer[:40],
        }
        text = json.dumps(verdict)
        if "[[maxtokens]]" in answer or ("[[maxtokens-once]]" in answer and n == 0):
            return 200, text[: len(text) // 2], True
        return 200, text, False

    def record(self, prompt: str, status: int, headers: dict, body: dict) -> None:
        with self.lock:
            self.log.append((generated_answer(prompt), status))
            self.bodies.append(body)
            self.headers.append(headers)


class FakeGemini(FakeLLM):
    """POST /v1/models/<model>:generateContent, as google-genai sends it."""

    def handle(self, path: str, headers: dict, body: dict):
        m = re.fullmatch(r"/v1(?:beta)?/models/([^:/]+):generateContent", path)
        if not m:
            return 404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}}
        prompt = "".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))
        status, text, truncated = self.script(prompt)
        self.record(prompt, status, headers, body)
        if status != 200:
            name = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}[status]
            return status, {"error": {"code": status, "message": f"fake {status}", "status": name}}
        return 200, {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": "MAX_TOKENS" if truncated else "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": len(prompt) // 4,
                "candidatesTokenCount": len(text) // 4,
                "totalTokenCount": len(prompt) // 4 + len(text) // 4,
            },
            "modelVersion": m.group(1),
        }


class FakeOpenAI(FakeLLM):
    """POST /v1/chat/completions, as the openai SDK sends it."""

    def handle(self, path: str, headers: dict, body: dict):
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}", "type": "not_found"}}
        prompt = "".join(m.get("content", "") for m in body.get("messages", []))
        status, text, truncated = self.script(prompt)
        self.record(prompt, status, headers, body)
        if status != 200:
            return status, {"error": {"message": f"fake {status}", "type": "server_error", "code": status}}
        return 200, {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "length" if truncated else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": len(prompt) // 4,
                "completion_tokens": len(text) // 4,
                "total_tokens": len(prompt) // 4 + len(text) // 4,
            },
        }
