"""Batch mode for OpenAI-compatible providers: requests go out as one JSONL file through the
provider's Batch API (`/v1/files`, `/v1/batches`), which charges about half the live price and
answers within its completion window.

Every answer goes through the same answer cache as live calls, before anyone uses it. A
submission is recorded in the cache file before the batch is created (with a token the batch
carries in its metadata) and its id right after, so a run killed at any point resumes polling
the batch it already submitted and never submits the same requests twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from synthmix.llm.backend import BackendError, CompletionRequest, CompletionResult, cache_key
from synthmix.llm.cache import AnswerCache
from synthmix.llm.openai_http import OpenAICompatibleBackend, _Retry

log = logging.getLogger("synthmix")

_SUBMISSIONS = """
CREATE TABLE IF NOT EXISTS batch_submissions (
    token TEXT PRIMARY KEY,
    batch_id TEXT,
    keys TEXT NOT NULL,
    collected INTEGER NOT NULL DEFAULT 0,
    submitted_at REAL NOT NULL
)
"""
_FINISHED = {"completed", "failed", "expired", "cancelled"}


@dataclass
class BatchStats:
    """What batch mode did, for the generation report."""

    batch_ids: list[str] = field(default_factory=list)
    submitted: int = 0
    answered: int = 0
    failed: int = 0
    resumed: int = 0
    waiting_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_ids": list(self.batch_ids),
            "submitted": self.submitted,
            "answered": self.answered,
            "failed": self.failed,
            "resumed": self.resumed,
            "waiting_s": round(self.waiting_s, 1),
        }


@dataclass
class BatchOutcome:
    """Per request, in order: its result, or why the batch gave none (to retry live or in the
    next round, as the caller chooses)."""

    results: list[CompletionResult | None]
    errors: dict[int, str]


class BatchClient:
    """Requests for one OpenAI-compatible `backend` answered through its Batch API."""

    def __init__(
        self,
        backend: OpenAICompatibleBackend,
        cache: AnswerCache,
        poll_s: float = 30.0,
        price_factor: float = 0.5,
        completion_window: str = "24h",
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.poll_s = poll_s
        self.price_factor = price_factor
        self.completion_window = completion_window
        self.on_poll = on_poll  # progress: the batch object at every poll
        self.stats = BatchStats()
        cache._db.execute(_SUBMISSIONS)

    def key(self, request: CompletionRequest) -> str:
        return cache_key(self.backend.cache_identity(), request)

    async def complete_many(self, requests: Sequence[CompletionRequest]) -> BatchOutcome:
        keys = [self.key(r) for r in requests]
        async with httpx.AsyncClient(
            base_url=self.backend.base_url, timeout=self.backend.timeout_s
        ) as client:
            await self._resume(client, set(keys))
            missing = {k: r for k, r in zip(keys, requests, strict=True) if k not in self.cache}
            errors_by_key: dict[str, str] = {}
            if missing:
                errors_by_key = await self._submit_and_collect(client, missing)
        results: list[CompletionResult | None] = []
        errors: dict[int, str] = {}
        for index, key in enumerate(keys):
            found = self.cache.get(key)
            results.append(found.to_result() if found is not None else None)
            if found is None:
                errors[index] = errors_by_key.get(key, "no answer in the batch output")
        return BatchOutcome(results, errors)

    # ----------------------------------------------------------------- submissions

    async def _resume(self, client: httpx.AsyncClient, wanted: set[str]) -> None:
        """Collect every earlier submission of these requests that was not collected yet."""
        rows = self.cache._db.execute(
            "SELECT token, batch_id, keys FROM batch_submissions WHERE collected = 0"
        ).fetchall()
        for token, batch_id, keys_json in rows:
            if not wanted & set(json.loads(keys_json)):
                continue
            batch_id = batch_id or await self._find_by_token(client, token)
            if batch_id is None:  # killed between recording and creating: nothing was sent
                self._forget(token)
                continue
            self.stats.resumed += 1
            log.info("resuming batch %s submitted by an earlier run", batch_id)
            await self._collect(client, token, batch_id)

    async def _submit_and_collect(
        self, client: httpx.AsyncClient, missing: dict[str, CompletionRequest]
    ) -> dict[str, str]:
        token = uuid.uuid4().hex
        self.cache._db.execute(
            "INSERT INTO batch_submissions VALUES (?, NULL, ?, 0, ?)",
            (token, json.dumps(sorted(missing)), time.time()),
        )
        endpoint = "/v1/chat/completions" if self.backend.chat else "/v1/completions"
        lines = [
            json.dumps(
                {
                    "custom_id": key,
                    "method": "POST",
                    "url": endpoint,
                    "body": self.backend._payload(request),
                },
                ensure_ascii=False,
            )
            for key, request in missing.items()
        ]
        uploaded = await self._call(
            client,
            "POST",
            "/v1/files",
            data={"purpose": "batch"},
            files={"file": ("requests.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))},
        )
        batch = await self._call(
            client,
            "POST",
            "/v1/batches",
            json={
                "input_file_id": uploaded["id"],
                "endpoint": endpoint,
                "completion_window": self.completion_window,
                "metadata": {"synthmix_token": token},
            },
        )
        self.cache._db.execute(
            "UPDATE batch_submissions SET batch_id = ? WHERE token = ?", (batch["id"], token)
        )
        self.stats.submitted += len(missing)
        return await self._collect(client, token, batch["id"])

    async def _find_by_token(self, client: httpx.AsyncClient, token: str) -> str | None:
        listing = await self._call(client, "GET", "/v1/batches", params={"limit": 100})
        for batch in listing.get("data", []):
            if (batch.get("metadata") or {}).get("synthmix_token") == token:
                return str(batch["id"])
        return None

    def _forget(self, token: str) -> None:
        self.cache._db.execute("DELETE FROM batch_submissions WHERE token = ?", (token,))

    # ------------------------------------------------------------------ collecting

    async def _collect(
        self, client: httpx.AsyncClient, token: str, batch_id: str
    ) -> dict[str, str]:
        """Poll until the batch is finished; cache every answer; errors by request key."""
        if batch_id not in self.stats.batch_ids:
            self.stats.batch_ids.append(batch_id)
        started = time.monotonic()
        batch = await self._call(client, "GET", f"/v1/batches/{batch_id}")
        while batch.get("status") not in _FINISHED:
            if self.on_poll is not None:
                self.on_poll(batch)
            await asyncio.sleep(self.poll_s)
            batch = await self._call(client, "GET", f"/v1/batches/{batch_id}")
        self.stats.waiting_s += time.monotonic() - started
        if self.on_poll is not None:
            self.on_poll(batch)
        errors: dict[str, str] = {}
        for line in await self._lines(client, batch.get("output_file_id")):
            self._take(line, errors)
        for line in await self._lines(client, batch.get("error_file_id")):
            errors[str(line.get("custom_id"))] = _line_error(line)
        if batch.get("status") != "completed":
            log.warning(
                "batch %s ended %s; its unanswered requests can be retried",
                batch_id,
                batch.get("status"),
            )
        self.cache._db.execute(
            "UPDATE batch_submissions SET collected = 1 WHERE token = ?", (token,)
        )
        self.stats.failed += len(errors)
        return errors

    def _take(self, line: dict[str, Any], errors: dict[str, str]) -> None:
        key = str(line.get("custom_id"))
        response = line.get("response") or {}
        if line.get("error") or response.get("status_code") != 200:
            errors[key] = _line_error(line)
            return
        try:
            result = self.backend.parse_body(response.get("body"), self.price_factor)
        except _Retry as exc:
            errors[key] = exc.reason
            return
        # Persist first, as for live calls: this answer is paid for.
        self.cache.put(key, result)
        self.stats.answered += 1

    async def _lines(self, client: httpx.AsyncClient, file_id: Any) -> list[dict[str, Any]]:
        if not file_id:
            return []
        response = await self._request(client, "GET", f"/v1/files/{file_id}/content")
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    # ------------------------------------------------------------------------ HTTP

    async def _call(self, client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> Any:
        return (await self._request(client, method, path, **kw)).json()

    async def _request(
        self, client: httpx.AsyncClient, method: str, path: str, **kw: Any
    ) -> httpx.Response:
        last = ""
        for attempt in range(self.backend.max_retries + 1):
            try:
                response = await client.request(method, path, headers=self.backend._headers(), **kw)
            except httpx.TransportError as exc:
                last = self.backend._scrub(str(exc)) or type(exc).__name__
            else:
                if response.status_code < 400:
                    return response
                last = f"HTTP {response.status_code}: {self.backend._server_message(response)}"
                if response.status_code not in (408, 409, 429) and response.status_code < 500:
                    break
            await asyncio.sleep(self.backend._backoff(attempt))
        raise BackendError(f"{self.backend.base_url}{path} (batch): {last}")


def _line_error(line: dict[str, Any]) -> str:
    error = line.get("error") or (line.get("response") or {}).get("body", {}).get("error") or {}
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "failed")
    return str(error)
