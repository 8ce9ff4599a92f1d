"""A loopback server speaking the OpenAI Batch API as documented (files upload, batch create,
retrieve, list, file content), for tests of batch mode, and the live completion endpoints
(failed batch lines retried live). Answers depend only on the request."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llm_server import completion_body


class BatchServer:
    def __init__(self, answer: Callable[[dict[str, Any]], str]) -> None:
        self.answer = answer
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.request_lines = 0  # every request line ever submitted, counted server-side
        self.polls_until_done = 1
        self.fail_ids: set[str] = set()  # custom_ids answered with an error line
        self.expire = False  # finish as "expired" with only part of the lines answered
        self.busy = 0  # answer this many of the next requests with 503 (a retry each)
        self.submissions = 0  # batches created
        self.custom_ids: list[str] = []  # of every request line submitted, in order
        self.uploads: list[list[str]] = []  # the same, per uploaded file
        self.fail_once: Callable[[dict[str, Any]], bool] | None = None  # by request body
        self.failed_once: set[str] = set()
        self.expire_batches = 0  # the next this many batches end "expired"
        self.live_calls = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{len(self.files) + len(self.batches) + 1}"

    def _finish(self, batch: dict[str, Any]) -> None:
        lines = self.files[batch["input_file_id"]].decode("utf-8").splitlines()
        out, err = [], []
        expire = self.expire or self.expire_batches > 0
        self.expire_batches -= 1
        for number, line in enumerate(lines):
            item = json.loads(line)
            if expire and number % 2:
                continue  # expired before this line ran: in neither file
            first_failure = (
                self.fail_once is not None
                and item["custom_id"] not in self.failed_once
                and self.fail_once(item["body"])
            )
            if first_failure:
                self.failed_once.add(item["custom_id"])
            if item["custom_id"] in self.fail_ids or first_failure:
                err.append(
                    {
                        "custom_id": item["custom_id"],
                        "response": None,
                        "error": {"code": "server_error", "message": "scripted failure"},
                    }
                )
                continue
            body = completion_body(item["body"], self.answer(item["body"]))
            out.append(
                {
                    "custom_id": item["custom_id"],
                    "error": None,
                    "response": {"status_code": 200, "body": body},
                }
            )
        for kind, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                file_id = self._new_id("file")
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[kind] = file_id
        batch["status"] = "expired" if expire else "completed"
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(err)}

    def _busy(self) -> bool:
        with self._lock:
            if self.busy > 0:
                self.busy -= 1
                return True
        return False

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, payload: Any, status: int = 200, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if server._busy():
                    return self._send({"error": {"message": "busy"}}, 503)
                with server._lock:
                    if self.path == "/v1/files":
                        content = re.search(
                            rb'filename="[^"]*"[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n(.*?)\r\n--',
                            body,
                            re.S,
                        )
                        assert content is not None and b"batch" in body
                        file_id = server._new_id("file")
                        server.files[file_id] = content.group(1)
                        server.request_lines += len(content.group(1).splitlines())
                        ids = [
                            json.loads(line)["custom_id"]
                            for line in content.group(1).decode("utf-8").splitlines()
                        ]
                        server.custom_ids += ids
                        server.uploads.append(ids)
                        return self._send({"id": file_id, "object": "file", "purpose": "batch"})
                    if self.path == "/v1/batches":
                        request = json.loads(body)
                        batch_id = server._new_id("batch")
                        server.submissions += 1
                        lines = len(server.files[request["input_file_id"]].splitlines())
                        server.batches[batch_id] = {
                            "id": batch_id,
                            "object": "batch",
                            "status": "validating",
                            "input_file_id": request["input_file_id"],
                            "endpoint": request["endpoint"],
                            "polls": 0,
                            "metadata": request.get("metadata") or {},
                            "output_file_id": None,
                            "error_file_id": None,
                            "request_counts": {"total": lines, "completed": 0, "failed": 0},
                        }
                        return self._send(server.batches[batch_id])
                    if self.path in ("/v1/chat/completions", "/v1/completions"):
                        server.live_calls += 1
                        request = json.loads(body)
                        return self._send(completion_body(request, server.answer(request)))
                self._send({"error": {"message": "not found"}}, 404)

            def do_GET(self) -> None:
                if server._busy():
                    return self._send({"error": {"message": "busy"}}, 503)
                with server._lock:
                    if self.path.startswith("/v1/batches?") or self.path == "/v1/batches":
                        return self._send({"object": "list", "data": list(server.batches.values())})
                    found = re.fullmatch(r"/v1/batches/([\w-]+)", self.path)
                    if found and found.group(1) in server.batches:
                        batch = server.batches[found.group(1)]
                        batch["polls"] += 1
                        if batch["status"] not in ("completed", "expired"):
                            batch["status"] = "in_progress"
                            if batch["polls"] > server.polls_until_done:
                                server._finish(batch)
                        return self._send(batch)
                    found = re.fullmatch(r"/v1/files/([\w-]+)/content", self.path)
                    if found and found.group(1) in server.files:
                        return self._send(None, raw=server.files[found.group(1)])
                self._send({"error": {"message": "not found"}}, 404)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def serve_batches(answer: Callable[[dict[str, Any]], str]) -> Iterator[BatchServer]:
    server = BatchServer(answer)
    threading.Thread(target=server._httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server._httpd.shutdown()
        server._httpd.server_close()
