"""Fake Gemini and OpenAI-compatible judge servers on 127.0.0.1, scripted by markers.

The fake reads the "Generated Answer" out of the judge prompt and acts on markers in it:

  [[cat:NAME]]        answer with category NAME (is_correct false); default: No Error
  [[flip:NAME]]       category NAME on the 1st, 3rd, ... request of this answer, No Error on the others
  [[429]]             first request: HTTP 429, then normal answers
  [[500once]]         first request: HTTP 500, then normal answers
  [[500]]             always HTTP 500
  [[badjson]] / [[badjson-once]]      text that is not JSON (always / first request only)
  [[unknown]]         a category outside the taxonomy
  [[maxtokens]] / [[maxtokens-once]]  truncated JSON with finishReason MAX_TOKENS / "length"

Every request is logged as (answer text, HTTP status) so tests can count repeated calls.
``delay_s`` slows every answer down (for kill-and-resume tests).

The model routes the judge's preflight asks (FakeGemini: GET ``models/<model>``, FakeOpenAI:
GET ``/v1/models``) serve ``models`` (None: FakeGemini knows any name, FakeOpenAI has no list)
and answer 400 / 401 to any key but ``key`` (None: every key is good).

FakeGemini also speaks the Batch API as google-genai sends it: POST
``models/<model>:batchGenerateContent`` (inlined requests) creates ``batches/fake-N``; each GET
``batches/fake-N`` moves it PENDING -> RUNNING -> SUCCEEDED (the answers, scripted as above, are
made then and returned in ``metadata.output.inlinedResponses``; a 429 / 500 becomes that
request's ``error``). A job whose requests carry [[batchfail]] / [[batchexpire]] /
[[batchcancel]] ends FAILED / EXPIRED / CANCELLED instead. ``batch_hold`` (True, or a set of
job names) keeps jobs RUNNING until it is set back to False. ``batch_creates`` and ``batch_gets`` count the calls.
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


def _header(headers: dict, name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def generated_answer(prompt: str) -> str:
    m = re.search(r'Generated Answer: "(.*)"\n- Instructions -', prompt, re.S)
    return m.group(1) if m else ""


class FakeLLM:
    """Shared state and scripting; subclasses speak one wire protocol."""

    def __init__(self, delay_s: float = 0.0, models: set[str] | None = None, key: str | None = None):
        self.delay_s = delay_s
        self.models, self.key = models, key
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

            def reply(self, status: int, payload) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self.reply(*fake.handle_get(self.path, dict(self.headers)))

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                self.reply(*fake.handle(self.path, dict(self.headers), body))

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

    def handle_get(self, path: str, headers: dict):
        return 404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}}

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
        if (m := re.search(r"\[\[flip:([^\]]+)\]\]", answer)) and n % 2 == 0:
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
    """POST /v1/models/<model>:generateContent (and the Batch API routes), as google-genai sends them."""

    def __init__(self, delay_s: float = 0.0, models: set[str] | None = None, key: str | None = None):
        super().__init__(delay_s, models, key)
        self.jobs: dict[str, dict] = {}  # job id -> {"model", "requests", "gets", "state", "output"}
        self.batch_creates: list[dict] = []  # bodies of the create calls
        self.batch_gets: Counter = Counter()  # job name -> GET calls
        self.batch_hold = False

    def handle(self, path: str, headers: dict, body: dict):
        if b := re.fullmatch(r"/v1(?:beta)?/models/([^:/]+):batchGenerateContent", path):
            return self.create_batch(b.group(1), headers, body)
        m = re.fullmatch(r"/v1(?:beta)?/models/([^:/]+):generateContent", path)
        if not m:
            return 404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}}
        prompt = "".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))
        status, payload = self.answer(prompt, headers, body, m.group(1))
        return status, payload

    def answer(self, prompt: str, headers: dict, body: dict, model: str):
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
            "modelVersion": model,
        }

    def get_model(self, model: str, headers: dict):
        if self.key is not None and _header(headers, "x-goog-api-key") != self.key:
            return 400, {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                   "status": "INVALID_ARGUMENT"}}  # fmt: skip
        if self.models is not None and model not in self.models:
            return 404, {"error": {"code": 404, "message": f"models/{model} is not found", "status": "NOT_FOUND"}}
        return 200, {"name": f"models/{model}", "displayName": model}

    # -- Batch API ------------------------------------------------------------------------------
    def create_batch(self, model: str, headers: dict, body: dict):
        batch = body.get("batch", {})
        requests = batch.get("inputConfig", {}).get("requests", {}).get("requests", [])
        if not requests:
            return 400, {"error": {"code": 400, "message": "no inlined requests", "status": "INVALID_ARGUMENT"}}
        with self.lock:
            self.batch_creates.append(body)
            job_id = f"fake-{len(self.batch_creates)}"
            self.jobs[job_id] = {"model": model, "requests": requests, "gets": 0, "state": "BATCH_STATE_PENDING",
                                 "output": None, "display": batch.get("displayName"), "headers": headers}  # fmt: skip
        return 200, self.operation(job_id)

    def operation(self, job_id: str) -> dict:
        job = self.jobs[job_id]
        meta = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            "model": f"models/{job['model']}",
            "displayName": job["display"],
            "state": job["state"],
            "createTime": "2025-01-01T00:00:00Z",
            "name": f"batches/{job_id}",
        }
        if job["output"] is not None:
            meta["output"] = job["output"]
        op = {"name": f"batches/{job_id}", "metadata": meta}
        if job["state"] in ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"):
            op["done"] = True
            if job["state"] != "BATCH_STATE_SUCCEEDED":
                op["error"] = {"code": 13, "message": f"fake job {job['state']}"}
        return op

    def finish(self, job: dict) -> None:
        prompts = ["".join(p.get("text", "") for c in r["request"].get("contents", []) for p in c.get("parts", []))
                   for r in job["requests"]]  # fmt: skip
        everything = " ".join(generated_answer(p) for p in prompts)
        for marker, state in (("[[batchfail]]", "FAILED"), ("[[batchexpire]]", "EXPIRED"), ("[[batchcancel]]", "CANCELLED")):
            if marker in everything:
                job["state"] = f"BATCH_STATE_{state}"
                return
        out = []
        for r, prompt in zip(job["requests"], prompts):
            status, payload = self.answer(prompt, job["headers"], r["request"], job["model"])
            entry = {"response": payload} if status == 200 else {"error": payload["error"]}
            if "metadata" in r:
                entry["metadata"] = r["metadata"]
            out.append(entry)
        job["output"] = {"inlinedResponses": {"inlinedResponses": out}}
        job["state"] = "BATCH_STATE_SUCCEEDED"

    def handle_get(self, path: str, headers: dict):
        if model := re.fullmatch(r"/v1(?:beta)?/models/([^:/?]+)", path):
            return self.get_model(model.group(1), headers)
        m = re.fullmatch(r"/v1(?:beta)?/batches/([^/?]+)", path)
        if not m or m.group(1) not in self.jobs:
            return 404, {"error": {"code": 404, "message": f"no batch {path}", "status": "NOT_FOUND"}}
        finish = False
        with self.lock:
            self.batch_gets[f"batches/{m.group(1)}"] += 1
            job = self.jobs[m.group(1)]
            job["gets"] += 1
            held = self.batch_hold is True or f"batches/{m.group(1)}" in (self.batch_hold or ())
            if job["state"] == "BATCH_STATE_PENDING" and job["gets"] >= 2:  # the first GET still sees PENDING
                job["state"] = "BATCH_STATE_RUNNING"
            elif job["state"] == "BATCH_STATE_RUNNING" and not held and not job.get("finishing"):
                job["finishing"] = finish = True
        if finish:
            self.finish(job)  # takes the lock itself (script / record)
        return 200, self.operation(m.group(1))


class FakeOpenAI(FakeLLM):
    """POST /v1/chat/completions, as the openai SDK sends it."""

    def handle_get(self, path: str, headers: dict):
        if path != "/v1/models" or self.models is None:
            return 404, {"error": {"message": f"no route {path}", "type": "not_found"}}
        if self.key is not None and _header(headers, "authorization") != f"Bearer {self.key}":
            return 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        return 200, {"object": "list", "data": [{"id": m, "object": "model"} for m in sorted(self.models)]}

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
