"""Batch mode for OpenAI-compatible providers: requests go out as one JSONL file through the
provider's Batch API (`/v1/files`, `/v1/batches`), which charges about half the live price and
answers within its completion window.

Every answer goes through the same answer cache as live calls, before anyone uses it. A
submission is recorded in the cache file before the batch is created (with a token the batch
carries in its metadata) and its id right after, so a run killed at any point resumes polling
the batch it already submitted and never submits the same requests twice. The HTTP calls are
the backend's own (`call_api`): same key handling, retries and fault counts as live calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from synthmix.llm.backend import CompletionRequest, CompletionResult, cache_key, canonical_json
from synthmix.llm.cache import AnswerCache
from synthmix.llm.openai_http import MalformedAnswer, OpenAICompatibleBackend

log = logging.getLogger("synthmix")

_FINISHED = {"completed", "failed", "expired", "cancelled"}


@dataclass
class BatchStats:
    """What batch mode did, for the generation report. `cost` is at batch prices (what the
    provider charges for the answered lines); `cached`: requests answered from the cache
    without a batch."""

    batch_ids: list[str] = field(default_factory=list)
    submitted: int = 0
    answered: int = 0
    failed: int = 0
    cached: int = 0
    resumed: int = 0
    waiting_s: float = 0.0
    cost: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_ids": list(self.batch_ids),
            "submitted": self.submitted,
            "answered": self.answered,
            "failed": self.failed,
            "cached": self.cached,
            "resumed": self.resumed,
            "waiting_s": round(self.waiting_s, 1),
            "cost": self.cost,
        }


@dataclass
class BatchOutcome:
    """Per request, in order: its result, or why the batch gave none (to retry live or in the
    next round, as the caller chooses)."""

    results: list[CompletionResult | None]
    errors: dict[int, str]


class BatchClient:
    """Requests for one OpenAI-compatible `backend` answered through its Batch API.

    `on_poll` gets the provider's batch object at every poll (state, `request_counts`)."""

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
        self.on_poll = on_poll
        self.stats = BatchStats()
        self.scope = canonical_json(backend.cache_identity())

    def key(self, request: CompletionRequest) -> str:
        return cache_key(self.backend.cache_identity(), request)

    async def complete_many(self, requests: Sequence[CompletionRequest]) -> BatchOutcome:
        """Answers from the cache, then from batches an earlier (killed) run submitted, then
        from one new batch of the rest. A result is `cached` when it was in the cache before
        this call."""
        keys = [self.key(r) for r in requests]
        before = {k for k in set(keys) if k in self.cache}
        self.stats.cached += len(before)
        await self._resume(dict(zip(keys, requests, strict=True)))
        missing = {k: r for k, r in zip(keys, requests, strict=True) if k not in self.cache}
        errors_by_key = await self._submit_and_collect(missing) if missing else {}
        results: list[CompletionResult | None] = []
        errors: dict[int, str] = {}
        for index, key in enumerate(keys):
            found = self.cache.get(key)
            if found is None:
                results.append(None)
                errors[index] = errors_by_key.get(key, "no answer in the batch output")
            else:
                results.append(replace(found.to_result(), cached=key in before))
        return BatchOutcome(results, errors)

    # ----------------------------------------------------------------- submissions

    async def _resume(self, known: dict[str, CompletionRequest]) -> None:
        """Collect every batch of this backend that an earlier run submitted and did not
        collect: it is paid for, whichever round of this run asks for its answers."""
        for submission in self.cache.open_submissions(self.scope):
            batch_id = submission.batch_id or await self._find_by_token(submission.token)
            if batch_id is None:  # killed between recording and creating: nothing was sent
                self.cache.forget_submission(submission.token)
                continue
            self.stats.resumed += 1
            log.info("resuming batch %s submitted by an earlier run", batch_id)
            await self._collect(submission.token, batch_id, known)

    async def _submit_and_collect(self, missing: dict[str, CompletionRequest]) -> dict[str, str]:
        token = uuid.uuid4().hex
        self.cache.record_submission(token, list(missing), self.scope)
        endpoint = "/v1/chat/completions" if self.backend.chat else "/v1/completions"
        lines = [
            json.dumps(
                {
                    "custom_id": key,
                    "method": "POST",
                    "url": endpoint,
                    "body": self.backend.payload(request),
                },
                ensure_ascii=False,
            )
            for key, request in missing.items()
        ]
        uploaded = await self._json(
            "POST",
            "/v1/files",
            data={"purpose": "batch"},
            files={"file": ("requests.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))},
        )
        batch = await self._json(
            "POST",
            "/v1/batches",
            json={
                "input_file_id": uploaded["id"],
                "endpoint": endpoint,
                "completion_window": self.completion_window,
                "metadata": {"synthmix_token": token},
            },
        )
        self.cache.submission_created(token, str(batch["id"]))
        self.stats.submitted += len(missing)
        log.info("submitted batch %s: %d requests", batch["id"], len(missing))
        return await self._collect(token, str(batch["id"]), dict(missing))

    async def _find_by_token(self, token: str) -> str | None:
        listing = await self._json("GET", "/v1/batches", params={"limit": 100})
        for batch in listing.get("data", []):
            if (batch.get("metadata") or {}).get("synthmix_token") == token:
                return str(batch["id"])
        return None

    # ------------------------------------------------------------------ collecting

    async def _collect(
        self,
        token: str,
        batch_id: str,
        requests: dict[str, CompletionRequest] | None = None,
    ) -> dict[str, str]:
        """Poll until the batch is finished; cache every answer; errors by request key."""
        if batch_id not in self.stats.batch_ids:
            self.stats.batch_ids.append(batch_id)
        started = time.monotonic()
        batch = await self._json("GET", f"/v1/batches/{batch_id}")
        while batch.get("status") not in _FINISHED:
            if self.on_poll is not None:
                self.on_poll(batch)
            await asyncio.sleep(self.poll_s)
            batch = await self._json("GET", f"/v1/batches/{batch_id}")
        self.stats.waiting_s += time.monotonic() - started
        if self.on_poll is not None:
            self.on_poll(batch)
        errors: dict[str, str] = {}
        for line in await self._lines(batch.get("output_file_id")):
            self._take(line, errors, requests or {})
        for line in await self._lines(batch.get("error_file_id")):
            errors[str(line.get("custom_id"))] = _line_error(line)
        if batch.get("status") != "completed":
            log.warning(
                "batch %s ended %s; its unanswered requests can be retried",
                batch_id,
                batch.get("status"),
            )
        self.cache.submission_collected(token)
        self.stats.failed += len(errors)
        return errors

    def _take(
        self, line: dict[str, Any], errors: dict[str, str], requests: dict[str, CompletionRequest]
    ) -> None:
        key = str(line.get("custom_id"))
        response = line.get("response") or {}
        if line.get("error") or response.get("status_code") != 200:
            errors[key] = _line_error(line)
            return
        try:
            result = self.backend.parse_body(response.get("body"), self.price_factor)
        except MalformedAnswer as exc:
            errors[key] = str(exc)
            return
        # Persist first, as for live calls: this answer is paid for.
        self.cache.put(key, result, requests.get(key))
        self.stats.answered += 1
        self.stats.cost += result.cost

    async def _lines(self, file_id: Any) -> list[dict[str, Any]]:
        if not file_id:
            return []
        response = await self.backend.call_api("GET", f"/v1/files/{file_id}/content")
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.backend.call_api(method, path, **kwargs)).json()


def _line_error(line: dict[str, Any]) -> str:
    error = line.get("error") or (line.get("response") or {}).get("body", {}).get("error") or {}
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "failed")
    return str(error)
