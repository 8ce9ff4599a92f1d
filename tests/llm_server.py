"""A scripted OpenAI-compatible server on 127.0.0.1 for tests of the LLM client.

Replies are taken from `script` (in request order) while it lasts, then from `answer`
(a function of the request body), so a test can say "first a 429, then a 500, then
normal answers". The server counts requests and the most requests in flight at once.
With `logprobs` (alternatives per answer token, a function of the body and the answer)
it returns log-probabilities to requests that ask for them, in the wire format of the
endpoint asked (chat or completions).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from synthmix.data.labeled import LabeledData


@dataclass
class Reply:
    """One scripted reply. `body=None` gives a normal answer; a str/bytes body is sent as
    is (for malformed JSON); `delay_s` sleeps first (a hang, when above the timeout)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def prompt_text(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(m["content"] for m in body["messages"])
    return str(body.get("prompt", ""))


Alternatives = list[dict[str, float]]
"""Per answer token, token -> log-probability; the most likely one is the sampled token."""


def completion_body(
    body: dict[str, Any],
    text: str,
    alternatives: Alternatives | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """An OpenAI-style answer with usage (about 3 characters per token); `alternatives`
    become the choice's `logprobs` in the format of the endpoint the body was sent to."""
    usage = {
        "prompt_tokens": len(prompt_text(body)) // 3,
        "completion_tokens": len(text) // 3,
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    chat = "messages" in body
    if chat:
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}}
    else:
        choice = {"index": 0, "text": text}
    if alternatives is not None:
        choice["logprobs"] = _wire_logprobs(alternatives, chat)
    choice["finish_reason"] = finish_reason
    return {"id": "cmpl-test", "model": body.get("model"), "choices": [choice], "usage": usage}


def _wire_logprobs(alternatives: Alternatives, chat: bool) -> dict[str, Any]:
    sampled = [max(top, key=top.__getitem__) for top in alternatives]
    if chat:
        content = [
            {
                "token": token,
                "logprob": top[token],
                "bytes": list(token.encode("utf-8")),
                "top_logprobs": [
                    {"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))}
                    for t, v in top.items()
                ],
            }
            for token, top in zip(sampled, alternatives, strict=True)
        ]
        return {"content": content, "refusal": None}
    return {
        "tokens": sampled,
        "token_logprobs": [top[t] for t, top in zip(sampled, alternatives, strict=True)],
        "top_logprobs": [dict(top) for top in alternatives],
        "text_offset": [0] * len(sampled),
    }


LogprobsFn = Callable[[dict[str, Any], str], Alternatives]


class ScriptedServer:
    def __init__(
        self,
        answer: Callable[[dict[str, Any]], str],
        delay_s: float = 0.0,
        logprobs: LogprobsFn | None = None,
    ) -> None:
        self.answer = answer
        self.logprobs = logprobs
        self.delay_s = delay_s  # for normal answers: lets a test kill a run mid-way
        self.script: list[Reply] = []
        self.bodies: list[dict[str, Any]] = []
        self.auth_headers: list[str] = []
        self.paths: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # hung handlers must not block shutdown
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.bodies)

    def _next(self, body: dict[str, Any], path: str, auth: str) -> Reply:
        with self._lock:
            self.bodies.append(body)
            self.paths.append(path)
            self.auth_headers.append(auth)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.script:
                return self.script.pop(0)
        return Reply(delay_s=self.delay_s)

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            counted = False  # this request is in the server's in_flight count

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = server._next(body, self.path, self.headers.get("Authorization", ""))
                self.counted = True
                try:
                    time.sleep(reply.delay_s)
                    self._send(reply, body)
                except OSError:
                    pass  # the client gave up (timeout): nobody to answer
                finally:
                    self._done()

            def _done(self) -> None:
                if self.counted:
                    self.counted = False
                    server._done()

            def _send(self, reply: Reply, body: dict[str, Any]) -> None:
                payload = reply.body
                if payload is None:
                    text = server.answer(body)
                    alternatives = None
                    if server.logprobs is not None and body.get("logprobs"):
                        alternatives = server.logprobs(body, text)
                    payload = completion_body(body, text, alternatives)
                data = payload
                if isinstance(data, dict):
                    data = json.dumps(data, ensure_ascii=False)
                raw = data.encode("utf-8") if isinstance(data, str) else data
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                # Out of flight before the answer goes out: a client that reads it and sends
                # its next request at once must not find this one still counted.
                self._done()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def serve(
    answer: Callable[[dict[str, Any]], str],
    delay_s: float = 0.0,
    logprobs: LogprobsFn | None = None,
) -> Iterator[ScriptedServer]:
    server = ScriptedServer(answer, delay_s, logprobs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------ realistic answers

_OPENERS = ("Честно говоря, ", "Представляешь, ", "Вчера ", "Кажется, ", "Ну вот, ", "Опять ")


def _variant(sentence: str, salt: int) -> str:
    # Real CEDR sentences, changed enough that they are not copies (leaks) of real data.
    sentence = sentence.strip()
    return _OPENERS[salt % len(_OPENERS)] + sentence[:1].lower() + sentence[1:]


def cedr_answerer(
    data: LabeledData,
    per_answer: int = 5,
    pool_size: int = 40,
    leak: bool = False,
    names: dict[str, str] | None = None,
) -> Callable[[dict[str, Any]], str]:
    """Answers like a chat model asked for `per_answer` texts of one class: a preamble and
    a numbered list of CEDR sentences of the class named in the prompt (by label or by a
    display name in `names`, display name -> label). Deterministic in the prompt, so
    reruns see the same answers. Each class draws from `pool_size` variants only, so long
    runs produce duplicates, as real models do. The variants differ from `data`'s
    sentences by an opening phrase: near-copies of them, so pass sentences the generator
    does not treat as real (e.g. the test split); `leak=True` returns them unchanged."""
    by_class: dict[str, list[str]] = {}
    for text, label in zip(data.texts, data.labels, strict=True):
        pool = by_class.setdefault(label, [])
        if len(pool) < pool_size and "\n" not in text and len(text) < 200:
            pool.append(text if leak else _variant(text, len(pool)))

    def answer(body: dict[str, Any]) -> str:
        text = prompt_text(body)
        aliases = {**{c: c for c in by_class}, **(names or {})}
        label = next((c for n, c in aliases.items() if re.search(rf"[«\"]{n}[»\"]", text)), None)
        if label is None:
            return "Не понимаю задание."
        digest = int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)
        pool = by_class[label]
        items = [pool[(digest >> (8 * i)) % len(pool)] for i in range(per_answer)]
        lines = [f"{i}. {item}" for i, item in enumerate(items, start=1)]
        return f"Вот {per_answer} примеров:\n\n" + "\n".join(lines)

    return answer
