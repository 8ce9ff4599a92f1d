"""Generation rounds through a provider's Batch API (`synthmix generate --batch`).

Each class (of each run of a plan) is a participant that asks for its round's calls and
waits; once every participant still running has asked, all their calls go out as one batch,
so a plan with six classes and three strategies waits for one batch per round, not eighteen.
Lines the batch did not answer (failed, expired) are retried live at once
(`failed="live"`, full price) or left to the next round's batch (`failed="next-round"`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from synthmix.core.errors import ConfigError
from synthmix.llm.backend import Backend, CompletionRequest, CompletionResult, gather_settled
from synthmix.llm.batch import BatchClient
from synthmix.llm.cache import AnswerCache, CachedBackend
from synthmix.llm.openai_http import OpenAICompatibleBackend

log = logging.getLogger("synthmix")

FAILED_POLICIES = ("live", "next-round")
# The most request lines one batch may hold (OpenAI's documented limit).
MAX_BATCH_REQUESTS = 50_000


class BatchRounds:
    """A `generation.engine.Runner` that coalesces the rounds of its participants into
    batches. Participants `join` before their first round and `leave` when done."""

    adaptive = True

    def __init__(
        self,
        client: BatchClient,
        live: Backend,
        failed: str = "live",
        progress: bool = True,
        round_size: int = MAX_BATCH_REQUESTS,
    ) -> None:
        if failed not in FAILED_POLICIES:
            raise ConfigError(
                f"batch_failed must be one of {', '.join(FAILED_POLICIES)}, got {failed!r}"
            )
        self.client = client
        self.live = live  # the cached live backend, for failed lines retried at once
        self.failed = failed
        self.progress = progress
        self.round_size: int | None = round_size
        self.live_retries = 0
        self.rounds = 0
        self._joined = 0
        self._waiting: list[tuple[list[CompletionRequest], asyncio.Future[Any]]] = []
        self._busy = False
        self._bar: tqdm[Any] | None = None
        self._bar_id: Any = None
        client.on_poll = self._show

    @classmethod
    def for_backend(
        cls,
        backend: Backend,
        cache: AnswerCache,
        failed: str = "live",
        poll_s: float = 30.0,
        price_factor: float = 0.5,
        completion_window: str = "24h",
        progress: bool = True,
    ) -> BatchRounds:
        """Rounds for a (cached) OpenAI-compatible backend; any other kind has no Batch API."""
        inner = backend.backend if isinstance(backend, CachedBackend) else backend
        if not isinstance(inner, OpenAICompatibleBackend):
            raise ConfigError(
                f"batch mode needs an openai backend (a server with the Batch API); "
                f"{backend.model} is {backend.name}"
            )
        client = BatchClient(inner, cache, poll_s, price_factor, completion_window)
        return cls(client, backend, failed, progress)

    def summary(self) -> dict[str, Any]:
        return {
            **self.client.stats.to_dict(),
            "rounds": self.rounds,
            "failed_lines": self.failed,
            "live_retries": self.live_retries,
            "price_factor": self.client.price_factor,
        }

    # ------------------------------------------------------------------ participants

    def join(self, participants: int = 1) -> None:
        self._joined += participants

    def leave(self) -> None:
        self._joined -= 1
        self._maybe_flush()

    async def run(self, requests: Sequence[CompletionRequest]) -> list[CompletionResult | None]:
        future: asyncio.Future[list[CompletionResult | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting.append((list(requests), future))
        self._maybe_flush()
        return await future

    def _maybe_flush(self) -> None:
        if self._busy or not self._waiting or len(self._waiting) < self._joined:
            return
        waiting, self._waiting = self._waiting, []
        self._busy = True
        asyncio.get_running_loop().create_task(self._flush(waiting))

    async def _flush(
        self, waiting: list[tuple[list[CompletionRequest], asyncio.Future[Any]]]
    ) -> None:
        requests = [request for asked, _ in waiting for request in asked]
        try:
            self.rounds += 1
            log.info("batch round %d: %d requests", self.rounds, len(requests))
            outcome = await self.client.complete_many(requests)
            results = outcome.results
            if self.failed == "live" and outcome.errors:
                results = await self._retry_live(requests, results)
        except BaseException as exc:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            start = 0
            for asked, future in waiting:
                future.set_result(results[start : start + len(asked)])
                start += len(asked)
        finally:
            self._busy = False
            self._close_bar()
            self._maybe_flush()

    async def _retry_live(
        self, requests: list[CompletionRequest], results: list[CompletionResult | None]
    ) -> list[CompletionResult | None]:
        missing = [i for i, result in enumerate(results) if result is None]
        self.live_retries += len(missing)
        log.info("retrying %d failed batch lines live (full price)", len(missing))
        answers = await gather_settled(self.live.complete(requests[i]) for i in missing)
        merged = list(results)
        for index, answer in zip(missing, answers, strict=True):
            merged[index] = answer
        return merged

    # --------------------------------------------------------------------- progress

    def _show(self, batch: dict[str, Any]) -> None:
        counts = batch.get("request_counts") or {}
        if self._bar is not None and self._bar_id != batch.get("id"):
            self._close_bar()  # a resumed batch was collected; now this round's own
        if self._bar is None:
            self._bar_id = batch.get("id")
            self._bar = tqdm(
                total=int(counts.get("total") or 0),
                desc=f"batch {batch.get('id')}",
                disable=not self.progress,
            )
        self._bar.n = int(counts.get("completed") or 0)
        self._bar.set_postfix(
            {"state": batch.get("status"), "failed": int(counts.get("failed") or 0)}
        )

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
